"""One batch run inside the server: kernel, session, cells, progress, output, live kernel.

The kernel is started through the server's own kernel manager and a Jupyter session links the
output notebook's path to it, so JupyterLab opening that path attaches to the SAME kernel when
the run ends. nbclient runs cells one at a time on the server's loop; the client is given the
kernel's manager and a client we create, so it neither starts nor shuts the kernel down, and no
signal handlers or atexit hooks are installed in the server.

The run is papermill's, step by step with papermill's own functions (papermill_steps, loaded
once the kernel was launched): parameters injected,
metadata recorded by its NotebookExecutionManager (notebook and per-cell status and times),
earlier error banners removed, and its verdict (`raise_for_execution_errors`: SystemExit with no
code or 0 succeeds) with the banners it adds on failure. The executed notebook is what papermill
would write, so tools that read papermill's output read ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from jupyter_core.utils import ensure_async
from nbclient.exceptions import CellExecutionError, DeadKernelError

from batch_service.runner.artifacts import file_states, keep_artifacts
from batch_service.runner.inputs import build_notebook
from batch_service.runner.kernels import JOB_FOLDER, Spare, kernel_alive, kernel_arguments
from batch_service.runner.service_client import EventSender, ServiceClient, ServiceRefused
from batch_service.runner.warm import WarmRunner

if TYPE_CHECKING:
    from papermill.engines import NotebookExecutionManager

    from batch_service.runner.papermill_steps import StreamingClient

log = logging.getLogger("batchhub.runner")
PREVIEW_CHARS = 200


class BatchRun(WarmRunner):
    """Runs one job in this server and reports to the batch service."""

    def __init__(
        self,
        serverapp: Any,
        client: ServiceClient,
        job_id: str,
        save_interval: float = 2.0,
        event_interval: float = 0.25,
        spare: Spare | None = None,
    ) -> None:
        self.serverapp = serverapp
        # A kernel a warm server started after its previous run, never used: this run's if its
        # kernel name fits (it then moves into the job's folder before the first cell).
        self.spare = spare
        self.kernel_name = ""
        self._move_to: Path | None = None
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
        self._last_save = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self._unwatched: Any = None  # the run's kernel while the server's watcher steps aside
        # The service reuses servers (its spec says so): ask it for a next run once this ends.
        self.reusable = False

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
        """Save at most every save_interval seconds; `force`: through the contents manager.

        While cells run, the notebook's JSON is written straight to its file off the loop: the
        contents manager validates and signs on the server's loop, which held up the next cell
        for about half a second on a 200-cell notebook. The forced saves (before the first cell
        and at the end) go through it, so the final notebook is validated and trusted.
        """
        now = time.monotonic()
        if not force and now - self._last_save < self.save_interval:
            return
        self._last_save = now
        if not force:
            text = json.dumps(nb, ensure_ascii=False, indent=1)
            path = Path(self.serverapp.root_dir, self.output_path)
            await asyncio.to_thread(write_replacing, path, text)
            return
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
        while True:
            now = datetime.now(UTC)
            self.serverapp.web_app.settings["batchhub_last_activity"] = now
            if self._unwatched is not None:
                self._unwatched.last_activity = now
            await asyncio.sleep(interval)

    async def run(self) -> bool:
        """Run and report, then watch the live kernel; True when the service may hand this
        server a next run. A server the service no longer accepts for its job (cancelled, or
        not the start the service made) ends itself."""
        try:
            await self._run_and_report()
        except ServiceRefused as e:
            log.warning("the service no longer accepts this server for job %s (%s)", self.job_id, e)
            if not self.serverapp._stopping:
                self.serverapp.stop()
            return False
        # A task of its own: this one must end, because AnyIO (behind the server's file saves)
        # stops its worker threads only when the first task that used them is done, and a
        # server with live worker threads cannot exit when the hub stops it.
        self._watcher = asyncio.ensure_future(self._watch_kernel())
        return self.reusable

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
            await self.client.patient("POST", "runner/events", body)
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
        km = self.serverapp.kernel_manager
        return (
            self.kernel_id is not None
            and self.kernel_id in km
            and await kernel_alive(km, self.kernel_id)
        )

    async def _run(self) -> None:
        spec = await self.client.spec()
        self.reusable = spec.get("warm") is True
        content = await self.client.input()
        root = Path(self.serverapp.root_dir)
        work_relative = f"{JOB_FOLDER}/{self.job_id}"
        workdir = root / work_relative
        workdir.mkdir(parents=True, exist_ok=True)
        profile_kernel = spec.get("kernel_name") or "python3"
        nb, input_path = build_notebook(
            spec["kind"],
            workdir,
            spec["input_name"],
            content,
            spec.get("entry_point"),
            profile_kernel,
            list(spec.get("args") or []),
        )
        # As papermill's CLI: the notebook's own kernel, else the one asked for (the profile's).
        kernel_name = nb.metadata.get("kernelspec", {}).get("name") or profile_kernel
        self.kernel_name = kernel_name
        before = file_states(workdir)  # what the run finds; anything else it wrote is kept
        # The service chose the path (it builds the live-kernel link from it).
        self.output_path = spec.get("output_path") or f"{work_relative}/{spec['output_name']}"
        # Launched first: the kernel boots in its own process while papermill is loaded.
        not_started = await self._start_kernel(kernel_name, work_relative)
        from batch_service.runner import papermill_steps as steps

        nb = steps.prepare_notebook(
            nb,
            spec.get("parameters") or {},
            bool(spec.get("report_mode")),
            kernel_name,
            str(input_path.relative_to(root)),
            self.output_path,
        )
        manager = steps.execution_manager(nb)
        nb = manager.nb
        manager.notebook_start()
        try:
            stopped = not_started or await self._execute_in_kernel(manager, spec)
        finally:
            manager.notebook_complete()
        # papermill's order: the notebook's metadata is complete before its verdict and banners.
        outcome = stopped or self._outcome(nb, steps.execution_error(nb))
        await self.save(nb, force=True)
        self.state = outcome["state"]
        await self.client.upload_output(json.dumps(nb).encode())
        await keep_artifacts(self.client, self.events, workdir, before, {spec["output_name"]})
        # A kernel that died may have been restarted empty: that is not the run's kernel.
        alive = outcome["error_name"] != "KernelDied" and await self._kernel_alive()
        self.events.send("finished", kernel_alive=alive, **outcome)

    async def _start_kernel(self, kernel_name: str, work_relative: str) -> dict[str, Any] | None:
        """Launch the run's kernel in the job's folder (or take the spare one); a failure
        papermill fails with too."""
        spare, self.spare = self.spare, None
        km = self.serverapp.kernel_manager
        if spare is not None and spare.kernel_id in km:
            if spare.kernel_name == kernel_name and await kernel_alive(km, spare.kernel_id):
                self.kernel_id = spare.kernel_id
                # root_dir is absolute (jupyter_server makes it so).
                self._move_to = Path(self.serverapp.root_dir, work_relative)
                return None
            await km.shutdown_kernel(spare.kernel_id, now=True)
        try:
            self.kernel_id = await self.serverapp.kernel_manager.start_kernel(
                kernel_name=kernel_name,
                path=work_relative,
                extra_arguments=kernel_arguments(kernel_name),
            )
        except Exception as e:  # papermill fails the same way (e.g. NoSuchKernel), no kernel
            log.warning("batch run %s: kernel %r did not start: %s", self.job_id, kernel_name, e)
            return failure(type(e).__name__, str(e) or repr(e), None)
        return None

    async def _execute_in_kernel(
        self, manager: NotebookExecutionManager, spec: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Its session, then the cells in the launched kernel; a failure papermill raises for."""
        from batch_service.runner.papermill_steps import StreamingClient

        nb = manager.nb
        km = self.serverapp.kernel_manager
        session = await self.serverapp.session_manager.create_session(
            path=self.output_path,
            type="notebook",
            kernel_id=self.kernel_id,
            name=spec["output_name"],
        )
        await self.save(nb, force=True)
        self.total = sum(1 for c in nb.cells if c.cell_type == "code")
        kernel = km.get_kernel(self.kernel_id)
        kc = kernel.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        executor = StreamingClient(
            manager, self.on_output, km=kernel, timeout=None, allow_errors=False, record_timing=True
        )
        executor.kc = kc  # our client: nbclient then neither starts nor stops the kernel
        if self._move_to is not None:
            # The spare kernel began elsewhere: into the job's folder, as a kernel started there
            # would be. Silent and outside the history, so the run's execution counts start at
            # 1 and no name is left behind.
            move = f"import os as _bh_os; _bh_os.chdir({str(self._move_to)!r}); del _bh_os"
            await executor.async_wait_for_reply(kc.execute(move, silent=True, store_history=False))
        info = await executor.async_wait_for_reply(await ensure_async(kc.kernel_info()))
        if info is not None and "language_info" in info["content"]:
            nb.metadata["language_info"] = info["content"]["language_info"]
        # 'started' once the kernel answers: the run's clock starts with its first cell.
        self.state = "running"
        self.events.send(
            "started",
            kernel_id=self.kernel_id,
            session_id=session["id"],
            total_cells=self.total,
            output_path=self.output_path,
        )
        deadline = asyncio.get_running_loop().call_later(
            float(spec["time_limit"]), lambda: asyncio.ensure_future(self._interrupt())
        )
        # The server's activity watcher decodes every kernel message on this loop (about half
        # a millisecond a cell); while cells run, the run records the kernel busy and active
        # itself (a kernel culler must not take it for idle). The live kernel is watched again.
        km.stop_watching_activity(self.kernel_id)
        kernel.execution_state = "busy"
        self._unwatched = kernel
        try:
            died = await self._execute(executor, manager)
        finally:
            self._unwatched = None
            deadline.cancel()
            kc.stop_channels()
            if self.kernel_id in km:
                kernel.execution_state = "idle"
                kernel.last_activity = datetime.now(UTC)
                km.start_watching_activity(self.kernel_id)
        executor.set_widgets_metadata()
        return died

    def _outcome(self, nb: nbformat.NotebookNode, error: Any) -> dict[str, Any]:
        """The run's end from papermill's verdict (`error`: its PapermillExecutionError)."""
        if error is not None:
            # The cell papermill names (a `raises-exception` cell's error counts too), else ours.
            cell = code_cell_number(nb, error.exec_count) or self.cell_index
            if self.timed_out:
                return timed_out("the run reached its time limit and was interrupted", cell)
            return failure(error.ename, error.evalue, cell)
        if self.timed_out:
            return timed_out("the run reached its time limit", self.cell_index)
        return {"state": "succeeded", "error_name": "", "error_value": "", "failed_cell": None}

    async def _interrupt(self) -> None:
        """The time limit: interrupt the kernel; the run ends as timed out, the kernel lives."""
        self.timed_out = True
        if self.kernel_id is not None:
            log.info("batch run %s reached its time limit: interrupting", self.job_id)
            await self.serverapp.kernel_manager.interrupt_kernel(self.kernel_id)

    async def _execute(
        self, executor: StreamingClient, manager: NotebookExecutionManager
    ) -> dict[str, Any] | None:
        """Every cell in order, as papermill's client does; stop at the first error.

        papermill's manager records each cell's status and times; only code cells count as
        progress. Returns a failure only when the kernel died (papermill raises then too).
        """
        nb = manager.nb
        number = 0
        for index, cell in enumerate(nb.cells):
            code = cell.cell_type == "code"
            if code:
                number += 1
                self.cell_index = number
                preview = cell.source[:PREVIEW_CHARS]
                self.events.send(
                    "cell", index=number, total=self.total, status="running", source_preview=preview
                )
            manager.cell_start(cell, index)
            try:
                await executor.async_execute_cell(cell, index)
            except CellExecutionError as e:
                manager.cell_exception(cell, cell_index=index, exception=e)
                self.flush_partial(index)
                self.events.send("cell", index=number, total=self.total, status="error")
                return None
            except DeadKernelError:
                self.flush_partial(index)
                return failure("KernelDied", f"the kernel died while running cell {number}", number)
            finally:
                manager.cell_complete(cell, cell_index=index)
            if not code:
                continue
            self.flush_partial(index)
            self.events.send(
                "cell", index=number, total=self.total, status="done", source_preview=preview
            )
            await self.save(nb)
            if self.timed_out:
                return None
        return None


def write_replacing(path: Path, text: str) -> None:
    """Write a file whole: readers see the old or the new notebook, never half of one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def code_cell_number(nb: nbformat.NotebookNode, exec_count: int | None) -> int | None:
    """The 1-based number among code cells of the cell with this execution count."""
    number = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            number += 1
            if exec_count is not None and cell.get("execution_count") == exec_count:
                return number
    return None


def failure(name: str, value: str, cell: int | None) -> dict[str, Any]:
    """A failed run's outcome."""
    return {"state": "failed", "error_name": name, "error_value": value, "failed_cell": cell}


def timed_out(value: str, cell: int | None) -> dict[str, Any]:
    """A run stopped at its time limit."""
    return {
        "state": "timed_out",
        "error_name": "TimeLimit",
        "error_value": value,
        "failed_cell": cell,
    }
