"""Turning a job's input into the notebook the runner executes, in the job's own folder.

The job's folder holds the input's files (a zip's members unpacked) and is the kernel's working
directory, so relative paths work. A notebook runs as is; a .py file is read by Jupytext
(percent or light format) and runs as `python file.py args...` would; a zipped module's entry
point runs as `python -m package.module args...` would (runpy's rules: `__spec__`,
`__package__` for relative imports, `sys.argv`), but in the kernel's own namespace, so its
globals are live afterwards, also after a failure. The notebook is read with nbformat only:
papermill's loader (papermill_steps) takes it once the kernel was launched.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import nbformat

from batch_service.scripts import empty_notebook, script_notebook

# Shown at the top of the cell batchhub adds, so a reader of the executed notebook knows.
PRELUDE = "# batchhub: {what}\n"


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


def module_name(entry_point: str) -> str:
    """`pkg/train.py` -> `pkg.train`; `pkg/__main__.py` -> `pkg.__main__` (as `-m pkg` runs)."""
    return str(PurePosixPath(entry_point).with_suffix("")).replace("/", ".")


def script_prelude(path: Path, args: list[str]) -> str:
    """What `python file.py args...` sets before the file's first line."""
    command = " ".join(["python", path.name, *args])
    return (
        PRELUDE.format(what=f"run as `{command}` would")
        + "import sys as _bh_sys\n"
        + f"_bh_sys.argv = {[str(path), *args]!r}\n"
        + f"_bh_sys.path.insert(0, {str(path.parent)!r})\n"
        + f"__file__ = {str(path)!r}"
    )


def module_runner(folder: Path, name: str, args: list[str]) -> str:
    """`python -m name args...` (runpy.run_module with alter_sys) in the kernel's namespace."""
    shown = name.removesuffix(".__main__")
    command = " ".join(["python -m", shown, *args])
    return (
        PRELUDE.format(what=f"run as `{command}` would; its globals stay in this kernel")
        + "import importlib.util as _bh_util, sys as _bh_sys\n"
        + f"_bh_sys.path.insert(0, {str(folder)!r})\n"
        + f"_bh_spec = _bh_util.find_spec({name!r})\n"
        + f"_bh_sys.argv = [_bh_spec.origin, *{args!r}]\n"
        + "__spec__, __file__, __cached__, __loader__, __package__ = (\n"
        + "    _bh_spec, _bh_spec.origin, _bh_spec.cached, _bh_spec.loader, _bh_spec.parent\n"
        + ")\n"
        + "exec(_bh_spec.loader.get_code(_bh_spec.name), globals())"
    )


def build_notebook(
    kind: str,
    folder: Path,
    input_name: str,
    content: bytes,
    entry_point: str | None,
    kernel_name: str,
    args: list[str],
) -> tuple[nbformat.NotebookNode, Path]:
    """The notebook to execute for a job of this kind, and the input's path in the folder."""
    path = folder / input_name
    if kind in ("notebook", "empty"):
        path.write_bytes(content)
        return nbformat.reads(content.decode("utf-8"), as_version=4), path
    if kind == "script":
        path.write_bytes(content)
        nb = script_notebook(content.decode("utf-8"), kernel_name)
        nb.cells.insert(0, nbformat.v4.new_code_cell(script_prelude(path, args)))
        return nb, path
    if kind == "module":
        safe_extract(content, folder)
        entry = str(entry_point or "")
        if entry.endswith(".ipynb"):
            # A notebook sent with the files of its folder: it runs among them.
            return nbformat.read(folder / entry, as_version=4), folder / entry
        nb = empty_notebook(kernel_name)
        nb.cells = [nbformat.v4.new_code_cell(module_runner(folder, module_name(entry), args))]
        return nb, folder / entry
    raise ValueError(f"unknown job kind {kind!r}")
