"""What went wrong in a failed run: the failing cell's source and its whole traceback.

Read from the executed notebook the service stores (the runner numbers code cells from 1 and
records that number as the cell's execution count). Tracebacks carry ANSI colours: they are
rendered to HTML with nbconvert's own filter, and given as plain text too.
"""

from __future__ import annotations

import json
from typing import Any

from nbconvert.filters.ansi import ansi2html, strip_ansi

# Bounds on what one answer carries: a traceback can be huge (deep recursion).
MAX_SOURCE_CHARS = 20_000
MAX_TRACEBACK_CHARS = 100_000


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit // 2] + "\n… (cut) …\n" + text[-limit // 2 :]


def failing_cell(content: bytes, cell_number: int) -> dict[str, Any] | None:
    """The failing code cell (1-based among code cells): source and traceback, else None."""
    try:
        nb = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return None
    code_cells = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    if not 1 <= cell_number <= len(code_cells):
        return None
    cell = code_cells[cell_number - 1]
    traceback = ""
    for output in cell.get("outputs") or []:
        if isinstance(output, dict) and output.get("output_type") == "error":
            lines = output.get("traceback")
            traceback = "\n".join(t for t in lines if isinstance(t, str)) if lines else ""
            if not traceback:
                traceback = f"{_text(output.get('ename'))}: {_text(output.get('evalue'))}"
    traceback = _clip(traceback, MAX_TRACEBACK_CHARS)
    return {
        "cell": cell_number,
        "source": _clip(_text(cell.get("source")), MAX_SOURCE_CHARS),
        "traceback": strip_ansi(traceback),
        "traceback_html": ansi2html(traceback),
    }
