"""The labels a replay sends to /feedback: which rows get one, and the queue that holds them
until they are due or the service can take them again."""

import heapq
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np


def choose_labelled(rows: int, fraction: float, seed: int) -> "np.ndarray[Any, np.dtype[np.bool_]]":
    """Which rows get their label sent: a uniform random `fraction` of them (by `seed`)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"label fraction must be between 0 and 1, not {fraction}")
    chosen = np.zeros(rows, dtype=np.bool_)
    picked = np.random.default_rng(seed).choice(rows, size=round(rows * fraction), replace=False)
    chosen[picked] = True
    return chosen


@dataclass
class PendingLabel:
    """A label waiting until it is due, or until the service can take it again."""

    transaction_id: str
    label: int
    due: float
    """When it first became due (wall clock): `label_delay` after its transaction was scored,
    or when the simulated issuer learnt it."""
    source: str | None = None
    """review or chargeback (the simulated issuer); None leaves the service's default."""
    observed_at: datetime | None = None
    """When it was learnt in simulated time; None: when the service receives it."""
    attempts: int = 0

    def body(self) -> dict[str, Any]:
        """The label as /feedback takes it."""
        item: dict[str, Any] = {"transaction_id": self.transaction_id, "label": self.label}
        if self.source is not None:
            item["source"] = self.source
        if self.observed_at is not None:
            item["observed_at"] = iso_utc(self.observed_at)
        return item


def iso_utc(at: datetime) -> str:
    """A naive UTC time as ISO 8601 with its zone: 2026-03-01T09:00:00.000000Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LabelQueue:
    """Labels ordered by when they may next be sent (due time, or a retry after a refusal)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, PendingLabel]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, label: PendingLabel, at: float | None = None) -> None:
        """Queue `label` to be sent at `at` (default: when it is due)."""
        heapq.heappush(self._heap, (label.due if at is None else at, next(self._order), label))

    def next_at(self) -> float | None:
        """When the earliest label may be sent, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def take(self, now: float, limit: int | None = None) -> list[PendingLabel]:
        """Up to `limit` (default: all) labels that may be sent at `now`, earliest first."""
        taken: list[PendingLabel] = []
        while self._heap and self._heap[0][0] <= now and len(taken) != limit:
            taken.append(heapq.heappop(self._heap)[2])
        return taken

    def drain(self) -> list[PendingLabel]:
        """Every queued label, emptying the queue."""
        labels = [entry[2] for entry in sorted(self._heap)]
        self._heap.clear()
        return labels
