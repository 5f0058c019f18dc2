"""What a replay sends and when: the rows after the history, an even spread of them, drift
shifts, and the pace."""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..data import time_split
from ..errors import UsageError
from ..schema import FEATURES

HISTORY_FRACTION = 0.8
"""The earliest share of rows by Time that the model was trained on; the rest is replayed."""
SHIFT_OPERATORS = ("+", "-", "*")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SHIFT = re.compile(rf"\s*(?P<feature>\w+)\s*(?P<op>[-+*])\s*(?P<value>{_NUMBER})\s*")


class ShiftError(UsageError):
    """A --shift expression that is not `<feature><+|-|*><number>` over a known feature."""


@dataclass(frozen=True)
class Shift:
    """A drift to simulate: `feature op value` applied to every replayed row."""

    feature: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.feature}{self.op}{self.value:g}"

    def apply(self, values: "pd.Series[float]") -> "pd.Series[float]":
        """The shifted column."""
        if self.op == "+":
            return values + self.value
        if self.op == "-":
            return values - self.value
        return values * self.value


def parse_shift(expression: str) -> Shift:
    """`Amount*3`, `V14+2`, `V3-1.5` as a Shift; ShiftError says what is wrong."""
    match = _SHIFT.fullmatch(expression)
    if match is None:
        raise ShiftError(
            f"{expression!r} is not FEATURE OP NUMBER with OP one of + - * "
            "(for example Amount*3, V14+2, V3-1.5)"
        )
    feature, value = match["feature"], float(match["value"])
    if feature not in FEATURES:
        near = [f for f in FEATURES if f.lower() == feature.lower()]
        hint = f"; did you mean {near[0]}?" if near else ""
        raise ShiftError(
            f"{expression!r}: unknown feature {feature!r} (features: Time, V1..V28, Amount){hint}"
        )
    if not math.isfinite(value):
        raise ShiftError(f"{expression!r}: the number must be finite")
    return Shift(feature, match["op"], value)


def apply_shifts(
    rows: pd.DataFrame,
    shifts: Sequence[Shift],
    where: "np.ndarray[Any, np.dtype[np.bool_]] | None" = None,
) -> pd.DataFrame:
    """A copy of `rows` with every shift applied in order to the rows `where` marks (all by
    default); Amount stays >= 0 (the service refuses negative amounts, so a shift below zero
    stops at zero)."""
    shifted = rows.copy()
    chosen = np.ones(len(rows), dtype=bool) if where is None else where
    for shift in shifts:
        values = shifted[shift.feature].astype(np.float64)
        shifted[shift.feature] = values.where(~chosen, shift.apply(values))
    if shifts:
        shifted["Amount"] = shifted["Amount"].clip(lower=0.0)
    return shifted


def new_data(df: pd.DataFrame, history_fraction: float = HISTORY_FRACTION) -> pd.DataFrame:
    """The rows after the first `history_fraction` by Time: what arrives after the model ships.

    The index is each row's position in the whole time-ordered dataset, so transaction ids
    built from it name the same row whatever --limit or --history-fraction picks.
    """
    return time_split(df, history_fraction)[1]


def spread_rows(rows: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """`limit` rows spread evenly over the whole period, first and last included, in order.

    Every k-th row rather than the first `limit`, so a short replay still covers the period;
    the share of frauds stays what the data has (nothing is oversampled).
    """
    if limit is None or limit >= len(rows):
        return rows
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    positions = (np.arange(limit) * (len(rows) - 1)) // max(limit - 1, 1)
    return rows.iloc[positions]


def due_time(start: float, sent: int, rate: float) -> float:
    """When the transaction after the first `sent` is due at `rate` per second (0: now)."""
    return start + sent / rate if rate > 0 else start


def elapsed(rows: pd.DataFrame, days: float | None) -> "np.ndarray[Any, np.dtype[np.float64]]":
    """Seconds from the first row to each row: their Time apart, stretched so the rows span
    `days` (default: their own span, seconds as the dataset counts them)."""
    time = rows["Time"].to_numpy(dtype=np.float64)
    offsets: np.ndarray[Any, np.dtype[np.float64]] = time - time[0] if len(time) else time
    span = float(offsets[-1]) if len(offsets) else 0.0
    if days is not None and span > 0:
        offsets = offsets * (days * 86_400 / span)
    return offsets


def event_times(rows: pd.DataFrame, start: datetime, days: float | None) -> list[datetime]:
    """Each row's event time: `elapsed` from `start`."""
    return [start + timedelta(seconds=float(s)) for s in elapsed(rows, days)]


class SimClock:
    """Simulated time: `speed` simulated seconds per wall second from `start`, never past the
    next row still to send (a replay that lags behind its rows holds simulated time there
    instead of letting reviews and chargebacks run ahead of the transactions), never back."""

    def __init__(self, start: datetime, speed: float, wall: float) -> None:
        if not speed > 0:
            raise UsageError(f"--speed must be above 0, not {speed}")
        self.speed = speed
        self._sim, self._wall = start, wall
        self._latest = start
        self._bound: datetime | None = start

    def _running(self, wall: float) -> datetime:
        return self._sim + timedelta(seconds=(wall - self._wall) * self.speed)

    def now(self, wall: float) -> datetime:
        """The simulated moment at wall-clock time `wall`."""
        now = self._running(wall)
        if self._bound is not None:
            now = min(now, self._bound)
        self._latest = max(self._latest, now)
        return self._latest

    def wall_at(self, at: datetime) -> float:
        """When (wall clock) the simulated moment `at` comes, at the current pace."""
        return self._wall + (at - self._sim).total_seconds() / self.speed

    def sent_until(self, next_row: datetime | None, wall: float) -> None:
        """Rows up to the one of event time `next_row` (None: every row) went out at `wall`: a
        late replay carries on from where simulated time was held."""
        if self._running(wall) > self.now(wall):
            self._sim, self._wall = self._latest, wall
        self._bound = next_row
