"""How analysts work the alert queue: highest score first, up to a daily capacity.

One policy for the real queue (`/review`) and the simulated issuer (`fraud simulate --labels
issuer`), so the simulated analyst and a real one review the same alerts in the same order.
Ties in score go to the older alert, then to the smaller transaction id, so the order is total
and the same in SQL as in memory.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

DEFAULT_CAPACITY = 100
"""Alerts a day the analysts review when nothing says otherwise. The champion raised 64 alerts in
the 7.7 hours of the real new-data slice, so at the data's own pace the lowest-scored alerts of
a busy day wait or go unreviewed, as in a real queue."""


@dataclass(frozen=True)
class Alert:
    """A flagged transaction waiting for review."""

    transaction_id: str
    score: float
    at: datetime
    """When it happened: its event time, or the receive time when it had none (naive UTC)."""


def queue_key(alert: Alert) -> tuple[float, datetime, str]:
    """Sort key of the queue: highest score first, then the oldest, then by id."""
    return (-alert.score, alert.at, alert.transaction_id)


def queue_order(score: Any, at: Any, transaction_id: Any) -> list[Any]:
    """The same order as SQL ORDER BY terms over the given columns."""
    return [score.desc(), at.asc(), transaction_id.asc()]


def review_day(at: datetime) -> date:
    """The day an alert's review counts against (the UTC calendar day)."""
    return at.date()


@dataclass(frozen=True)
class ReviewPolicy:
    """Up to `capacity` reviews a day, highest score first."""

    capacity: int = DEFAULT_CAPACITY

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ValueError(f"review capacity must not be negative, not {self.capacity}")

    def left(self, reviewed_today: int) -> int:
        """Reviews the day still has room for."""
        return max(0, self.capacity - reviewed_today)

    def pick(self, pending: Iterable[Alert], reviewed_today: int) -> list[Alert]:
        """The alerts to review now, in review order: the best-scored `left` of `pending`."""
        return sorted(pending, key=queue_key)[: self.left(reviewed_today)]
