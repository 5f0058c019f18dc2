"""Where logged predictions go and are read back: the `PredictionSink` protocol.

The service's log writer writes rows to a sink and /feedback stores labels in it; monitoring,
retraining and `fraud log prune` read and trim it. They know only this protocol: the SQL
implementation (`sql_sink.SqlSink`, over `prediction_log`'s tables) is chosen at the edges by
`sql_sink.open_sink`, and another backend is one more class with these methods.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple, Protocol

import pandas as pd

from .errors import PredictionLogError
from .log_record import Labels, Row

PRESUMED = "presumed"
"""The source of a mature row's class when it has no label: presumed legitimate."""
PRUNE_BATCH = 10_000
"""Rows one prune step deletes: short enough that writers never wait on one long delete."""


class RefusedRows(PredictionLogError):
    """The sink refused the values of the rows written: writing the same rows again cannot
    succeed (any other error of `write` is an outage, which may pass)."""


@dataclass(frozen=True)
class WindowAggregate:
    """A window of the log reduced to counts, however many rows it holds.

    `groups`: (variant, model_version, is_fraud, label or None, rows) for every combination
    present. `feature_bins[name]` and `score_bins` count the served rows (every variant but
    shadow), per bin of the edges asked for, bin k holding edges[k-1] <= value < edges[k];
    `score_bins` only the rows of the version asked for.
    """

    groups: list[tuple[str, str, bool, int | None, int]]
    feature_bins: dict[str, list[int]]
    score_bins: list[int]


class ScoreSum(NamedTuple):
    """Served rows of one model version, flagged or not, in one segment of that version's
    calibration map: how many, and the sum of their scores (what performance estimation
    needs of them, as the map is linear within a segment)."""

    version: str
    flagged: bool
    segment: int
    """How many of the map's knots lie at or below the rows' scores."""
    rows: int
    score_sum: float


@dataclass(frozen=True)
class AsOf:
    """What a monitoring run judged as of `as_of` reads. A row happens at its event time (its
    receive time without one), a label counts once learnt (observed_at, else received) by
    `as_of`. The window is `since`..`as_of`; in the mature window `mature_since`..`mature_until`
    an unlabelled row is presumed legitimate."""

    since: datetime
    as_of: datetime
    mature_since: datetime
    mature_until: datetime


@dataclass(frozen=True)
class LabelAggregate:
    """What the labels say as of a moment, reduced to counts.

    `settled`: (variant, model_version, is_fraud, label learnt or None, its source or None,
    rows) over the mature window, where a row without a label is presumed legitimate.
    `reviews`: the window's served alerts, those with a review label, and those of them fraud.
    `known`: the window's served rows whose class is known (labelled, or mature).
    `cohorts`: (day, rows, alerts, reviewed alerts, chargebacks, settled rows) of the served
    rows per event day, from the mature window's start to `as_of`.
    """

    settled: list[tuple[str, str, bool, int | None, str | None, int]]
    reviews: tuple[int, int, int]
    known: int
    cohorts: list[tuple[date, int, int, int, int, int]]


class PredictionSink(Protocol):
    """The prediction log as its writers and readers use it. Every method raises
    PredictionLogError when the log cannot be reached; reads of a log nothing was ever
    written to answer empty."""

    @property
    def destination(self) -> str:
        """Where rows go, the same across restarts (spools are kept per destination, so rows
        are never replayed into another log)."""
        ...

    def write(self, rows: Sequence[Row]) -> None:
        """Append rows (values in LOG_COLUMNS order) all together or not at all; RefusedRows
        when their values were refused."""
        ...

    def store_labels(self, labels: Labels) -> None:
        """Store labels (with their provenance) by transaction id; a later label replaces an
        earlier one."""
        ...

    def read_window(self, since: datetime) -> pd.DataFrame:
        """The rows that happened since `since` in LOG_COLUMNS (but latency_ms) with their
        label (NaN until one arrives), its source and when it was learnt
        (`label_observed_at`), oldest first."""
        ...

    def aggregate_window(
        self,
        since: datetime,
        feature_edges: Mapping[str, Sequence[float]],
        score_edges: Sequence[float],
        version: str,
        as_of: datetime | None = None,
    ) -> WindowAggregate:
        """The counts of the rows that happened since `since` (event time, else receive time)
        that monitoring judges; with `as_of`, only rows that happened by then and labels
        learnt by then."""
        ...

    def aggregate_labels(self, span: AsOf) -> LabelAggregate:
        """The reviews, the settled rows of the mature window and the cohorts, as of a moment."""
        ...

    def score_sums(
        self, start: datetime, end: datetime, knots: Mapping[str, Sequence[float]]
    ) -> list[ScoreSum]:
        """The served rows logged in [start, end] of each version in `knots` (its calibration
        map's increasing knots), summed per (version, flagged, segment)."""
        ...

    def labelled_chunks(
        self, since: datetime, chunk_rows: int = 50_000, until: datetime | None = None
    ) -> Iterator[pd.DataFrame]:
        """The labelled rows that happened since `since`, one per transaction (its latest
        score), in the training schema, `chunk_rows` at a time. With `until`, the span
        `since`..`until` is taken as mature: every row of it, an unlabelled one as legitimate,
        with a `source` column (review, chargeback, other, or PRESUMED)."""
        ...

    def prune(self, before: datetime, batch_rows: int = PRUNE_BATCH) -> tuple[int, int]:
        """Delete the rows logged before `before`, then the labels received before it left
        without a row, `batch_rows` per step; returns (rows, labels) deleted."""
        ...

    def close(self) -> None:
        """Release connections (the sink may be used again after)."""
        ...
