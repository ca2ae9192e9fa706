"""What a submission asks of its run besides the file: parameters, report mode, arguments.

Checked once when the job is stored; what papermill or Python would run is accepted, and what
they would run other than meant comes back as warnings the job keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batch_service.errors import BatchError
from batch_service.params import validate_parameters
from batch_service.uploads import CheckedInput

MAX_ARGS = 1000
MAX_ARG_CHARS = 4096
MAX_ARGS_CHARS = 64 * 1024
ARG_KINDS = ("script", "module")


@dataclass(frozen=True)
class RunOptions:
    """A job's checked parameters, report mode and arguments, with the warnings they got."""

    parameters: dict[str, Any] = field(default_factory=dict)
    report_mode: bool = False
    args: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_args(args: Any, kind: str) -> list[str]:
    """Command-line arguments: a bounded list of strings, for a .py file or a zipped module."""
    if args in (None, ""):
        return []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BatchError('args must be a list of strings, e.g. ["--epochs", "3"]')
    if args and kind not in ARG_KINDS:
        raise BatchError(
            "args are for a .py file or a zipped module (its sys.argv); "
            "a notebook takes parameters instead"
        )
    if len(args) > MAX_ARGS:
        raise BatchError(f"at most {MAX_ARGS} args")
    if sum(len(a) for a in args) > MAX_ARGS_CHARS or any(len(a) > MAX_ARG_CHARS for a in args):
        raise BatchError(
            f"args are too long (each at most {MAX_ARG_CHARS} characters, "
            f"all together {MAX_ARGS_CHARS})"
        )
    if any("\0" in a for a in args):
        raise BatchError("an argument may not contain a NUL character")
    return list(args)


def check_report_mode(value: Any) -> bool:
    """papermill's --report-mode as true/false (a form sends text)."""
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "on", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "off", "no"):
        return False
    raise BatchError(f"report_mode must be true or false, not {str(value)[:40]!r}")


def run_options(upload: CheckedInput, parameters: Any, report_mode: Any, args: Any) -> RunOptions:
    """Check what the run is asked to do with this input."""
    # The upload's checks (in a worker process) found its parameters cell and reassignments.
    clean, warnings = validate_parameters(parameters, upload.parameters, upload.kind)
    found = upload.reassignments or {}
    warnings += [found[name] for name in clean if name in found]
    return RunOptions(
        parameters=clean,
        report_mode=check_report_mode(report_mode),
        args=check_args(args, upload.kind),
        warnings=warnings,
    )
