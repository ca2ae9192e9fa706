"""Parsing hostile input within bounds: JSON depth and size, whole numbers with few digits.

Each check is cheap and runs before any real work, so a deeply nested body, a number of
thousands of digits or a Unicode digit ("²") gets a 400 with a sentence, never a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

from batch_service.errors import BatchError

MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 40
# Whole numbers as people type them: ASCII digits only (str.isdigit() accepts "²").
WHOLE_NUMBER = re.compile(rf"^[+-]?[0-9]{{1,{MAX_NUMBER_CHARS}}}$")
_NESTING = re.compile(rb'[\[\]{}"\\]')


def json_depth_ok(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if arrays and objects in raw JSON nest at most `limit` deep (a linear scan)."""
    depth = 0
    in_string = escaped = False
    for match in _NESTING.finditer(raw):
        ch = match.group()
        if in_string:
            if escaped:
                escaped = False
            elif ch == b"\\":
                escaped = True
            elif ch == b'"':
                in_string = False
            continue
        if ch == b'"':
            in_string = True
        elif ch in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif ch in (b"]", b"}"):
            depth -= 1
    return True


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BatchError(f"a number in the request has more than {MAX_NUMBER_CHARS} digits")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise BatchError(f"a number in the request has more than {MAX_NUMBER_CHARS} digits")
    return float(text)


def _no_constant(name: str) -> Any:
    raise BatchError(f"{name} is not a JSON number; send finite numbers only")


def parse_json(
    raw: bytes | str,
    what: str = "the request body",
    max_bytes: int = 0,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """JSON within bounds (size, nesting, digits, finite numbers), or a 4xx saying which."""
    data = raw.encode() if isinstance(raw, str) else raw
    if max_bytes and len(data) > max_bytes:
        raise BatchError(f"{what} is larger than {max_bytes} bytes", status=413)
    if not json_depth_ok(data, max_depth):
        raise BatchError(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(
            data,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_no_constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        detail = f" ({e})" if isinstance(e, json.JSONDecodeError) else ""
        raise BatchError(f"{what} is not valid JSON{detail}") from None


def whole_number(
    value: Any, name: str, minimum: int, maximum: int, field: str | None = None
) -> int:
    """A whole number from JSON or a form field, within [minimum, maximum], or a 400 (about
    the page's `field`, if given)."""
    if isinstance(value, bool):
        raise BatchError(f"{name} must be a whole number, not {value!r}", field=field)
    if isinstance(value, str):
        text = value.strip()
        if not WHOLE_NUMBER.match(text):
            raise BatchError(f"{name} must be a whole number, not {value[:40]!r}", field=field)
        value = int(text)
    if not isinstance(value, int):
        raise BatchError(f"{name} must be a whole number, not {str(value)[:40]!r}", field=field)
    if not minimum <= value <= maximum:
        raise BatchError(f"{name} must be between {minimum} and {maximum}", field=field)
    return value
