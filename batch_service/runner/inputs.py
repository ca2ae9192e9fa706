"""Turning a job's input into the notebook the runner executes.

A notebook runs as is; a .py file becomes code cells (split on `# %%` markers, as Jupytext and
editors write them) so its globals live in the kernel; a zipped module is unpacked and its entry
point executed in the kernel's own namespace, so its globals are live afterwards too.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path, PurePosixPath

import nbformat
from papermill.iorw import load_notebook_node

CELL_MARKER = re.compile(r"^# ?%%.*$", re.MULTILINE)


def script_cells(source: str) -> list[str]:
    """Split a script on `# %%` markers; no markers means one cell."""
    parts = [part.strip("\n") for part in CELL_MARKER.split(source)]
    cells = [part for part in parts if part.strip()]
    return cells or [""]


def new_notebook(kernel_name: str, cells: list[str]) -> nbformat.NotebookNode:
    """A notebook of code cells for a kernel."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["papermill"] = {}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    for cell in nb.cells:
        cell.metadata["tags"] = []  # papermill's parameterize step reads every cell's tags
    return nb


def safe_extract(content: bytes, target: Path) -> None:
    """Unpack a zip checked by the service; refuse anything leaving `target` all the same."""
    target = target.resolve()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in archive.infolist():
            relative = PurePosixPath(info.filename)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"unsafe zip member {info.filename!r}")
            destination = (target / relative).resolve()
            if not destination.is_relative_to(target):
                raise ValueError(f"unsafe zip member {info.filename!r}")
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(destination, "wb") as sink:
                while chunk := source.read(1 << 16):
                    sink.write(chunk)


def build_notebook(
    kind: str, input_path: Path, content: bytes, entry_point: str | None, kernel_name: str
) -> nbformat.NotebookNode:
    """The notebook to execute for a job of this kind."""
    if kind == "notebook":
        input_path.write_bytes(content)
        # papermill's loader adds the tags its parameterize step expects.
        return load_notebook_node(str(input_path))
    if kind == "script":
        input_path.write_bytes(content)
        return new_notebook(kernel_name, script_cells(content.decode("utf-8")))
    if kind == "module":
        module_dir = input_path.parent / "module"
        module_dir.mkdir(exist_ok=True)
        safe_extract(content, module_dir)
        entry = str(entry_point or "")
        setup = (
            "import os as _os, sys as _sys\n"
            f"_os.chdir({str(module_dir)!r})\n"
            f"_sys.path.insert(0, {str(module_dir)!r})"
        )
        run = (
            f"__file__ = {entry!r}\n"
            "with open(__file__) as _source:\n"
            "    exec(compile(_source.read(), __file__, 'exec'))"
        )
        return new_notebook(kernel_name, [setup, run])
    return new_notebook(kernel_name, [""])
