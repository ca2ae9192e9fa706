"""Search spaces: parameters' bounds, random draws within them, and adaptive sweeps' specs
(a search space or bounds, a budget, and which proposals fit them).

Two kinds of sweep choose their points while they run (batch_service/sweep_followups.py):

- **optuna**: Optuna asks a trial in a search space, the run's recorded value is told back.
  `{"kind": "optuna", "space": {"x": {"low": 0, "high": 5}}, "objective": "loss",
  "direction": "minimize", "max_trials": 30, "seed": 1, "startup_trials": 5}`
- **explore**: runs propose next points by gluing `next_points`; those within the bounds and
  the budget are queued. `{"kind": "explore", "start": [{"x": 0, "y": 0}], "bounds": {"x":
  {"low": -5, "high": 5}, "y": {"low": -5, "high": 5}}, "max_points": 200, "max_depth": 10}`

Each parameter's bounds are `{"low", "high"}` (with `"int": true` for whole numbers and
`"log": true` for a log scale) or `{"choices": [...]}`. Everything here is pure: checked before
anything is stored, and proposals (a run's claim) are judged here without trusting them.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batch_service.sweep_points import MAX_AXES, Checker, SweepError, point_hash

ADAPTIVE_KINDS = ("optuna", "explore")
DIRECTIONS = ("minimize", "maximize")
MAX_CHOICES = 1000
MAX_DEPTH = 1000
# A run's proposals read at most: more are dropped as over budget.
MAX_PROPOSALS = 1000
OPTUNA_FIELDS = {"space", "objective", "direction", "max_trials", "seed", "startup_trials"}
EXPLORE_FIELDS = {"start", "bounds", "max_points", "max_depth"}
# Why a proposal was not queued (counted in the sweep's info).
OUT_OF_BOUNDS, OVER_BUDGET, TOO_DEEP, ALREADY_SEEN, MALFORMED = (
    "out_of_bounds",
    "over_budget",
    "too_deep",
    "already_seen",
    "malformed",
)


@dataclass(frozen=True)
class Bound:
    """One parameter's allowed values: a range (whole numbers, log scale) or choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    whole: bool = False
    choices: tuple[Any, ...] | None = None

    def contains(self, value: Any) -> bool:
        """True if the value is one this parameter may take."""
        if self.choices is not None:
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value) or (self.whole and not float(value).is_integer()):
            return False
        assert self.low is not None and self.high is not None
        return self.low <= value <= self.high

    def draw(self, rng: random.Random) -> Any:
        """A value drawn at random: uniform over the choices, the range or its logarithm."""
        if self.choices is not None:
            return rng.choice(self.choices)
        assert self.low is not None and self.high is not None
        if self.whole:
            low, high = int(self.low), int(self.high)
            if self.log:
                # Rounding can step past an end of the range: stay inside it.
                drawn = round(math.exp(rng.uniform(math.log(low), math.log(high))))
                return min(high, max(low, drawn))
            return rng.randint(low, high)
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


