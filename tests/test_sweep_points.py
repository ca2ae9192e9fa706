"""Points of a sweep: grids, tables, random samples, hashes and the bounds on each."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_service.params import Parameter
from batch_service.sweep_points import (
    Checker,
    SweepError,
    canonical_json,
    parse_grid_args,
    point_hash,
)
from batch_service.sweep_specs import make_points


def param(name: str, kind: str, default: object, annotated: bool = False) -> Parameter:
    return Parameter(name, kind, default, repr(default), "", annotated)


DECLARED = [
    param("lr", "float", 0.1),
    param("layers", "int", 2),
    param("x", "float", 0.0),
    param("act", "str", "relu"),
    param("anything", "any", None),
]


def points(spec: dict, declared: list[Parameter] | None = DECLARED, max_points: int = 10_000):
    return list(make_points(spec, declared, "model.ipynb", max_points).values())


def test_grid_of_lists_and_ranges_is_every_combination():
    grid = parse_grid_args(["lr=0.1,0.01", "layers=1:4"])
    found = points({"kind": "grid", "grid": grid})
    assert len(found) == 8
    assert found[0] == {"lr": 0.1, "layers": 1}
    assert {p["layers"] for p in found} == {1, 2, 3, 4}
    assert {p["lr"] for p in found} == {0.1, 0.01}


def test_range_with_a_decimal_step_includes_both_ends_without_float_noise():
    found = points({"kind": "grid", "grid": {"x": "0:1:0.25"}})
    assert [p["x"] for p in found] == [0, 0.25, 0.5, 0.75, 1]
    tenths = points({"kind": "grid", "grid": {"x": "0:1:0.1"}})
    assert tenths[3]["x"] == 0.3
    down = points({"kind": "grid", "grid": {"layers": "4:1:-1"}})
    assert [p["layers"] for p in down] == [4, 3, 2, 1]


def test_text_values_and_json_lists():
    found = points({"kind": "grid", "grid": {"act": "relu,tanh", "anything": [1, "a", None]}})
    assert len(found) == 6
    assert {p["act"] for p in found} == {"relu", "tanh"}


def test_a_grid_past_max_points_is_refused_before_it_is_built():
    grid = {"lr": "0:1000000:1", "layers": "0:1000000:1", "x": "0:1000000:1"}
    started = time.perf_counter()
    with pytest.raises(SweepError, match="more than 10000"):
        points({"kind": "grid", "grid": grid})
    with pytest.raises(SweepError, match="more than 100 points"):
        points({"kind": "grid", "grid": {"lr": "0:9", "layers": "0:10"}}, max_points=100)
    # A range of 10^30 steps is refused from its bounds, not by counting.
    with pytest.raises(SweepError, match="more than 10000 values"):
        points({"kind": "grid", "grid": {"x": "0:1e30:1"}})
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        ({"x": "0:1:0"}, "step of a range may not be 0"),
        ({"x": "0:1:-0.5"}, "goes away from"),
        ({"layers": "1.5,2"}, "must be of type int"),
        ({"lr": "fast"}, "must be of type float"),
        ({"epochs": "1,2"}, "not a parameter of model.ipynb"),
        ({"x": "0:1:2:3"}, "a range is start:stop"),
        ({"x": "0:" + "9" * 50}, "at most 40 characters"),
        ({"for": "1,2"}, "not a valid Python identifier"),
        ({}, "a grid is an object"),
    ],
)
def test_bad_grids_are_refused_with_words(grid, words):
    with pytest.raises(SweepError, match=words):
        points({"kind": "grid", "grid": grid})


def test_int_passes_for_float_and_an_untyped_input_takes_any_name():
    assert len(points({"kind": "grid", "grid": {"lr": "1,2"}})) == 2
    assert len(points({"kind": "grid", "grid": {"epochs": "1,2"}}, declared=None)) == 2


def test_table_from_csv_and_json():
    csv_points = points({"kind": "table", "table": "lr,act\n0.1,relu\n0.01,tanh\n"})
    json_points = points(
        {"kind": "table", "table": [{"lr": 0.1, "act": "relu"}, {"lr": 0.01, "act": "tanh"}]}
    )
    assert csv_points == json_points == [{"lr": 0.1, "act": "relu"}, {"lr": 0.01, "act": "tanh"}]


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("lr,epochs\n0.1,3\n", "'epochs' is not a parameter of model.ipynb"),
        ("lr\nfast\n", "must be of type float"),
        ("lr,act\n0.1\n", "has 1 cells; the header has 2"),
        ("", "the table is empty"),
        ("lr\n", "no rows"),
        ([{"lr": 0.1}, "x"], "row 2 of the table"),
        ("lr,lr\n1,2\n", "names a column twice"),
    ],
)
def test_bad_tables_are_refused(table, words):
    with pytest.raises(SweepError, match=words):
        points({"kind": "table", "table": table})


def test_a_table_past_max_points_is_refused():
    text = "lr\n" + "0.1\n" * 101
    with pytest.raises(SweepError, match="more than 100 rows"):
        points({"kind": "table", "table": text}, max_points=100)


def test_random_samples_are_reproducible_within_bounds():
    space = {
        "lr": {"low": 1e-4, "high": 1e-1, "log": True},
        "layers": {"low": 1, "high": 4, "int": True},
        "act": {"choices": ["relu", "tanh"]},
    }
    spec = {"kind": "random", "space": space, "samples": 50, "seed": 7}
    first, again = points(spec), points(spec)
    assert first == again
    assert len(first) > 40  # duplicates dropped, if any
    assert all(1e-4 <= p["lr"] <= 1e-1 for p in first)
    assert all(p["layers"] in (1, 2, 3, 4) for p in first)
    other = points({**spec, "seed": 8})
    assert other != first


@pytest.mark.parametrize(
    ("space", "samples", "words"),
    [
        ({"lr": {"low": 0.1}}, 3, "high must be a finite number"),
        ({"lr": {}}, 3, "a search space needs bounds"),
        ({"lr": {"low": 1, "high": 0}}, 3, "above high"),
        ({"lr": {"low": 0, "high": 1, "log": True}}, 3, "log scale needs low above 0"),
        ({"lr": {"low": 0, "high": 1}}, 20_000, "more than 10000"),
        ({"lr": {"low": 0, "high": 1}}, 0, "at least 1"),
        ({"layers": {"low": 0.2, "high": 0.8, "int": True}}, 3, "no whole number"),
        ({"act": {"choices": []}}, 3, "choices must be a list of 1 to 1000 values"),
        ({"act": {"choices": ["relu", ["tanh"]]}}, 3, "a choice is a number, text"),
        ({"act": {"choices": ["relu", 3]}}, 3, "'act' must be of type str, not int"),
        ({"act": {"low": 1, "high": 4}}, 3, "'act' must be of type str, not float$"),
        ({"layers": {"low": 1, "high": 4}}, 3, "'layers' must be .* int.* add \"int\": true"),
        ({"lr": {"low": 0, "high": 1, "step": 0.1}}, 3, "unknown field 'step'"),
    ],
)
def test_bad_random_spaces_are_refused(space, samples, words):
    with pytest.raises(SweepError, match=words):
        points({"kind": "random", "space": space, "samples": samples, "seed": 1})


def test_unknown_kinds_and_fields_are_refused():
    with pytest.raises(
        SweepError, match="kind must be one of grid, table, random, optuna, explore"
    ):
        points({"kind": "bayes"})
    with pytest.raises(SweepError, match="unknown field 'seed'"):
        points({"kind": "grid", "grid": {"lr": "1"}, "seed": 1})


def test_duplicate_points_are_one_point():
    assert len(points({"kind": "grid", "grid": {"lr": "1,1.0,2"}})) == 2


def test_sweep_error_is_a_value_error_and_a_400():
    error = SweepError("x")
    assert isinstance(error, ValueError)
    assert error.status == 400


def test_grid_args_need_a_name_and_values():
    with pytest.raises(SweepError, match="write name=values"):
        parse_grid_args(["lr"])
    with pytest.raises(SweepError, match="given twice"):
        parse_grid_args(["lr=1", "lr=2"])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
points_strategy = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True), json_values, max_size=5
)


@given(points_strategy)
def test_hash_ignores_key_order(point):
    reordered = dict(reversed(list(point.items())))
    assert point_hash(point) == point_hash(reordered)
    assert canonical_json(point) == canonical_json(reordered)


@given(st.integers(min_value=-(2**52), max_value=2**52))
def test_an_integral_float_hashes_as_its_integer(n):
    assert point_hash({"x": float(n)}) == point_hash({"x": n})


@given(
    st.integers(min_value=-50, max_value=50),
    st.integers(min_value=0, max_value=60),
    st.sampled_from(["1", "0.5", "0.25", "3"]),
)
def test_range_length_matches_its_values(start, span, step):
    grid = {"x": f"{start}:{start + span}:{step}"}
    found = points({"kind": "grid", "grid": grid}, declared=None)
    values = [p["x"] for p in found]
    assert values[0] == start
    assert values == sorted(values)
    assert values[-1] <= start + span
    assert start + span - values[-1] < float(step)


def test_checker_names_the_input():
    with pytest.raises(SweepError, match="not a parameter of train.ipynb"):
        Checker(DECLARED, "train.ipynb").name("epochs")
