"""The points of a parameter sweep: grids and tables, hashes, and checks against the input.

Random samples draw within bounds (batch_service.sweep_space); batch_service.sweep_specs makes
the points of any fixed sweep spec.

Everything here is pure and bounded BEFORE it expands: a grid's size is the product of its axes'
lengths, worked out from the axes (a range's length from its start, stop and step) and refused
past `max_points` without building one point. Values are checked against the input's parameters
(batch_service.params): a name the notebook's parameters cell does not declare, or a value unlike
the parameter's type, is refused with the parameter's name.

Forms a person types (the CLI's `-g`, the API's `grid` object):

- a list: `lr=0.1,0.01` (each item a JSON literal if it reads as one, else text), or a JSON list;
- a range with a step, both ends included: `layers=1:4` (step 1), `x=0:1:0.25`. Ranges are
  worked out in decimal arithmetic, so `0:1:0.1` gives 0.3 and not 0.30000000000000004.

A point's hash is the SHA-256 of its canonical JSON (sorted keys, no spaces, integral floats
written as integers), so `lr=1` and `lr=1.0` are one point.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Any

from batch_service.errors import BatchError
from batch_service.params import Parameter, check_name, check_value

DEFAULT_MAX_POINTS = 10_000
MAX_NUMBER_CHARS = 40
MAX_AXIS_TEXT = 64 * 1024
MAX_TABLE_BYTES = 8 * 2**20
MAX_AXES = 32
# The kinds of sweep (optuna and explore choose their points as they run: sweep_space.py).
KINDS = ("grid", "table", "random", "optuna", "explore")


class SweepError(BatchError, ValueError):
    """A sweep's points cannot be made as asked; the message names what to change."""


# --- hashing ---------------------------------------------------------------------------
def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        # 1.0 and 1 are one value to a parameter; very large floats stay floats.
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    raise SweepError(f"{type(value).__name__} is not a JSON value")


