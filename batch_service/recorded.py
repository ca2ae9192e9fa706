"""Values a run recorded, read from its executed notebook without importing scrapbook.

scrapbook's `glue(name, value)` displays an output whose data holds its mime type
`application/scrapbook.scrap.json+json` (or `...text+json`) with `{"name", "data"}`;
papermill's older `record(name, value)` displays `application/papermill.record+json` with
`{name: value}` (read only for the names a sweep asks for). The notebook is the run's, so this
is the user's claim: it is parsed in a worker process, and the values kept are bounded in
number and size. The last value glued under a name wins, as scrapbook reads it.
"""

from __future__ import annotations

import json
import math
from typing import Any

SCRAP_PREFIX = "application/scrapbook.scrap."
SCRAP_SUFFIX = "+json"
PAPERMILL_RECORD = "application/papermill.record+json"
MAX_VALUES = 64
MAX_NAME_CHARS = 64
MAX_VALUE_BYTES = 8 * 1024
MAX_TOTAL_BYTES = 64 * 1024


def _plain(value: Any, depth: int = 0) -> bool:
    if depth > 16:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return value is None or isinstance(value, (str, int, bool))


def _found(notebook: Any, names: set[str]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else []:
            data = output.get("data") if isinstance(output, dict) else None
            if not isinstance(data, dict):
                continue
            for mime, payload in data.items():
                if mime.startswith(SCRAP_PREFIX) and mime.endswith(SCRAP_SUFFIX):
                    if isinstance(payload, dict) and isinstance(payload.get("name"), str):
                        found.append((payload["name"], payload.get("data")))
                elif mime == PAPERMILL_RECORD and isinstance(payload, dict):
                    found.extend((k, v) for k, v in payload.items() if k in names)
    return found


def recorded_values(content: bytes, names: list[str] | None = None) -> dict[str, Any]:
    """name -> value of what the executed notebook recorded (bounded; odd values skipped)."""
    try:
        notebook = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    values: dict[str, Any] = {}
    total = 0
    for name, value in _found(notebook, set(names or ())):
        if not name or len(name) > MAX_NAME_CHARS or not _plain(value):
            continue
        size = len(json.dumps(value))
        if size > MAX_VALUE_BYTES:
            continue
        if name not in values and (len(values) >= MAX_VALUES or total + size > MAX_TOTAL_BYTES):
            continue
        total += size
        values[name] = value
    return values
