"""Datasets and artifacts: upload throughput, the service's memory during a big upload, and
the time to list 10,000 artifacts.

Throughput, each the median of --samples runs of the same file, side by side with baselines
measured in the same run:
  cp                 copy of the file to the same disk (the goal: tus >= 0.7x of it)
  plain PUT          one HTTP PUT of the file (read into memory, as tuspy sends each request) to
                     a bare tornado handler with the service's HTTP settings, writing to the
                     same disk and fsyncing at the end (what the protocol itself costs)
  tus, service       tuspy to the batch service's own port (--chunk-mib per PATCH; the whole
                     file in one by default, as tus-js-client sends it), sha256 verified
  tus, via proxy     the same through configurable-http-proxy, as people upload
Then the service's RSS, sampled every 0.1 s while one --big-mib upload goes through the proxy,
and the time of GET jobs/<id>/artifacts for a job with 10,000 artifacts.

    PYTHONPATH=. .venv/bin/python bench/data_uploads.py [--size-mib 256] [--big-mib 2048]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
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

from bench._hub import bench_hub  # noqa: E402
from bench.service_joblist import rss_mib  # noqa: E402
from tests.batch import notebook  # noqa: E402
from tests.tus import make_file  # noqa: E402


def median_seconds(run, samples: int) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of run() over the samples."""
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--chunk-mib", type=int, default=0, help="0: the whole file per PATCH")
    parser.add_argument("--artifacts", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="batchhub-bench-data-"))
    try:
        source = work / "sample.bin"
        make_file(source, args.size_mib * 2**20)
        size = source.stat().st_size
        chunk = (args.chunk_mib or args.size_mib) * 2**20
        with bench_hub({"data": {"user_quota": "1T"}, "batch": {"paused": True}}) as hub:
            user = hub.ready_user("bench-data")
            api = f"{hub.url}/services/batch/api/v1/"
            direct = f"http://127.0.0.1:{hub.values['batch']['port']}/services/batch/api/v1/"
            copies = work / "copies"
            copies.mkdir()
            port, _ = bare_put_server(copies)
            counter = iter(range(10**6))

            def cp() -> None:
                subprocess.run(["cp", str(source), str(copies / "cp.bin")], check=True)

            def put() -> None:
                body = source.read_bytes()
                r = requests.put(f"http://127.0.0.1:{port}/put", data=body, timeout=600)
                assert r.status_code == 204

            results = {
                "cp": median_seconds(cp, args.samples),
                "plain PUT": median_seconds(put, args.samples),
                "tus, service": median_seconds(
                    lambda: tus_upload(
                        direct + "uploads",
                        user.token or "",
                        direct,
                        source,
                        f"bench-{next(counter)}",
                        chunk,
                    ),
                    args.samples,
                ),
                "tus, via proxy": median_seconds(
                    lambda: tus_upload(
                        api + "uploads",
                        user.token or "",
                        api,
                        source,
                        f"bench-{next(counter)}",
                        chunk,
                    ),
                    args.samples,
                ),
            }
            print(f"upload of {size / 2**20:.0f} MiB, median of {args.samples} (machine shared)")
            print(f"{'':16} {'seconds':>8} {'MiB/s':>8} {'vs cp':>7} {'vs PUT':>7}")
            for name, seconds in results.items():
                print(
                    f"{name:16} {seconds:8.2f} {size / 2**20 / seconds:8.0f} "
                    f"{results['cp'] / seconds:7.2f} {results['plain PUT'] / seconds:7.2f}"
                )

            big = work / "big.bin"
            source.unlink()
            make_file(big, args.big_mib * 2**20)
            pid = hub.service_pid()
            before = rss_mib(pid)
            peak = [before]
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    peak.append(rss_mib(pid))
                    time.sleep(0.1)

            watcher = threading.Thread(target=watch)
            watcher.start()
            t = time.perf_counter()
            tus_upload(api + "uploads", user.token or "", api, big, "bench-big")
            elapsed = time.perf_counter() - t
            stop.set()
            watcher.join()
            print(
                f"service RSS during a {args.big_mib} MiB upload ({elapsed:.1f} s): "
                f"{before:.0f} MiB before, {max(peak):.0f} MiB at most "
                f"({len(peak)} samples; goal: flat, under 200 MB)"
            )

            print(artifact_listing(hub, user, args.artifacts, args.samples))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def artifact_listing(hub, user, count: int, samples: int) -> str:  # type: ignore[no-untyped-def]
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

    def listing() -> None:
        got = session.get(api + f"jobs/{job_id}/artifacts", headers=headers, timeout=60)
        assert len(got.json()["artifacts"]) == count

    baseline = median_seconds(
        lambda: session.get(api + f"jobs/{job_id}", headers=headers, timeout=60), samples
    )
    seconds = median_seconds(listing, samples)
    return (
        f"list {count} artifacts: {seconds * 1000:.0f} ms median of {samples} "
        f"(one job's GET in the same run: {baseline * 1000:.0f} ms; "
        f"ratio {seconds / baseline:.0f}x)"
    )


if __name__ == "__main__":
    main()
