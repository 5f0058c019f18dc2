"""Which labels can be trusted yet, and the figures they support, as pure functions over counts.

At a card issuer a flagged transaction is reviewed within hours, a missed fraud is learnt from a
chargeback weeks later (or never), and a legitimate one is never labelled. So a row's class is
known once it is labelled, or once it is older than the maturity horizon
(FRAUD_LABEL_MATURITY_DAYS) and presumed legitimate; a younger unlabelled row is unknown, never
legitimate. Alert precision and review coverage come from the reviewed alerts at once; recall,
FPR, FNR, precision and F1 only from mature rows.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..prediction_sink import AsOf
from .live import Tally, metrics_of
from .status import Figure, measured, ratio, unknown

Z95 = 1.959963984540054
SETTLED_FIGURES = ("precision", "recall", "f1", "fpr", "fnr")


@dataclass(frozen=True)
class Horizon:
    """Judging as of `as_of`, with unlabelled rows presumed legitimate after `maturity`."""

    as_of: datetime
    maturity: timedelta

    @property
    def days(self) -> float:
        """The horizon in days."""
        return self.maturity / timedelta(days=1)

    @property
    def cut(self) -> datetime:
        """Rows that happened at or before this are mature."""
        return self.as_of - self.maturity

    def is_mature(self, at: datetime) -> bool:
        return at <= self.cut

    def outcome(self, label: int | None, observed_at: datetime | None, at: datetime) -> int | None:
        """A row's class as known at `as_of`: its label once observed, legitimate once mature
        and unlabelled, otherwise None (unknown, never legitimate)."""
        if label is not None and observed_at is not None and observed_at <= self.as_of:
            return label
        return 0 if self.is_mature(at) else None

    def mature_window(self, since: datetime) -> tuple[datetime, datetime]:
        """The window `since`..`as_of` moved back by the horizon: the newest mature rows, where
        recall and the other rates are measured."""
        return since - self.maturity, self.cut

    def span(self, since: datetime) -> AsOf:
        """What a run over `since`..`as_of` reads, as a sink takes it."""
        return AsOf(since, self.as_of, *self.mature_window(since))


@dataclass(frozen=True)
class Reviews:
    """The alerts of a window and what review said of them."""

    alerts: int = 0
    reviewed: int = 0
    """Alerts with a review label known."""
    confirmed: int = 0
    """Reviewed alerts labelled fraud."""

    def __add__(self, other: "Reviews") -> "Reviews":
        return Reviews(
            self.alerts + other.alerts,
            self.reviewed + other.reviewed,
            self.confirmed + other.confirmed,
        )


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: sound at 0 and at every trial a success."""
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2)) / (1 + Z95**2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def review_figures(reviews: Reviews) -> dict[str, Figure]:
    """Alert precision (share of reviewed alerts that were fraud, with its 95% Wilson interval)
    and review coverage (share of alerts reviewed): measured from the reviews at once."""
    r = reviews
    precision = ratio(
        r.confirmed,
        r.reviewed,
        f"{r.reviewed:,} reviewed alerts",
        "no reviewed alerts in the window",
        wilson(r.confirmed, r.reviewed) if r.reviewed else None,
    )
    coverage = ratio(r.reviewed, r.alerts, f"{r.alerts:,} alerts", "no alerts in the window")
    return {"alert_precision": precision, "review_coverage": coverage}


def settled_figures(settled: Tally, empty: str) -> dict[str, Figure]:
    """Precision, recall, F1, FPR and FNR of the rows whose class is known (the confusion of
    `settled`: mature rows, or a frame whose labels are final), with 95% bootstrap intervals;
    `empty` says why there are none when there are no such rows."""
    rows = settled.tn + settled.fp + settled.fn + settled.tp
    if not rows:
        return {name: unknown(empty) for name in SETTLED_FIGURES}
    m = metrics_of(settled)
    among = f"among the {rows:,} settled rows"
    basis = f"{rows:,} settled rows ({settled.tp + settled.fn:,} frauds)"
    missing = {
        "precision": f"no alerts {among}",
        "recall": f"no frauds {among}",
        "f1": f"no frauds and no alerts {among}",
        "fpr": f"no legitimate rows {among}",
        "fnr": f"no frauds {among}",
    }
    return {
        name: unknown(missing[name])
        if m[name] is None
        else measured(m[name], basis, m["ci"].get(name))
        for name in SETTLED_FIGURES
    }


@dataclass(frozen=True)
class Cohort:
    """The rows of one event day and how much of their labelling has arrived."""

    day: date
    rows: int = 0
    alerts: int = 0
    reviewed: int = 0
    chargebacks: int = 0
    """Chargebacks known so far."""
    settled: int = 0
    """Rows whose class is known: labelled, or mature and presumed legitimate."""

    @property
    def completeness(self) -> float | None:
        return self.settled / self.rows if self.rows else None

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "rows": self.rows,
            "alerts": self.alerts,
            "reviewed": self.reviewed,
            "chargebacks": self.chargebacks,
            "settled": self.settled,
            "label_completeness": self.completeness,
        }


def completeness(rows: int, settled: int) -> Figure:
    """Share of a window's rows whose class is known (labelled, or mature)."""
    return ratio(settled, rows, f"{rows:,} rows", "no rows in the window")


@dataclass(frozen=True)
class Settled:
    """The mature window: its rows' classes as known (labels, and the presumed legitimate
    unlabelled rows among tn and fp), and how they came to be known."""

    start: datetime
    end: datetime
    tally: Tally
    presumed: int = 0
    """Unlabelled rows presumed legitimate."""
    reviewed: int = 0
    """Rows labelled by an analyst's review."""
    chargebacks: int = 0
    """Rows labelled by a chargeback."""

    @property
    def labelled(self) -> int:
        return self.tally.rows - self.presumed

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.tally.rows,
            "labelled": self.labelled,
            "frauds": self.tally.tp + self.tally.fn,
            "reviewed": self.reviewed,
            "chargebacks": self.chargebacks,
            "presumed_legitimate": self.presumed,
        }
