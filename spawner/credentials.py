"""Credentials that tie batch servers and GPU turns to the batch service (the trust model).

A user's servers run the user's code, so nothing a server holds is secret from its user. What
the user cannot hold is the *signing key*: the hub config creates it in the hub's private state
folder and hands it to two parties only, the hub's spawner and the batch service.

* **Start tickets.** The service signs the `batch` block of a batch server's user_options
  (owner, server, profile, job, limits, a fresh `start_id`, the time it was issued). The
  spawner starts a `batch-*` server only with a valid, fresh ticket, so a user who calls the
  hub API herself (or replays options she read back from it) is refused.
* **Runner keys.** From a valid ticket the spawner derives the run's key and puts it in that
  server's environment. The service accepts runner calls for a job only with the key of the
  job's *current* start, and only while the hub runs that server: an earlier start, a token the
  user minted, or a server the service did not start cannot report for the job.
* **Turn keys.** The spawner (hub code, never the user's) signs its calls to the GPU line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEY_BYTES = 32
# How long a start ticket may take from the service to the spawner (hub calls, retries).
TICKET_MAX_AGE = 300.0
TICKET_FIELDS = ("job_id", "time_limit", "live_window", "start_id", "issued_at")
RUNNER_KEY_HEADER = "X-Batchhub-Runner-Key"
TURN_KEY_HEADER = "X-Batchhub-Turn-Key"


class TicketError(ValueError):
    """A start ticket that does not come from the batch service; the message says why."""


def load_or_create_key(path: str | os.PathLike[str]) -> bytes:
    """The signing key at path (mode 0600), created on first use."""
    key_path = Path(path)
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(secrets.token_hex(KEY_BYTES))
    key = bytes.fromhex(key_path.read_text().strip())
    if len(key) < 16:
        raise ValueError(f"the signing key in {key_path} is too short")
    return key


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def _ticket_message(owner: str, server: str, profile: str, batch: Mapping[str, Any]) -> str:
    body = {field: batch.get(field) for field in TICKET_FIELDS}
    body.update(owner=owner, server=server, profile=profile)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def sign_ticket(
    key: bytes, owner: str, server: str, profile: str, batch: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """The `batch` block with a fresh start id, its issue time and the service's signature."""
    signed = {field: batch[field] for field in ("job_id", "time_limit", "live_window")}
    signed["start_id"] = str(batch.get("start_id") or secrets.token_hex(8))
    signed["issued_at"] = float(now)
    signed["signature"] = _mac(key, "ticket", _ticket_message(owner, server, profile, signed))
    return signed


def verify_ticket(
    key: bytes,
    owner: str,
    server: str,
    profile: str,
    batch: Mapping[str, Any],
    now: float,
    max_age: float = TICKET_MAX_AGE,
) -> str:
    """Check a start ticket; return its start id or raise TicketError saying why."""
    signature = batch.get("signature")
    if not isinstance(signature, str) or not signature:
        raise TicketError("batch servers are started by the batch service only")
    expected = _mac(key, "ticket", _ticket_message(owner, server, profile, batch))
    if not hmac.compare_digest(signature, expected):
        raise TicketError("batch servers are started by the batch service only")
    issued = batch.get("issued_at")
    if not isinstance(issued, (int, float)) or not (now - max_age <= issued <= now + 60):
        raise TicketError("this batch server's start ticket has expired; the service starts it")
    start_id = batch.get("start_id")
    if not isinstance(start_id, str) or not start_id:
        raise TicketError("batch servers are started by the batch service only")
    return start_id


def runner_key(key: bytes, owner: str, server: str, start_id: str) -> str:
    """The key a batch server's runner sends with every call for this one start."""
    return _mac(key, "runner", owner, server, start_id)


def turn_key(key: bytes, owner: str, server: str) -> str:
    """The key the spawner sends with GPU-line calls for one server."""
    return _mac(key, "turn", owner, server)


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented key."""
    return isinstance(given, str) and hmac.compare_digest(given, expected)
