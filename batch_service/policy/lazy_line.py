"""Where everyone left waiting stands, worked out when first read, not by the decision.

A decision's `waits`, `positions`, `reasons` and `waiting` are read-only mappings over one
LazyLine: the first read sorts the line and walks it once (waits.py); a pass whose line no one
reads costs only the decision.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from batch_service.policy.model import Request, Wait


class LazyLine:
    """Positions, reason codes and expected starts of those left waiting, worked out in one
    walk (waits.py) on first read: a long line costs a sort and that walk."""

    def __init__(
        self,
        lines: Callable[[], Iterable[Iterable[Request]]],
        plan: Callable[[list[Request]], tuple[dict[str, Wait], dict[str, int]]],
    ) -> None:
        self._lines: Callable[[], Iterable[Iterable[Request]]] | None = lines
        self._plan = plan
        self._waits: dict[str, Wait] = {}
        self._counts: dict[str, int] = {}
        # The walk may run in a worker thread while a reader asks: one walks, the other waits.
        self._walking = threading.Lock()

    def waits(self) -> dict[str, Wait]:
        """Wait of each request left waiting, by id."""
        if self._lines is not None:
            with self._walking:
                if self._lines is not None:
                    ordered = [r for line in self._lines() for r in line]
                    self._waits, self._counts = self._plan(ordered)
                    self._lines = None
        return self._waits

    def counts(self) -> dict[str, int]:
        """How many wait in each GPU type's line (CPU: "")."""
        self.waits()
        return self._counts


class WaitView(Mapping[str, Any]):
    """Request id -> one thing about its wait, read from the line when first asked."""

    def __init__(self, line: LazyLine, pick: Callable[[Wait], Any]) -> None:
        self._line = line
        self._pick = pick

    def __getitem__(self, key: str) -> Any:
        return self._pick(self._line.waits()[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._line.waits())

    def __len__(self) -> int:
        return len(self._line.waits())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class WaitsView(WaitView):
    """Request id -> Wait."""

    def __init__(self, line: LazyLine) -> None:
        super().__init__(line, lambda wait: wait)

    def __getitem__(self, key: str) -> Wait:
        return self._line.waits()[key]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """The Wait of a request, or `default` if it does not wait."""
        return self._line.waits().get(key, default)

    def values(self) -> Any:
        """Every Wait (without a lookup per key)."""
        return self._line.waits().values()


class CountsView(Mapping[str, int]):
    """GPU type ("" for CPU) -> how many wait in its line."""

    def __init__(self, line: LazyLine) -> None:
        self._line = line

    def __getitem__(self, key: str) -> int:
        return self._line.counts()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._line.counts())

    def __len__(self) -> int:
        return len(self._line.counts())
