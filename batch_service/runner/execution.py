"""One batch run inside the server: kernel, session, cells, progress, output, live kernel.

The kernel is started through the server's own kernel manager and a Jupyter session links the
output notebook's path to it, so JupyterLab opening that path attaches to the SAME kernel when
the run ends. nbclient runs cells one at a time on the server's loop; the client is given the
kernel's manager and a client we create, so it neither starts nor shuts the kernel down, and no
signal handlers or atexit hooks are installed in the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from papermill.parameterize import parameterize_notebook

from batch_service.runner.inputs import build_notebook
from batch_service.runner.service_client import EventSender, ServiceClient, ServiceRefused

log = logging.getLogger("batchhub.runner")
PREVIEW_CHARS = 200


def file_states(workdir: Path) -> dict[str, tuple[int, int]]:
    """Regular files under a folder with their size and change time (links not followed)."""
    states = {}
    for path in workdir.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(workdir).as_posix()
        if ".ipynb_checkpoints" in relative.split("/"):
            continue
        info = path.stat()
        states[relative] = (info.st_size, info.st_mtime_ns)
    return states


def artifact_files(
    workdir: Path, before: dict[str, tuple[int, int]], skip: set[str]
) -> list[tuple[str, Path]]:
    """Files the run wrote (new or changed since it started), smallest first; the job's own
    input, unpacked module and executed notebook are kept elsewhere or came from the user."""
    found = [
        (state[0], relative)
        for relative, state in file_states(workdir).items()
        if relative not in skip and before.get(relative) != state
    ]
    return [(relative, workdir / relative) for _, relative in sorted(found)]


class StreamingClient(NotebookClient):
    """nbclient, telling us each output as it arrives (for live output lines)."""

    def __init__(self, nb: nbformat.NotebookNode, on_output: Any, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self._on_output = on_output

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        """Record the output as nbclient does, then pass its text on."""
        out = super().output(outs, msg, display_id, cell_index)
        content = msg.get("content", {})
        kind = msg.get("msg_type")
        if kind == "stream":
            self._on_output(cell_index, content.get("text", ""))
        elif kind == "error":
            self._on_output(cell_index, f"{content.get('ename')}: {content.get('evalue')}\n")
        elif kind == "execute_result":
            self._on_output(cell_index, content.get("data", {}).get("text/plain", "") + "\n")
        return out


class BatchRun:
    """Runs one job in this server and reports to the batch service."""

    def __init__(
        self,
        serverapp: Any,
        client: ServiceClient,
        job_id: str,
        save_interval: float = 2.0,
        event_interval: float = 0.25,
    ) -> None:
        self.serverapp = serverapp
        self.client = client
        self.job_id = job_id
        self.save_interval = save_interval
        self.events = EventSender(client, interval=event_interval)
        self.state = "starting"
        self.kernel_id: str | None = None
        self.cell_index = 0
        self.total = 0
        self.timed_out = False
        self.output_path = ""
        self._partial: dict[int, str] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._last_save = 0.0

    # --- output lines ---------------------------------------------------------------
    def on_output(self, cell_index: int, text: str) -> None:
        """Send complete lines as they come; keep a partial line until its end arrives."""
        text = self._partial.pop(cell_index, "") + text.replace("\r\n", "\n")
        *lines, rest = text.split("\n")
        if rest:
            self._partial[cell_index] = rest
        if lines:
            self.events.send("output", index=cell_index, lines=lines)

    def flush_partial(self, cell_index: int) -> None:
        """A cell ended: its last line is complete."""
        rest = self._partial.pop(cell_index, "")
        if rest:
            self.events.send("output", index=cell_index, lines=[rest])

    # --- saving -----------------------------------------------------------------------
    async def save(self, nb: nbformat.NotebookNode, force: bool = False) -> None:
        """Save through the contents manager, at most every save_interval seconds."""
        now = time.monotonic()
        if not force and now - self._last_save < self.save_interval:
            return
        self._last_save = now
        model = {"type": "notebook", "format": "json", "content": nb}
        result = self.serverapp.contents_manager.save(model, self.output_path)
        if asyncio.iscoroutine(result):
            await result

    # --- the run ----------------------------------------------------------------------
    async def _keep_active(self, interval: float = 60.0) -> None:
        """Report activity while cells run, even silent ones, so idle culling leaves the run be.

        The hub-side idle culler reads the server's last activity, which jupyter_server takes
        from settings keys ending in `_last_activity`.
        """
        from datetime import UTC, datetime

        while True:
            self.serverapp.web_app.settings["batchhub_last_activity"] = datetime.now(UTC)
            await asyncio.sleep(interval)

    async def run(self) -> None:
        """Run and report, then watch the live kernel. A server the service no longer accepts
        for its job (cancelled, or not the start the service made) ends itself."""
        try:
            await self._run_and_report()
        except ServiceRefused as e:
            log.warning("the service no longer accepts this server for job %s (%s)", self.job_id, e)
            if not self.serverapp._stopping:
                self.serverapp.stop()
            return
        # A task of its own: this one must end, because AnyIO (behind the server's file saves)
        # stops its worker threads only when the first task that used them is done, and a
        # server with live worker threads cannot exit when the hub stops it.
        self._watcher = asyncio.ensure_future(self._watch_kernel())

    async def _watch_kernel(self) -> None:
        """Tell the service when the kept kernel dies, so its server and GPUs go at once.

        The server's kernel restarter notices a dead kernel and starts an empty one in its
        place: either event means the run's kernel, and its variables, are gone.
        """
        if not await self._kernel_alive():
            return
        gone = asyncio.Event()
        kernel = self.serverapp.kernel_manager.get_kernel(self.kernel_id)
        for event in ("restart", "dead"):
            kernel.add_restart_callback(gone.set, event)
        await gone.wait()
        if self.serverapp._stopping:
            return  # the server shuts its kernels down itself
        log.info("the live kernel of job %s is gone", self.job_id)
        self.events.seq += 1
        event = {"type": "kernel_gone", "seq": self.events.seq, "time": time.time()}
        body = json.dumps({"events": [event]}).encode()
        try:
            await self.client.patient("POST", "runner/events", body, max_delay=5)
        except ServiceRefused:
            pass  # the live window ended already: the service stops this server

    async def _run_and_report(self) -> None:
        """Fetch, execute, report; the kernel is never shut down here."""
        self.events.start()
        heartbeat = asyncio.ensure_future(self._keep_active())
        try:
            await self._run()
        except ServiceRefused:
            raise
        except Exception as e:  # the run must always end with a 'finished' event
            log.exception("batch run %s failed before its cells ran", self.job_id)
            self.state = "failed"
            self.events.send(
                "finished",
                state="failed",
                error_name=type(e).__name__,
                error_value=f"the runner could not run the job: {e}",
                failed_cell=None,
                kernel_alive=await self._kernel_alive(),
            )
        finally:
            heartbeat.cancel()
        await self.events.close()

    async def _kernel_alive(self) -> bool:
        if self.kernel_id is None or self.kernel_id not in self.serverapp.kernel_manager:
            return False
        alive = self.serverapp.kernel_manager.get_kernel(self.kernel_id).is_alive()
        return bool(await alive if asyncio.iscoroutine(alive) else alive)

    async def _run(self) -> None:
        spec = await self.client.spec()
        content = await self.client.input()
        root = Path(self.serverapp.root_dir)
        work_relative = f"batch/{self.job_id}"
        workdir = root / work_relative
        workdir.mkdir(parents=True, exist_ok=True)
        kernel_name = spec.get("kernel_name") or "python3"
        nb = build_notebook(
            spec["kind"],
            workdir / spec["input_name"],
            content,
            spec.get("entry_point"),
            kernel_name,
        )
        kernel_name = nb.metadata.get("kernelspec", {}).get("name") or kernel_name
        before = file_states(workdir)  # what the run finds; anything else it wrote
        if spec.get("parameters"):
            nb = parameterize_notebook(
                nb,
                spec["parameters"],
                report_mode=False,
                kernel_name=kernel_name,
                language="python",
            )
        # The service chose the path (it builds the live-kernel link from it).
        self.output_path = spec.get("output_path") or f"{work_relative}/{spec['output_name']}"
        km = self.serverapp.kernel_manager
        self.kernel_id = await km.start_kernel(kernel_name=kernel_name, path=work_relative)
        session = await self.serverapp.session_manager.create_session(
            path=self.output_path,
            type="notebook",
            kernel_id=self.kernel_id,
            name=spec["output_name"],
        )
        await self.save(nb, force=True)
        code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        self.total = len(code_cells)
        kernel = km.get_kernel(self.kernel_id)
        kc = kernel.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        # 'started' once the kernel answers: the run's clock starts with its first cell.
        self.state = "running"
        self.events.send(
            "started",
            kernel_id=self.kernel_id,
            session_id=session["id"],
            total_cells=self.total,
            output_path=self.output_path,
        )
        executor = StreamingClient(
            nb, self.on_output, km=kernel, timeout=None, allow_errors=False, record_timing=True
        )
        executor.kc = kc  # our client: nbclient then neither starts nor stops the kernel
        deadline = asyncio.get_running_loop().call_later(
            float(spec["time_limit"]), lambda: asyncio.ensure_future(self._interrupt())
        )
        outcome: dict[str, Any] = {"state": "succeeded"}
        try:
            outcome = await self._execute(executor, nb, code_cells)
        finally:
            deadline.cancel()
            kc.stop_channels()
        await self.save(nb, force=True)
        self.state = outcome["state"]
        await self.client.upload_output(json.dumps(nb).encode())
        await self.keep_artifacts(workdir, before, skip={spec["output_name"]})
        # A kernel that died may have been restarted empty: that is not the run's kernel.
        alive = outcome["error_name"] != "KernelDied" and await self._kernel_alive()
        self.events.send("finished", kernel_alive=alive, **outcome)

    async def keep_artifacts(
        self, workdir: Path, before: dict[str, tuple[int, int]], skip: set[str]
    ) -> None:
        """Send the files the run wrote under its job folder; say in the output what was not
        kept (the service decides, by its cap)."""
        dropped = 0
        for relative, path in artifact_files(workdir, before, skip):
            reason = await self.client.upload_artifact(relative, path)
            if reason:
                dropped += 1
                self.events.send("output", index=None, lines=[f"batchhub: {reason}"])
        if dropped:
            self.events.send(
                "output",
                index=None,
                lines=[f"batchhub: {dropped} file(s) of this run were not kept; see the job page"],
            )

    async def _interrupt(self) -> None:
        """The time limit: interrupt the kernel; the run ends as timed out, the kernel lives."""
        self.timed_out = True
        if self.kernel_id is not None:
            log.info("batch run %s reached its time limit: interrupting", self.job_id)
            await self.serverapp.kernel_manager.interrupt_kernel(self.kernel_id)

    async def _execute(
        self, executor: StreamingClient, nb: nbformat.NotebookNode, code_cells: list[int]
    ) -> dict[str, Any]:
        for number, index in enumerate(code_cells, start=1):
            cell = nb.cells[index]
            self.cell_index = number
            preview = cell.source[:PREVIEW_CHARS]
            self.events.send(
                "cell", index=number, total=self.total, status="running", source_preview=preview
            )
            try:
                await executor.async_execute_cell(cell, index, execution_count=number)
            except CellExecutionError as e:
                self.flush_partial(index)
                await self.save(nb, force=True)
                if self.timed_out:
                    return {
                        "state": "timed_out",
                        "error_name": "TimeLimit",
                        "error_value": "the run reached its time limit and was interrupted",
                        "failed_cell": number,
                    }
                self.events.send("cell", index=number, total=self.total, status="error")
                return {
                    "state": "failed",
                    "error_name": e.ename,
                    "error_value": e.evalue,
                    "failed_cell": number,
                }
            except DeadKernelError:
                self.flush_partial(index)
                return {
                    "state": "failed",
                    "error_name": "KernelDied",
                    "error_value": f"the kernel died while running cell {number}",
                    "failed_cell": number,
                }
            self.flush_partial(index)
            self.events.send(
                "cell", index=number, total=self.total, status="done", source_preview=preview
            )
            await self.save(nb)
            if self.timed_out:
                return {
                    "state": "timed_out",
                    "error_name": "TimeLimit",
                    "error_value": "the run reached its time limit",
                    "failed_cell": number,
                }
        return {"state": "succeeded", "error_name": "", "error_value": "", "failed_cell": None}