def canonical_json(point: Mapping[str, Any]) -> str:
    """The point as canonical JSON: sorted keys, no spaces, integral floats as integers."""
    return json.dumps(
        _canonical(dict(point)), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def point_hash(point: Mapping[str, Any]) -> str:
    """A point's stable identity within its sweep (hex SHA-256 of its canonical JSON)."""
    return hashlib.sha256(canonical_json(point).encode()).hexdigest()


# --- reading values --------------------------------------------------------------------
def _decimal(text: str, what: str) -> Decimal:
    text = text.strip()
    if not text or len(text) > MAX_NUMBER_CHARS:
        raise SweepError(
            f"{what}: {text[:40]!r} is not a number of at most {MAX_NUMBER_CHARS} characters"
        )
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise SweepError(f"{what}: {text[:40]!r} is not a number") from None
    if not number.is_finite():
        raise SweepError(f"{what}: {text[:40]!r} is not a finite number")
    return number


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def literal(text: str) -> Any:
    """One typed value: a JSON literal (number, true, false, null, "quoted") if it reads as
    one, else the text itself."""
    text = text.strip()
    if len(text) > MAX_NUMBER_CHARS and text[:1] in "+-.0123456789":
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value if not isinstance(value, (list, dict)) else text


class Range:
    """`start:stop[:step]`, both ends included; its length is known without expanding it."""

    def __init__(self, name: str, text: str, max_points: int) -> None:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise SweepError(f"{name}: a range is start:stop or start:stop:step, not {text[:60]!r}")
        what = f"range of {name}"
        self.start = _decimal(parts[0], what)
        self.stop = _decimal(parts[1], what)
        self.step = _decimal(parts[2], what) if len(parts) == 3 else Decimal(1)
        if self.step == 0:
            raise SweepError(f"{name}: the step of a range may not be 0")
        span = self.stop - self.start
        if span != 0 and (span > 0) != (self.step > 0):
            raise SweepError(
                f"{name}: step {self.step} goes away from {self.stop}; "
                f"use a {'negative' if span < 0 else 'positive'} step"
            )
        # The length before anything is built: a step too small for the span is refused here.
        steps = (span / self.step).to_integral_value(rounding="ROUND_FLOOR")
        if steps + 1 > max_points:
            raise SweepError(
                f"{name}: the range {text[:60]} has more than {max_points} values "
                f"(this service's max_points); use a larger step"
            )
        self.length = int(steps) + 1

    def values(self) -> list[int | float]:
        """The range's values, start first."""
        return [_number(self.start + i * self.step) for i in range(self.length)]


def _axis(name: str, raw: Any, max_points: int) -> list[Any]:
    """One grid axis from its form (text list or range, or a JSON list); bounded first."""
    if isinstance(raw, list):
        if len(raw) > max_points:
            raise SweepError(f"{name}: more than {max_points} values")
        values = list(raw)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        values = [raw]
    elif isinstance(raw, str):
        if len(raw) > MAX_AXIS_TEXT:
            raise SweepError(f"{name}: the values are longer than {MAX_AXIS_TEXT} characters")
        if ":" in raw and all(_looks_numeric(p) for p in raw.split(":")):
            return Range(name, raw, max_points).values()
        values = [literal(item) for item in raw.split(",")]
        if len(values) > max_points:
            raise SweepError(f"{name}: more than {max_points} values")
    else:
        raise SweepError(
            f"{name}: give a list of values (lr=0.1,0.01) or a range (layers=1:4, x=0:1:0.25)"
        )
    if not values:
        raise SweepError(f"{name}: no values")
    return values


def _looks_numeric(text: str) -> bool:
    text = text.strip()
    return bool(text) and all(c in "+-.0123456789eE" for c in text)


def _axis_length(name: str, raw: Any, max_points: int) -> int:
    """How many values an axis has, without building a range."""
    if isinstance(raw, str) and ":" in raw and all(_looks_numeric(p) for p in raw.split(":")):
        return Range(name, raw, max_points).length
    return len(_axis(name, raw, max_points))


def parse_grid_args(items: Sequence[str]) -> dict[str, str]:
    """`name=values` items (the CLI's -g) as the API's grid object."""
    grid: dict[str, str] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep:
            raise SweepError(f"{item[:60]!r}: write name=values, e.g. lr=0.1,0.01 or layers=1:4")
        name = name.strip()
        if name in grid:
            raise SweepError(f"parameter {name!r} is given twice")
        grid[name] = values
    return grid


# --- checking against the input's parameters -----------------------------------------
class Checker:
    """Checks names and values against the input's declared parameters."""

    def __init__(self, declared: list[Parameter] | None, input_name: str) -> None:
        self.by_name = {p.name: p for p in declared} if declared is not None else None
        self.input_name = input_name

    def name(self, name: Any) -> str:
        """A valid identifier the input declares (when it declares any)."""
        try:
            check_name(name)
        except BatchError as e:
            raise SweepError(e.message) from None
        if self.by_name is not None and name not in self.by_name:
            known = ", ".join(sorted(self.by_name)) or "none"
            raise SweepError(
                f"{name!r} is not a parameter of {self.input_name} (its parameters: {known})"
            )
        return name

    def value(self, name: str, value: Any) -> Any:
        """A value of the parameter's type (its annotation, else its default's; an int passes
        for a float); a name without a known type takes any JSON value."""
        parameter = self.by_name.get(name) if self.by_name is not None else None
        expected = parameter.type if parameter is not None else "any"
        try:
            return check_value(name, value, expected)
        except BatchError as e:
            raise SweepError(e.message) from None


# --- the three kinds ---------------------------------------------------------------------
def grid_points(
    grid: Any, checker: Checker, max_points: int = DEFAULT_MAX_POINTS
) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the last axis varies fastest)."""
    if not isinstance(grid, dict) or not grid:
        raise SweepError('a grid is an object of name: values, e.g. {"lr": "0.1,0.01"}')
    if len(grid) > MAX_AXES:
        raise SweepError(f"a grid has at most {MAX_AXES} parameters")
    names = [checker.name(name) for name in grid]
    total = 1
    for name in names:
        total *= _axis_length(name, grid[name], max_points)
        if total > max_points:
            raise SweepError(
                f"this grid has more than {max_points} points (this service's max_points); "
                "use fewer values or larger steps"
            )
    axes = [[checker.value(n, v) for v in _axis(n, grid[n], max_points)] for n in names]
    return [dict(zip(names, values, strict=True)) for values in product(*axes)]


def table_points(
    table: Any, checker: Checker, max_points: int = DEFAULT_MAX_POINTS
) -> list[dict[str, Any]]:
    """One point per row: CSV text with a header row (cells read as literals), or a JSON list
    of objects."""
    if isinstance(table, str):
        rows = list(_csv_rows(table, max_points))
    elif isinstance(table, list):
        if len(table) > max_points:
            raise SweepError(f"the table has more than {max_points} rows (max_points)")
        rows = table
    else:
        raise SweepError("a table is CSV text with a header row, or a JSON list of objects")
    if not rows:
        raise SweepError("the table has no rows")
    points = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row:
            raise SweepError(f"row {i} of the table is not an object of name: value")
        points.append({checker.name(k): checker.value(k, v) for k, v in row.items()})
    return points


def _csv_rows(text: str, max_points: int) -> Iterator[dict[str, Any]]:
    if len(text.encode()) > MAX_TABLE_BYTES:
        raise SweepError(f"the table is larger than {MAX_TABLE_BYTES // 2**20} MiB")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise SweepError("the table is empty; its first row names the parameters") from None
    except csv.Error as e:
        raise SweepError(f"the table is not valid CSV: {e}") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise SweepError("the table's header names a column twice")
    try:
        for line, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if line - 1 > max_points:
                raise SweepError(f"the table has more than {max_points} rows (max_points)")
            if len(cells) != len(header):
                raise SweepError(
                    f"line {line} of the table has {len(cells)} cells; the header has {len(header)}"
                )
            yield {name: literal(cell) for name, cell in zip(header, cells, strict=True)}
    except csv.Error as e:
        raise SweepError(f"the table is not valid CSV: {e}") from None
