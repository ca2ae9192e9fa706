"""Typed notebook parameters: what papermill finds in the parameters cell, and checking values.

Types are the ones papermill translates: None, bool, int, float, str, list, dict. A parameter's
type comes from its annotation (`lr: float = 0.1`) or else from its default's literal; a
parameter whose default is None or an expression takes any JSON value.

Only an annotated type is enforced (an int passes for a float). Everything else papermill runs
is accepted, with a warning the API, the page and the CLI show: a value unlike its default, a
name the parameters cell does not declare, a notebook without a parameters cell.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
from dataclasses import dataclass
from typing import Any

import nbformat
from papermill.exceptions import PapermillException
from papermill.inspection import _infer_parameters

from batch_service.errors import BatchError

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "list": (list,),
    "dict": (dict,),
}
ANNOTATION_ALIASES = {
    "list": "list",
    "dict": "dict",
    "tuple": "list",
    "integer": "int",
    "string": "str",
    "boolean": "bool",
}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook: name, type (or "any"), default value, help text."""

    name: str
    type: str
    default: Any
    default_source: str
    help: str
    annotated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the page and the API."""
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "default_source": self.default_source,
            "help": self.help,
            "annotated": self.annotated,
        }


def _type_from_annotation(annotation: str) -> str | None:
    base = annotation.strip().split("[", 1)[0].lower()
    base = ANNOTATION_ALIASES.get(base, base)
    return base if base in JSON_TYPES else None


def _literal(source: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _type_of_value(value: Any) -> str:
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, kind):
            return name
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "any"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def notebook_parameters(nb: nbformat.NotebookNode) -> list[Parameter] | None:
    """The notebook's parameters (papermill's inspection), or None without a parameters cell."""
    tagged = any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in nb.cells)
    if not tagged:
        return None
    for cell in nb.cells:
        # papermill expects every cell to carry a tags list (its own loader adds them).
        cell.metadata.setdefault("tags", [])
    try:
        inferred = _infer_parameters(nb)
    except ValueError:
        # papermill needs the notebook's kernel and language to write parameters into it, and
        # refuses to run it with parameters otherwise: say so now, not when the run starts.
        raise BatchError(
            "the notebook has a parameters cell but does not name its kernel and language "
            "(metadata.kernelspec), so papermill cannot inject parameters: save it from "
            "Jupyter once, which records them"
        ) from None
    except PapermillException as e:
        raise BatchError(f"papermill cannot read this notebook's parameters: {e}") from None
    found = []
    for raw in inferred:
        known, value = _literal(raw.default)
        declared = raw.inferred_type_name
        kind = _type_from_annotation(declared) if declared not in ("None", "") else None
        annotated = kind is not None
        if kind is None:
            kind = _type_of_value(value) if known else "any"
        found.append(
            Parameter(
                name=raw.name,
                type=kind,
                default=_jsonable(value) if known else None,
                default_source=raw.default,
                help=raw.help,
                annotated=annotated,
            )
        )
    return found


def check_name(name: Any) -> str:
    """A parameter name must be a Python identifier that is not a keyword."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise BatchError(f"parameter name {name!r} is not a valid Python identifier")
    return name


def _depth_ok(value: Any, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _depth_ok(v, depth + 1) for k, v in value.items())
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def check_value(name: str, value: Any, expected: str) -> Any:
    """Refuse a value of the wrong type, naming the parameter."""
    if not _depth_ok(value):
        raise BatchError(
            f"parameter {name!r}: only JSON values are allowed "
            "(finite numbers, nested at most 32 deep)"
        )
    if expected == "any":
        return value
    if value is None:
        raise BatchError(f"parameter {name!r} must be of type {expected}, not None")
    allowed = JSON_TYPES[expected]
    if isinstance(value, bool) and bool not in allowed:
        raise BatchError(f"parameter {name!r} must be of type {expected}, not bool")
    if not isinstance(value, allowed):
        raise BatchError(
            f"parameter {name!r} must be of type {expected}, not {type(value).__name__}"
        )
    return value


def validate_parameters(
    values: Any, declared: list[Parameter] | None, kind: str
) -> tuple[dict[str, Any], list[str]]:
    """Check names and values as papermill would run them: the clean dict and warnings.

    Refused: a name that is not an identifier, a value that is not plain JSON, a value unlike
    the type the notebook annotates. Warned: anything else papermill warns about or would run
    differently than the notebook's defaults suggest.
    """
    if values in (None, ""):
        return {}, []
    if not isinstance(values, dict):
        raise BatchError("parameters must be an object of name: value")
    clean: dict[str, Any] = {}
    warnings: list[str] = []
    if kind in ("script", "module"):
        # A script has no parameters cell unless it marks one: its values are any JSON.
        for name, value in values.items():
            clean[check_name(name)] = check_value(name, value, "any")
        return clean, warnings
    if declared is None:
        for name, value in values.items():
            clean[check_name(name)] = check_value(name, value, "any")
        if clean:
            warnings.append(
                "this notebook has no cell tagged 'parameters': the parameters go into a new "
                "cell at the top, as papermill puts them, and the notebook's own assignments "
                "may overwrite them"
            )
        return clean, warnings
    by_name = {p.name: p for p in declared}
    for name, value in values.items():
        check_name(name)
        parameter = by_name.get(name)
        if parameter is None:
            clean[name] = check_value(name, value, "any")
            known = ", ".join(sorted(by_name)) or "none"
            warnings.append(
                f"parameter {name!r} is not in the notebook's parameters cell ({known}); "
                "it is set all the same, as papermill does"
            )
            continue
        if parameter.annotated:
            clean[name] = check_value(name, value, parameter.type)
            continue
        clean[name] = check_value(name, value, "any")
        try:
            check_value(name, value, parameter.type)
        except BatchError:
            shown = json.dumps(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            warnings.append(
                f"parameter {name!r} is {shown} ({_json_type(value)}) where the notebook's "
                f"default is {parameter.default_source} ({parameter.type}); annotate it "
                f"(`{name}: {parameter.type} = ...`) to have other types refused"
            )
    return clean, warnings


def _json_type(value: Any) -> str:
    return "None" if value is None else _type_of_value(value)
