"""Values a run recorded, read from its executed notebook: scrapbook's glue and papermill's
named outputs, bounded, without importing scrapbook in the service."""

from __future__ import annotations

import json

import nbformat
from nbclient import NotebookClient

from batch_service.recorded import MAX_VALUE_BYTES, MAX_VALUES, recorded_values
from tests.batch import notebook


def executed(*cells: str) -> bytes:
    nb = nbformat.reads(notebook(*cells).decode(), as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    return nbformat.writes(nb).encode()


def output(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def with_outputs(*outputs: dict) -> bytes:
    cell = {"cell_type": "code", "source": "", "metadata": {}, "outputs": list(outputs)}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb).encode()


def test_values_glued_with_scrapbook_in_a_real_kernel_are_read() -> None:
    content = executed(
        "import scrapbook as sb\nsb.glue('loss', 0.25)\nsb.glue('stable', True)",
        "sb.glue('name', 'run-1')\nsb.glue('loss', 0.125)",
    )
    assert recorded_values(content) == {"loss": 0.125, "stable": True, "name": "run-1"}


def test_papermill_named_outputs_only_when_asked() -> None:
    content = with_outputs(output({"application/papermill.record+json": {"acc": 0.9, "x": 1}}))
    assert recorded_values(content) == {}
    assert recorded_values(content, ["acc"]) == {"acc": 0.9}


def test_odd_or_oversized_values_are_skipped_and_the_count_is_bounded() -> None:
    scrap = "application/scrapbook.scrap.json+json"
    many = [output({scrap: {"name": f"v{i}", "data": i}}) for i in range(MAX_VALUES + 10)]
    big = output({scrap: {"name": "big", "data": "x" * (MAX_VALUE_BYTES + 1)}})
    nameless = output({scrap: {"data": 1}})
    content = with_outputs(big, nameless, *many)
    values = recorded_values(content)
    assert len(values) == MAX_VALUES and "big" not in values
    assert recorded_values(b"not json") == {}
    assert recorded_values(b"[1, 2]") == {}
