"""Datasets and artifacts: upload throughput, the service's memory during a big upload, and
the time to list 10,000 artifacts.

Throughput in MiB/s of one --size-mib file, each figure the median of --samples (default 5)
turns after a discarded warm-up turn; every turn runs each of these once, the order rotated
by one each turn (ABCDEF, BCDEFA, ...):
  cp                 copy of the file to the same disk (the baseline: tus >= 0.7x of it)
  cp + fsync         the same copy, then fsync: on disk when it ends, as a tus PATCH is when
                     it is answered (a second baseline, printed beside the first)
  plain PUT          one HTTP PUT of the file (read into memory, as tuspy sends each request) to
                     a bare tornado handler with the service's HTTP settings, writing to the
                     same disk and fsyncing at the end (what the protocol itself costs)
  tus, service       tuspy to the batch service's own port (--chunk-mib per PATCH; the whole
                     file in one by default, as tus-js-client sends it), sha256 verified
  tus, via proxy     the same through configurable-http-proxy, as people upload
  floor, via proxy   the plain PUT's request through the hub's proxy program to a compiled
                     server (bench/_floor.py: Go, the body copied to a file and fsynced):
                     what this machine allows any server behind the proxy
Then --samples uploads of one --big-mib file (2 GiB) through the proxy, each beside a cp of
it (ABAB...), after a warm-up pair: its throughput, and the service's RSS sampled every 0.1 s
during each upload: the most it grew over its RSS before that upload (flat: a fraction of
the file), and its peak (goal: under 200 MB, 191 MiB). Last, GET jobs/<id>/artifacts for a job with
10,000 artifact rows (written into the store through its models), beside one job's GET
(ABAB...). --quick: 64 MiB and 256 MiB files, 1,000 artifacts.

    .venv/bin/python bench/data_uploads.py [--size-mib 256] [--big-mib 2048] [--samples 5]
        [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from tornado import httpserver, netutil, web
from tusclient import client as tus_client

# Run as `python bench/<script>.py`: the repository root holds the bench and tests packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._floor import FLOOR, floor_behind_proxy  # noqa: E402
from bench._hub import bench_hub  # noqa: E402
from bench._table import Figure, arguments, interleaved, report, rounds  # noqa: E402
from bench.service_joblist import rss_mib  # noqa: E402
from tests.batch import notebook  # noqa: E402
from tests.tus import make_file  # noqa: E402


def seconds_of(run) -> float:  # type: ignore[no-untyped-def]
    """Wall time of run()."""
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def bare_put_server(folder: Path) -> tuple[int, threading.Thread]:
    """A bare tornado app taking streamed PUTs into files, with the service's HTTP settings."""

    @web.stream_request_body
    class Put(web.RequestHandler):
        def prepare(self) -> None:
            self.request.connection.set_max_body_size(2**40)
            self.sink = (folder / "put.bin").open("wb")

        def data_received(self, chunk: bytes) -> None:
            self.sink.write(chunk)

        def put(self) -> None:
            self.sink.flush()
            os.fsync(self.sink.fileno())
            self.sink.close()
            self.set_status(204)

    ready = threading.Event()
    port_box: list[int] = []

    def serve() -> None:
        async def main() -> None:
            server = httpserver.HTTPServer(web.Application([(r"/put", Put)]), chunk_size=1 << 20)
            sockets = netutil.bind_sockets(0, "127.0.0.1")
            server.add_sockets(sockets)
            port_box.append(sockets[0].getsockname()[1])
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    return port_box[0], thread


