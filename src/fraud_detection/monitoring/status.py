"""How each figure the monitor reports is known: `measured` (from mature rows or reviewed
alerts), `estimated` (from calibrated scores, with an interval), or `unknown` (and why).

A figure is never shown or pushed as measured on evidence that cannot support it: a recall from
the reviewed alerts alone would read 1.00 whatever the model misses. Estimates plug in with one
call, `with_estimates`: an unknown figure becomes estimated, a measured one keeps its value and
carries the estimate beside it, so the report can show their difference.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    MEASURED = "measured"
    ESTIMATED = "estimated"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Estimate:
    """A figure estimated without labels, with the interval its method gives."""

    value: float
    interval: tuple[float, float] | None
    basis: str
    """What it rests on and what the interval includes, in a few words."""

    def to_json(self) -> dict[str, Any]:
        low_high = list(self.interval) if self.interval else None
        return {"value": self.value, "interval": low_high, "basis": self.basis}


@dataclass(frozen=True)
class Figure:
    """One reported figure: its status, its value and interval when known, what it rests on
    (`basis`), why it is unknown (`reason`), and any estimate beside a measured value."""

    status: Status
    value: float | None = None
    interval: tuple[float, float] | None = None
    basis: str = ""
    reason: str | None = None
    estimate: Estimate | None = None

    @property
    def measured(self) -> float | None:
        """The value when measured, else None: what the drift rule and the gauges may use."""
        return self.value if self.status is Status.MEASURED else None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "value": self.value,
            "interval": list(self.interval) if self.interval else None,
            "basis": self.basis,
            "reason": self.reason,
            "estimate": self.estimate.to_json() if self.estimate else None,
        }


def measured(
    value: float, basis: str, interval: tuple[float, float] | list[float] | None = None
) -> Figure:
    """A figure measured on `basis` (e.g. "62 reviewed alerts")."""
    bounds = (float(interval[0]), float(interval[1])) if interval else None
    return Figure(Status.MEASURED, value, bounds, basis)


def unknown(reason: str) -> Figure:
    """A figure that cannot be known from what the log holds, and why."""
    return Figure(Status.UNKNOWN, reason=reason)


def ratio(
    numerator: int,
    denominator: int,
    basis: str,
    empty: str,
    interval: tuple[float, float] | list[float] | None = None,
) -> Figure:
    """numerator / denominator, measured; unknown for `empty` reason when nothing divides."""
    if not denominator:
        return unknown(empty)
    return measured(numerator / denominator, basis, interval)


def with_estimates(
    figures: Mapping[str, Figure], estimates: Mapping[str, Estimate]
) -> dict[str, Figure]:
    """`figures` with each estimate plugged in: an unknown figure becomes estimated (value and
    interval from the estimate, its reason kept), any other keeps its value beside the estimate."""
    out = dict(figures)
    for name, estimate in estimates.items():
        figure = out.get(name, unknown("not measured"))
        if figure.status is Status.UNKNOWN:
            figure = replace(
                figure,
                status=Status.ESTIMATED,
                value=estimate.value,
                interval=estimate.interval,
                basis=estimate.basis,
            )
        out[name] = replace(figure, estimate=estimate)
    return out
