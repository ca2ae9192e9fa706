"""Checking what users upload: file names, notebooks, scripts and zipped modules.

Everything here is hostile until checked. A zip is refused for `..` or absolute member paths,
symlinks, too many members, or more uncompressed bytes than allowed, counted while actually
decompressing (a member's declared size can lie).
"""

from __future__ import annotations

import io
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import nbformat

from batch_service.bounded import parse_json
from batch_service.errors import BatchError
from batch_service.files import StagedFolder
from batch_service.params import Parameter, notebook_parameters
from batch_service.scripts import empty_notebook as empty_notebook_node
from batch_service.scripts import reassignments, script_notebook

KINDS_BY_SUFFIX = {".ipynb": "notebook", ".py": "script", ".zip": "module"}
UNSAFE_NAME_CHARACTERS = set("<>\"'&`/\\")
MAX_NAME_LENGTH = 255


# A notebook's JSON may nest outputs; deeper than this is no notebook anyone wrote.
MAX_NOTEBOOK_DEPTH = 100


@dataclass(frozen=True)
class CheckedInput:
    """An upload that passed every check, with what its checks found.

    `parameters` is the notebook's parameters cell (None when it has none or is no notebook);
    checks run in a worker process, so this holds plain data, never the parsed notebook.
    """

    kind: str
    name: str
    content: bytes
    entry_point: str | None = None
    parameters: list[Parameter] | None = None
    kernel_name: str | None = None
    # A script's top-level names it sets again after injection, with the warning for each.
    reassignments: dict[str, str] | None = None
    # The job folder a check worker already wrote with this input in it (see CheckPool).
    staged: StagedFolder | None = None


def check_file_name(name: str, what: str = "file name", field: str | None = None) -> str:
    """Refuse names with control characters, HTML, path separators or odd length (a refusal
    about the page's `field`, if given)."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BatchError(f"the {what} must be 1 to {MAX_NAME_LENGTH} characters long", field=field)
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise BatchError(f"the {what} {name!r} contains a control character", field=field)
        if ch in UNSAFE_NAME_CHARACTERS:
            raise BatchError(
                f"the {what} {name!r} contains {ch!r}; use letters, digits, spaces, . - _",
                field=field,
            )
    if name.strip() != name or name.startswith("."):
        raise BatchError(
            f"the {what} {name!r} must not start with a dot or space or end in one", field=field
        )
    return name


def kind_of(name: str) -> str:
    """The job kind an upload's suffix means."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in KINDS_BY_SUFFIX:
        raise BatchError(
            f"cannot run {name!r}: upload a notebook (.ipynb), a Python file (.py) "
            "or a zip of a module (.zip)"
        )
    return KINDS_BY_SUFFIX[suffix]


def read_notebook(content: bytes, name: str = "the upload") -> nbformat.NotebookNode:
    """Parse and validate a notebook (nbformat 4), with a message naming what is wrong."""
    try:
        raw = parse_json(content, what="it", max_depth=MAX_NOTEBOOK_DEPTH)
    except BatchError as e:
        raise BatchError(f"{name} is not a notebook: {e.message}") from None
    if not isinstance(raw, dict) or "cells" not in raw or "nbformat" not in raw:
        raise BatchError(f"{name} is not a notebook: it has no 'cells' or 'nbformat'")
    try:
        # Bounds are checked above. nbformat.reads would validate (and log) before our own
        # validate raises: read and convert, then validate once.
        nb = nbformat.convert(nbformat.reader.reads(content.decode("utf-8")), 4)
        nbformat.validate(nb)
    except Exception as e:  # nbformat raises several types for one meaning: invalid
        message = str(e).splitlines()[0][:300]
        raise BatchError(f"{name} is not a valid notebook: {message}") from None
    return nb