def tus_upload(
    endpoint: str, token: str, api: str, path: Path, name: str, chunk: int = 64 * 2**20
) -> None:
    """Create a dataset, upload the file with tuspy, remove the dataset."""
    headers = {"Authorization": f"token {token}"}
    r = requests.post(api + "datasets", json={"name": name}, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    uploader = tus_client.TusClient(endpoint, headers=headers).uploader(
        str(path), chunk_size=chunk, metadata={"dataset": name, "filename": path.name}
    )
    uploader.upload()
    requests.delete(api + f"datasets/{name}", headers=headers, timeout=60)


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256, help="--quick: 64")
    parser.add_argument("--big-mib", type=int, default=2048, help="--quick: 256")
    parser.add_argument("--chunk-mib", type=int, default=0, help="0: the whole file per PATCH")
    parser.add_argument("--artifacts", type=int, default=10_000, help="--quick: 1,000")
    arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.size_mib, args.big_mib = min(args.size_mib, 64), min(args.big_mib, 256)
        args.artifacts = min(args.artifacts, 1_000)
    work = Path(tempfile.mkdtemp(prefix="batchhub-bench-data-"))
    try:
        source = work / "sample.bin"
        make_file(source, args.size_mib * 2**20)
        mib = source.stat().st_size / 2**20
        chunk = (args.chunk_mib or args.size_mib) * 2**20
        with (
            bench_hub({"data": {"user_quota": "1T"}, "batch": {"paused": True}}) as hub,
            floor_behind_proxy(work) as floor,
        ):
            user = hub.ready_user("bench-data")
            api = f"{hub.url}/services/batch/api/v1/"
            direct = f"http://127.0.0.1:{hub.values['batch']['port']}/services/batch/api/v1/"
            copies = work / "copies"
            copies.mkdir()
            port, _ = bare_put_server(copies)
            counter = itertools.count()

            def cp(path: Path) -> float:
                target = copies / "cp.bin"
                took = seconds_of(
                    lambda: subprocess.run(["cp", str(path), str(target)], check=True)
                )
                target.unlink()
                return took

            def cp_synced(path: Path) -> float:
                # cp, then the fsync that a PATCH's answer waits for (cp leaves it to the kernel).
                target = copies / "cp.bin"

                def copy_and_sync() -> None:
                    subprocess.run(["cp", str(path), str(target)], check=True)
                    with target.open("rb") as f:
                        os.fsync(f.fileno())

                took = seconds_of(copy_and_sync)
                target.unlink()
                return took

            def put(url: str) -> float:
                def send() -> None:
                    body = source.read_bytes()
                    r = requests.put(url, data=body, timeout=600)
                    assert r.status_code in (201, 204), r.text

                return seconds_of(send)

            def tus(endpoint: str, path: Path, size: int) -> float:
                name = f"bench-{next(counter)}"
                token = user.token or ""
                return seconds_of(
                    lambda: tus_upload(endpoint + "uploads", token, endpoint, path, name, size)
                )

            runs = rounds(
                {
                    "cp": lambda: cp(source),
                    "cp + fsync": lambda: cp_synced(source),
                    "plain PUT": lambda: put(f"http://127.0.0.1:{port}/put"),
                    "floor, via proxy": lambda: put(floor + "/put"),
                    "tus, service": lambda: tus(direct, source, chunk),
                    "tus, via proxy": lambda: tus(api, source, chunk),
                },
                args.samples,
            )
            rates = {name: [mib / s for s in took] for name, took in runs.items()}
            figures = [
                Figure(
                    f"upload {mib:.0f} MiB, {name}",
                    "MiB/s",
                    rates[name],
                    rates["cp"],
                    "cp",
                    goal_ratio=0.7 if name == "tus, via proxy" else None,
                    higher_is_better=True,
                )
                for name in ("tus, via proxy", "tus, service", "plain PUT")
            ]
            # The same, beside a copy that is on disk when it ends, as an acknowledged PATCH is,
            # and beside the floor: what any server behind the proxy reaches on this machine.
            figures += [
                Figure(
                    f"upload {mib:.0f} MiB, tus, via proxy, vs {baseline}",
                    "MiB/s",
                    rates["tus, via proxy"],
                    rates[baseline],
                    FLOOR if baseline == "floor, via proxy" else baseline,
                    higher_is_better=True,
                )
                for baseline in ("cp + fsync", "floor, via proxy")
            ]

            big = work / "big.bin"
            source.unlink()
            make_file(big, args.big_mib * 2**20)
            pid = hub.service_pid()
            growth: list[float] = []
            peaks: list[float] = []

            def big_upload() -> float:
                before = rss_mib(pid)
                peak = [before]
                stop = threading.Event()

                def watch() -> None:
                    while not stop.is_set():
                        peak.append(rss_mib(pid))
                        time.sleep(0.1)

                watcher = threading.Thread(target=watch)
                watcher.start()
                try:
                    took = tus(api, big, 64 * 2**20)
                finally:
                    stop.set()
                    watcher.join()
                growth.append(max(peak) - before)
                peaks.append(max(peak))
                return args.big_mib / took

            ours, theirs = interleaved(big_upload, lambda: args.big_mib / cp(big), args.samples)
            size = f"{args.big_mib} MiB"
            figures += [
                Figure(
                    f"upload {size} via proxy",
                    "MiB/s",
                    ours,
                    theirs,
                    "cp",
                    goal_ratio=0.7,
                    higher_is_better=True,
                ),
                Figure(
                    f"service RSS growth during a {size} upload",
                    "MiB",
                    growth[-args.samples :],
                ),
                Figure(
                    f"service RSS peak during a {size} upload",
                    "MiB",
                    peaks[-args.samples :],
                    goal_value=200e6 / 2**20,
                ),
            ]
            figures.append(artifact_listing(hub, user, args.artifacts, args.samples))
            report(figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def artifact_listing(hub, user, count: int, samples: int) -> Figure:  # type: ignore[no-untyped-def]
    """Time GET jobs/<id>/artifacts for a job with `count` artifact rows."""
    from batch_service.store import Artifact, Store

    headers = {"Authorization": f"token {user.token}"}
    api = f"{hub.url}/services/batch/api/v1/"
    r = requests.post(
        api + "jobs",
        headers=headers,
        files={"file": ("nb.ipynb", notebook("x = 1"))},
        data={"profile": "cpu"},
        timeout=60,
    )
    job_id = r.json()["id"]
    store = Store(f"sqlite:///{hub.state_dir / 'state' / 'batch' / 'jobs.sqlite'}")
    with store.session() as session:
        session.add_all(
            Artifact(
                job_id=job_id,
                path=f"checkpoints/epoch-{i:05d}/model.pt",
                size=1000 + i,
                sha256="0" * 64,
                kept=True,
                reason="",
                stored_at=time.time(),
            )
            for i in range(count)
        )
    store.dispose()
    session = requests.Session()

    def listing() -> float:
        t = time.perf_counter()
        got = session.get(api + f"jobs/{job_id}/artifacts", headers=headers, timeout=60)
        took = time.perf_counter() - t
        assert len(got.json()["artifacts"]) == count
        return took * 1000

    def one_job() -> float:
        return (
            seconds_of(lambda: session.get(api + f"jobs/{job_id}", headers=headers, timeout=60))
            * 1000
        )

    ours, theirs = interleaved(listing, one_job, samples)
    return Figure(f"list {count:,} artifacts of a job", "ms", ours, theirs, "one job's GET")


if __name__ == "__main__":
    main()
