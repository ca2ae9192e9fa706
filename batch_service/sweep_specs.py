"""A fixed sweep spec's points: a grid, a table or random samples, made at once, checked and
without duplicates. (Adaptive sweeps choose theirs as they run: batch_service.sweep_space.)"""

from __future__ import annotations

import random
from typing import Any

from batch_service.params import Parameter
from batch_service.sweep_points import (
    DEFAULT_MAX_POINTS,
    KINDS,
    Checker,
    SweepError,
    grid_points,
    point_hash,
    table_points,
)
from batch_service.sweep_space import parse_bounds


def random_points(
    space: Any, samples: Any, seed: Any, checker: Checker, max_points: int = DEFAULT_MAX_POINTS
) -> list[dict[str, Any]]:
    """`samples` points drawn with `seed` (the same seed gives the same points).

    Each parameter: {"low", "high"} (floats; "log": true for log scale; "int": true for whole
    numbers) or {"choices": [...]}, bounds as adaptive sweeps take them.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise SweepError("samples must be a whole number, at least 1")
    if samples > max_points:
        raise SweepError(f"{samples} samples are more than {max_points} (max_points)")
    if seed is None:
        seed = 0
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise SweepError("seed must be a whole number from 0 to 2^63-1")
    bounds = parse_bounds(space, checker, "a random sweep's space")
    rng = random.Random(seed)
    points = []
    for _ in range(samples):
        point = {name: bound.draw(rng) for name, bound in bounds.items()}
        points.append({n: checker.value(n, v) for n, v in point.items()})
    return points


def make_points(
    spec: Any, declared: list[Parameter] | None, input_name: str, max_points: int
) -> dict[str, dict[str, Any]]:
    """The points of a sweep spec ({"kind": "grid"|"table"|"random", ...}), checked and with
    duplicates dropped (first one kept), by their hash."""
    if not isinstance(spec, dict):
        raise SweepError('a sweep spec is an object with "kind": grid, table or random')
    kind = spec.get("kind")
    checker = Checker(declared, input_name)
    allowed = {"grid": {"grid"}, "table": {"table"}, "random": {"space", "samples", "seed"}}
    if kind not in allowed:
        raise SweepError(f"kind must be one of {', '.join(KINDS)}, not {str(kind)[:40]!r}")
    unknown = set(spec) - allowed[kind] - {"kind"}
    if unknown:
        raise SweepError(f"unknown field {sorted(unknown)[0][:40]!r} in a {kind} sweep")
    if kind == "grid":
        points = grid_points(spec.get("grid"), checker, max_points)
    elif kind == "table":
        points = table_points(spec.get("table"), checker, max_points)
    else:
        points = random_points(
            spec.get("space"), spec.get("samples"), spec.get("seed"), checker, max_points
        )
    unique: dict[str, dict[str, Any]] = {}
    for point in points:
        unique.setdefault(point_hash(point), point)
    return unique