def check_script(content: bytes, name: str) -> None:
    """A .py job must be UTF-8 Python that compiles."""
    try:
        source = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BatchError(f"{name} is not UTF-8 text") from None
    try:
        compile(source, name, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise BatchError(f"{name} line {e.lineno}: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise BatchError(f"{name} cannot be compiled: {str(e) or type(e).__name__}") from None


def _check_member_name(name: str) -> PurePosixPath:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BatchError(f"the zip member {name!r} has an absolute path; only relative paths")
    path = PurePosixPath(name)
    if ".." in path.parts:
        raise BatchError(f"the zip member {name!r} points outside the archive ('..')")
    for part in path.parts:
        check_file_name(part, "zip member name")
    return path


def entry_point_candidates(entry_point: str) -> list[str]:
    """Member paths an entry point may mean: a path, or a dotted module name."""
    if entry_point.endswith((".py", ".ipynb")):
        return [entry_point]
    module_path = entry_point.replace(".", "/")
    return [f"{module_path}.py", f"{module_path}/__main__.py"]


def check_zip(
    content: bytes, name: str, entry_point: str | None, max_members: int, max_bytes: int
) -> str:
    """Refuse unsafe archives; return the entry point's member path."""
    if not entry_point:
        raise BatchError("a zipped module needs an entry point, e.g. main.py or mypkg.train")
    entry = entry_point.strip()
    if entry.endswith(".ipynb"):
        # A notebook with the files of its folder (JupyterLab's "run job with input folder").
        _check_member_name(entry)
    elif not all(part.isidentifier() for part in entry.removesuffix(".py").split("/")) and not all(
        part.isidentifier() for part in entry.split(".")
    ):
        raise BatchError(
            f"the entry point {entry!r} is not a .py path, a dotted module name or a notebook"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise BatchError(f"{name} is not a zip archive") from None
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise BatchError(f"{name} has {len(members)} members; at most {max_members} allowed")
        files = set()
        total = 0
        for info in members:
            path = _check_member_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise BatchError(f"the zip member {info.filename!r} is a symbolic link")
            if info.is_dir():
                continue
            files.add(str(path))
            try:
                with archive.open(info) as member:
                    while chunk := member.read(1 << 16):
                        total += len(chunk)
                        if total > max_bytes:
                            raise BatchError(
                                f"{name} unpacks to more than {max_bytes} bytes; "
                                "that is over the limit"
                            )
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as e:
                raise BatchError(f"the zip member {info.filename!r} cannot be read: {e}") from None
    for candidate in entry_point_candidates(entry):
        if candidate in files:
            return candidate
    raise BatchError(f"the entry point {entry!r} is not in {name}")


def check_upload(
    name: str,
    content: bytes,
    entry_point: str | None,
    max_members: int,
    max_bytes: int,
) -> CheckedInput:
    """Check one upload end to end and say what kind of job it is."""
    check_file_name(name)
    kind = kind_of(name)
    if kind == "notebook":
        nb = read_notebook(content, name)
        kernel = nb.metadata.get("kernelspec", {}).get("name")
        return CheckedInput(
            kind,
            name,
            content,
            parameters=notebook_parameters(nb),
            kernel_name=kernel if isinstance(kernel, str) else None,
        )
    if kind == "script":
        check_script(content, name)
        source = content.decode("utf-8")
        found = reassignments(source, name)
        # A `# %% tags=["parameters"]` cell is a parameters cell, as in a notebook.
        declared = notebook_parameters(script_notebook(source))
        return CheckedInput(kind, name, content, parameters=declared, reassignments=found)
    member = check_zip(content, name, entry_point, max_members, max_bytes)
    if member.endswith(".ipynb"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            nb = read_notebook(archive.read(member), member)  # bounded by check_zip
        kernel = nb.metadata.get("kernelspec", {}).get("name")
        return CheckedInput(
            kind,
            name,
            content,
            entry_point=member,
            parameters=notebook_parameters(nb),
            kernel_name=kernel if isinstance(kernel, str) else None,
        )
    return CheckedInput(kind, name, content, entry_point=member)


def empty_notebook(kernel_name: str) -> bytes:
    """An empty notebook to start a live kernel with nothing run yet."""
    return nbformat.writes(empty_notebook_node(kernel_name)).encode()
