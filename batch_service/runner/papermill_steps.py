"""papermill's steps of a run: loading, parameters, metadata, the cell client and the verdict.

Imported when a run starts, after its kernel was launched, not when the server starts:
papermill's own imports (pyarrow and numpy among them) take about 0.6 s, which then pass while
the kernel boots in its own process instead of adding to every cold start.
"""

from __future__ import annotations

from typing import Any

import nbformat
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NotebookExecutionManager
from papermill.exceptions import PapermillExecutionError
from papermill.execute import (
    prepare_notebook_metadata,
    raise_for_execution_errors,
    remove_error_markers,
)
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook


class StreamingClient(PapermillNotebookClient):
    """papermill's nbclient, telling us each output as it arrives (for live output lines)."""

    def __init__(self, manager: NotebookExecutionManager, on_output: Any, **kw: Any) -> None:
        super().__init__(manager, **kw)
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


def prepare_notebook(
    nb: nbformat.NotebookNode,
    parameters: dict[str, Any],
    report_mode: bool,
    kernel_name: str,
    input_path: str,
    output_path: str,
) -> nbformat.NotebookNode:
    """What papermill's execute_notebook does before running: load, inject, record, clear
    banners (its loader adds the metadata and tags its later steps expect)."""
    nb = load_notebook_node(nb)
    if parameters:
        nb = parameterize_notebook(nb, parameters, report_mode, kernel_name=kernel_name)
    nb = prepare_notebook_metadata(nb, input_path, output_path, report_mode)
    # Error banners of an earlier papermill run would point at the wrong cell now.
    return remove_error_markers(nb)


def execution_manager(nb: nbformat.NotebookNode) -> NotebookExecutionManager:
    """papermill's recorder of notebook and per-cell status and times (it copies `nb`)."""
    return NotebookExecutionManager(nb, output_path=None, progress_bar=False)


def execution_error(nb: nbformat.NotebookNode) -> PapermillExecutionError | None:
    """papermill's verdict, with the banners it adds on failure: its error, or None.

    SystemExit with no code or 0 is success, as papermill counts it."""
    try:
        raise_for_execution_errors(nb, None)
    except PapermillExecutionError as e:
        return e
    return None
