"""The values file: load, merge over the defaults, validate against the one schema.

Concepts: the *schema* (hub_config/values.schema.yaml, shipped by the chart as
values.schema.json), the *defaults* (hub_config/values.yaml) and a *values file* a person
writes, which overrides the defaults key by key (lists replace whole).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "values.schema.yaml"
DEFAULTS_PATH = HERE / "values.yaml"
VALUES_ENV = "BATCHHUB_VALUES"

_MISSING = object()


class ValuesError(ValueError):
    """A values file that batchhub cannot start with; the message names the key."""


def load_schema() -> dict[str, Any]:
    """Return the values schema as a dict."""
    with SCHEMA_PATH.open() as f:
        return yaml.safe_load(f)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge override into a copy of base; mappings merge, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _key_path(path: Any) -> str:
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def _describe(error: jsonschema.ValidationError, schema: dict[str, Any]) -> str:
    """Turn one schema error into a sentence naming the key and what is allowed."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = where + "." if error.absolute_path else ""
        names = ", ".join(f"'{prefix}{key}'" for key in unknown)
        return f"unknown key {names}; allowed keys here: {', '.join(allowed)}"
    if error.validator == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return f"'{where}' is {error.instance!r}; allowed values: {choices}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"'{where}' must be of type {expected}, not {error.instance!r}"
    if error.validator == "required":
        return f"'{where}' is missing a required key: {error.message}"
    return f"'{where}': {error.message}"


def validate(values: Mapping[str, Any], source: str = "values") -> None:
    """Raise ValuesError naming the first offending key if values break the schema."""
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(values), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        error = jsonschema.exceptions.best_match(errors) if len(errors) > 1 else errors[0]
        # best_match prefers deep errors; an unknown key higher up is the clearer message
        unknown = [e for e in errors if e.validator == "additionalProperties"]
        if unknown:
            error = unknown[0]
        raise ValuesError(f"{source}: {_describe(error, schema)}")


def load_values(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Load the defaults, merge the given values file (or $BATCHHUB_VALUES) over them, validate."""
    with DEFAULTS_PATH.open() as f:
        values: dict[str, Any] = yaml.safe_load(f) or {}
    path = path or os.environ.get(VALUES_ENV) or None
    if path and Path(path).resolve() != DEFAULTS_PATH:
        try:
            with open(path) as f:
                override = yaml.safe_load(f) or {}
        except OSError as e:
            raise ValuesError(f"cannot read values file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ValuesError(f"values file {path} is not valid YAML: {e}") from None
        if not isinstance(override, Mapping):
            raise ValuesError(f"values file {path} must hold a mapping of sections")
        validate(override, source=f"values file {path}")
        values = deep_merge(values, override)
    validate(values, source=f"values file {path or DEFAULTS_PATH}")
    return values


def get(values: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """Read one key by its dotted path ("batch.port"); default when a part is missing."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return default
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return default
    return node


_UNITS = {"K": 1, "M": 2, "G": 3, "T": 4}


def parse_bytes(size: int | str | None) -> int | None:
    """Turn 512M / 4G / 1.5Gi / 1048576 into bytes (binary units); None stays None."""
    if size is None or isinstance(size, int):
        return size
    text = size.strip().removesuffix("i")
    number, unit = text[:-1], text[-1].upper()
    if unit not in _UNITS:
        return int(text)
    return int(float(number) * 1024 ** _UNITS[unit])