def _same(a: Any, b: Any) -> bool:
    # True is not 1 to a parameter: compare types as well as values.
    return (
        type(a) is type(b)
        and a == b
        or (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def _number(name: str, end: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SweepError(f"{name}: {end} must be a finite number (a search space needs bounds)")
    return value


def parse_bound(name: str, raw: Any, checker: Checker) -> Bound:
    """One parameter's bounds, checked against the input's parameter types."""
    if not isinstance(raw, dict):
        raise SweepError(f'{name}: give bounds {{"low": .., "high": ..}} or {{"choices": [..]}}')
    unknown = set(raw) - {"low", "high", "log", "int", "choices"}
    if unknown:
        raise SweepError(f"{name}: unknown field {sorted(unknown)[0][:40]!r}")
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
            raise SweepError(f"{name}: choices must be a list of 1 to {MAX_CHOICES} values")
        for choice in choices:
            if isinstance(choice, (list, dict)):
                raise SweepError(f"{name}: a choice is a number, text, true, false or null")
            checker.value(name, choice)
        return Bound(name, choices=tuple(choices))
    low = _number(name, "low", raw.get("low"))
    high = _number(name, "high", raw.get("high"))
    if low > high:
        raise SweepError(f"{name}: low {low} is above high {high}")
    log, whole = raw.get("log") is True, raw.get("int") is True
    if log and low <= 0:
        raise SweepError(f"{name}: a log scale needs low above 0")
    if whole:
        low, high = math.ceil(low), math.floor(high)
        if low > high:
            raise SweepError(f"{name}: no whole number lies between its low and high")
        checker.value(name, low)
    else:
        low, high = float(low), float(high)
        try:
            checker.value(name, low)
        except SweepError as e:
            raise SweepError(e.message + _whole_hint(name, checker)) from None
    return Bound(name, low, high, log, whole)


def _whole_hint(name: str, checker: Checker) -> str:
    # A range of floats for an int parameter: the fix is one field, so name it.
    try:
        checker.value(name, 1)
    except SweepError:
        return ""
    return '; for whole numbers add "int": true'


def parse_bounds(raw: Any, checker: Checker, what: str) -> dict[str, Bound]:
    """Each named parameter's bounds (a name the input does not declare is refused)."""
    if not isinstance(raw, dict) or not raw:
        raise SweepError(
            f'{what} is an object of name: {{"low": .., "high": ..}} or {{"choices": [..]}} '
            "(a search space needs bounds)"
        )
    if len(raw) > MAX_AXES:
        raise SweepError(f"{what} has at most {MAX_AXES} parameters")
    return {checker.name(name): parse_bound(name, bound, checker) for name, bound in raw.items()}


def _whole(spec: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SweepError(f"{name} must be a whole number from {low} to {high}")
    return value


@dataclass(frozen=True)
class OptunaSpec:
    """An optimisation sweep: where to search, what to optimise, how many trials."""

    bounds: dict[str, Bound]
    objective: str
    direction: str
    max_trials: int
    seed: int
    startup_trials: int


def parse_optuna(spec: Mapping[str, Any], checker: Checker, max_points: int) -> OptunaSpec:
    """Check an optimisation sweep's spec (budget within this service's max_points)."""
    bounds = parse_bounds(spec.get("space"), checker, "an optimisation sweep's space")
    objective = spec.get("objective")
    if not isinstance(objective, str) or not objective.isidentifier() or len(objective) > 64:
        raise SweepError(
            'objective must name the recorded value to optimise (glued with scrapbook), e.g. "loss"'
        )
    direction = spec.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise SweepError(f"direction must be minimize or maximize, not {str(direction)[:40]!r}")
    if "max_trials" not in spec:
        raise SweepError("max_trials is required: how many trials the optimisation may run")
    max_trials = spec.get("max_trials")
    if isinstance(max_trials, int) and not isinstance(max_trials, bool) and max_trials > max_points:
        raise SweepError(f"max_trials {max_trials} is more than {max_points} (max_points)")
    max_trials = _whole(spec, "max_trials", 1, max_points, 1)
    seed = _whole(spec, "seed", 0, 2**31 - 1, 0)
    startup = _whole(spec, "startup_trials", 0, max_trials, min(10, max_trials))
    return OptunaSpec(bounds, objective, direction, max_trials, seed, startup)


@dataclass(frozen=True)
class ExploreSpec:
    """An exploration sweep: where it starts, where it may go, how far."""

    start: list[dict[str, Any]]
    bounds: dict[str, Bound]
    max_points: int
    max_depth: int


def outside(point: Mapping[str, Any], bounds: Mapping[str, Bound]) -> str | None:
    """Why a point is out of bounds (None: it is within them)."""
    for name, value in point.items():
        bound = bounds.get(name)
        if bound is None:
            return f"{str(name)[:64]!r} has no bounds"
        if not bound.contains(value):
            return f"{name}={str(value)[:40]} is outside its bounds"
    return None


def parse_explore(spec: Mapping[str, Any], checker: Checker, max_points: int) -> ExploreSpec:
    """Check an exploration sweep's spec: bounds for every parameter a point sets, start
    points within them, a budget within this service's max_points."""
    bounds = parse_bounds(spec.get("bounds"), checker, "an exploration sweep's bounds")
    raw_max = spec.get("max_points")
    if isinstance(raw_max, int) and not isinstance(raw_max, bool) and raw_max > max_points:
        raise SweepError(f"max_points {raw_max} is more than this service's {max_points}")
    budget = _whole(spec, "max_points", 1, max_points, min(100, max_points))
    depth = _whole(spec, "max_depth", 0, MAX_DEPTH, 10)
    start = spec.get("start")
    if not isinstance(start, list) or not start:
        raise SweepError('start is a non-empty list of points, e.g. [{"x": 0, "y": 0}]')
    if len(start) > budget:
        raise SweepError(f"{len(start)} start points are more than max_points {budget}")
    points = []
    for i, point in enumerate(start, start=1):
        if not isinstance(point, dict) or not point:
            raise SweepError(f"start point {i} is not an object of name: value")
        why = outside(point, bounds)
        if why:
            raise SweepError(f"start point {i}: {why}")
        points.append({checker.name(k): checker.value(k, v) for k, v in point.items()})
    return ExploreSpec(points, bounds, budget, depth)


def take_proposals(
    proposals: Any,
    proposer: Mapping[str, Any],
    depth: int,
    spec: ExploreSpec,
    seen: set[str],
    points: int,
) -> tuple[list[tuple[str, dict[str, Any]]], Counter[str]]:
    """The proposals of a run at `depth` to queue (by hash, in order) and the others counted
    by why they were dropped. A proposal names what changes; the rest is its proposer's point.
    `seen`: hashes of the sweep's points; `points`: how many it has (its budget is counted in
    points, start points included)."""
    dropped: Counter[str] = Counter()
    if proposals is None:
        return [], dropped
    if not isinstance(proposals, list):
        dropped[MALFORMED] += 1
        return [], dropped
    if len(proposals) > MAX_PROPOSALS:
        dropped[OVER_BUDGET] += len(proposals) - MAX_PROPOSALS
        proposals = proposals[:MAX_PROPOSALS]
    taken: list[tuple[str, dict[str, Any]]] = []
    new = set()
    for proposal in proposals:
        if not isinstance(proposal, dict) or not proposal:
            dropped[MALFORMED] += 1
            continue
        point = {**proposer, **proposal}
        if outside(point, spec.bounds):
            dropped[OUT_OF_BOUNDS] += 1
            continue
        h = point_hash(point)
        if h in seen or h in new:
            dropped[ALREADY_SEEN] += 1
        elif depth + 1 > spec.max_depth:
            dropped[TOO_DEEP] += 1
        elif points + len(taken) >= spec.max_points:
            dropped[OVER_BUDGET] += 1
        else:
            new.add(h)
            taken.append((h, point))
    return taken, dropped


def parse_adaptive(
    spec: Mapping[str, Any], checker: Checker, max_points: int
) -> OptunaSpec | ExploreSpec:
    """An optimisation or exploration sweep's spec, checked (no unknown fields)."""
    kind = spec.get("kind")
    allowed = OPTUNA_FIELDS if kind == "optuna" else EXPLORE_FIELDS
    unknown = set(spec) - allowed - {"kind"}
    if unknown:
        raise SweepError(f"unknown field {sorted(unknown)[0][:40]!r} in a {kind} sweep")
    if kind == "optuna":
        return parse_optuna(spec, checker, max_points)
    return parse_explore(spec, checker, max_points)


def adaptive_points(
    spec: Mapping[str, Any], checker: Checker, max_points: int
) -> dict[str, dict[str, Any]]:
    """The points an adaptive sweep starts with, by hash: an exploration's start points, none
    for an optimisation (its trials are asked once it is stored)."""
    parsed = parse_adaptive(spec, checker, max_points)
    if isinstance(parsed, OptunaSpec):
        return {}
    return {point_hash(p): p for p in parsed.start}


def budget_of(spec: Any, max_points: int) -> dict[str, Any]:
    """What a sweep may grow to: trials, points and depth (a fixed sweep: max_points)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "optuna":
        return {"max_trials": spec["max_trials"]}
    if kind == "explore":
        return {
            "max_points": spec.get("max_points", min(100, max_points)),
            "max_depth": spec.get("max_depth", 10),
        }
    return {"max_points": max_points}
