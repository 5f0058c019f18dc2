"""The labels a card issuer gets, in simulated time: `fraud simulate --labels issuer`.

- Analysts work the alert queue in rounds, every `review_delay_hours`: each round reviews the
  waiting alerts highest score first, up to what the day's capacity has left (the shared
  `ReviewPolicy`), and their labels arrive at the end of that round (source `review`). An alert
  waits a day at most: one never worked went through unreviewed.
- A fraud that review did not confirm (missed, or flagged but never worked) is disputed by its
  cardholder with probability `chargeback_rate`, after a delay drawn from a gamma distribution
  of shape 2 with mean `chargeback_delay_days` (a hump after a week or two and a long tail); a
  dispute later than `dispute_window_days` is never made (source `chargeback`).
- A legitimate transaction is never labelled.

Every random draw is made up front per row, from the seed, so the labels do not depend on the
pace, the batching or the order in which answers come back.
"""

import heapq
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import LABEL_MATURITY_DAYS
from ..review_policy import DEFAULT_CAPACITY, Alert, ReviewPolicy, review_day

ALERT_WAIT = timedelta(days=1)
"""How long an alert waits in the queue before it goes through unreviewed."""
CHARGEBACK_SHAPE = 2.0
"""Shape of the gamma distribution of chargeback delays (its mean is the option)."""


@dataclass(frozen=True)
class IssuerOptions:
    """How the simulated issuer labels: review capacity and rounds, chargebacks."""

    review_capacity: int = DEFAULT_CAPACITY
    """Alerts reviewed a simulated day, highest score first."""
    review_delay_hours: float = 4.0
    """Hours between review rounds: a review's label comes 0 to this many hours after its alert."""
    chargeback_delay_days: float = 14.0
    """Mean days from a missed fraud to its chargeback."""
    chargeback_rate: float = 0.8
    """Share of the frauds review did not confirm that cardholders ever dispute."""
    dispute_window_days: float = LABEL_MATURITY_DAYS
    """Disputes later than this are never made (FRAUD_LABEL_MATURITY_DAYS: the monitor presumes
    an unlabelled row legitimate after that long)."""

    def __post_init__(self) -> None:
        if self.review_capacity < 0:
            raise ValueError("review capacity must not be negative")
        if not self.review_delay_hours > 0:
            raise ValueError("review delay must be above 0 hours")
        if not self.chargeback_delay_days > 0:
            raise ValueError("chargeback delay must be above 0 days")
        if not 0 <= self.chargeback_rate <= 1:
            raise ValueError("chargeback rate must be between 0 and 1")


@dataclass(frozen=True)
class IssuedLabel:
    """A label as the issuer learns it."""

    transaction_id: str
    label: int
    source: str
    observed_at: datetime


class IssuerLabels:
    """The issuer's label process over the replayed rows: told what was scored, it releases the
    labels that have arrived by a simulated moment."""

    def __init__(
        self,
        labels: NDArray[np.int64],
        start: datetime,
        options: IssuerOptions,
        seed: int,
    ) -> None:
        self.options = options
        self.policy = ReviewPolicy(options.review_capacity)
        self.labels = labels
        rng = np.random.default_rng(seed)
        self.disputed = rng.random(len(labels)) < options.chargeback_rate
        mean = options.chargeback_delay_days
        self.dispute_days = rng.gamma(CHARGEBACK_SHAPE, mean / CHARGEBACK_SHAPE, len(labels))
        self.round = timedelta(hours=options.review_delay_hours)
        self.next_round = start + self.round
        self.queue: dict[str, tuple[Alert, int]] = {}
        self.chargebacks: list[tuple[datetime, str]] = []
        self.labelled: set[str] = set()
        self.reviewed_on: Counter[date] = Counter()
        self.reviews = 0
        self.confirmed = 0
        self.chargebacks_sent = 0
        self.unreviewed = 0
        """Alerts that waited longer than ALERT_WAIT and went through without a review."""

    def scored(
        self, row: int, transaction_id: str, at: datetime, score: float, flagged: bool
    ) -> None:
        """Row `row` (its position in the replay) was scored at event time `at`."""
        label = int(self.labels[row])
        if flagged:
            self.queue[transaction_id] = (Alert(transaction_id, score, at), label)
        delay = float(self.dispute_days[row])
        if label == 1 and self.disputed[row] and delay <= self.options.dispute_window_days:
            heapq.heappush(self.chargebacks, (at + timedelta(days=delay), transaction_id))

    def next_at(self) -> datetime | None:
        """When the next label may arrive, or None when nothing is left to come."""
        times = [self.chargebacks[0][0]] if self.chargebacks else []
        if self.queue:
            times.append(self.next_round)
        return min(times) if times else None

    def __len__(self) -> int:
        """Labels that may still come: alerts waiting and chargebacks pending."""
        return len(self.queue) + len(self.chargebacks)

    def release(self, now: datetime) -> list[IssuedLabel]:
        """Every label that arrives by `now`, in the order the issuer learns them."""
        out: list[IssuedLabel] = []
        while True:
            chargeback = self.chargebacks[0][0] if self.chargebacks else None
            round_due = self.next_round <= now and bool(self.queue)
            if (
                chargeback is not None
                and chargeback <= now
                and (not round_due or chargeback < self.next_round)
            ):
                out += self._chargeback(*heapq.heappop(self.chargebacks))
            elif round_due:
                out += self._review_round(self.next_round)
                self.next_round += self.round
            else:
                if not self.queue and self.next_round <= now:
                    # Nothing to review: the rounds catch up without work.
                    skipped = (now - self.next_round) // self.round + 1
                    self.next_round += skipped * self.round
                return out

    def _review_round(self, at: datetime) -> list[IssuedLabel]:
        expired = [tid for tid, (alert, _) in self.queue.items() if alert.at + ALERT_WAIT < at]
        for tid in expired:
            del self.queue[tid]
        self.unreviewed += len(expired)
        waiting = [alert for alert, _ in self.queue.values() if alert.at <= at]
        day = review_day(at)
        picked = self.policy.pick(waiting, self.reviewed_on[day])
        self.reviewed_on[day] += len(picked)
        out = []
        for alert in picked:
            label = self.queue.pop(alert.transaction_id)[1]
            self.labelled.add(alert.transaction_id)
            self.reviews += 1
            self.confirmed += label
            out.append(IssuedLabel(alert.transaction_id, label, "review", at))
        return out

    def _chargeback(self, at: datetime, transaction_id: str) -> list[IssuedLabel]:
        if transaction_id in self.labelled:  # confirmed by review: the card was blocked
            return []
        self.queue.pop(transaction_id, None)
        self.labelled.add(transaction_id)
        self.chargebacks_sent += 1
        return [IssuedLabel(transaction_id, 1, "chargeback", at)]

    def counts(self) -> dict[str, Any]:
        """What the issuer learnt, for the replay's summary."""
        return {
            "reviews": self.reviews,
            "reviewed_frauds": self.confirmed,
            "chargebacks": self.chargebacks_sent,
            "alerts_unreviewed": self.unreviewed,
        }
