"""The prediction log in SQL (SQLite by default, PostgreSQL with DATABASE_URL) as a
`PredictionSink`: the writes and reads of `prediction_log`, and the window counts monitoring
asks for, aggregated in the database."""

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Engine,
    case,
    cast,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.exc import SQLAlchemyError

from . import prediction_log as sql
from .errors import PredictionLogError
from .log_record import SHADOW, Labels, Row
from .prediction_sink import (
    PRUNE_BATCH,
    AsOf,
    LabelAggregate,
    PredictionSink,
    RefusedRows,
    ScoreSum,
    WindowAggregate,
)

predictions, feedback = sql.predictions, sql.feedback


def open_sink(database_url: str) -> PredictionSink:
    """The sink a DATABASE_URL names; nothing is connected until it is used."""
    return SqlSink(lambda: sql.open_engine(database_url))


class SqlSink:
    """`prediction_log`'s tables behind the PredictionSink protocol. The engine is made on
    first use and the schema ensured before the first write, so building one touches nothing."""

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._schema_ready = False
        self._lock = threading.Lock()  # the writer thread and /feedback may both ask first

    @property
    def engine(self) -> Engine:
        """The database engine (made once)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._factory()
            return self._engine

    def ready_engine(self) -> Engine:
        """The engine, with the schema ensured (once)."""
        engine = self.engine
        with self._lock:
            if not self._schema_ready:
                sql.ensure_schema(engine)
                self._schema_ready = True
        return engine

    @property
    def destination(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def write(self, rows: Sequence[Row]) -> None:
        engine = self.ready_engine()
        try:
            sql.insert_predictions(engine, rows)
        except Exception as exc:  # COPY raises the driver's errors, not only SQLAlchemy's
            reason = sql.error_reason(exc)
            if sql.refused_rows(engine, exc):
                raise RefusedRows(reason) from exc
            raise PredictionLogError(f"prediction log unavailable: {reason}") from exc

    def store_labels(self, labels: Labels) -> None:
        sql.store_labels(self.ready_engine(), labels)

    def read_window(self, since: datetime) -> pd.DataFrame:
        return sql.read_window(self.engine, since)

    def aggregate_window(
        self,
        since: datetime,
        feature_edges: Mapping[str, Sequence[float]],
        score_edges: Sequence[float],
        version: str,
        as_of: datetime | None = None,
    ) -> WindowAggregate:
        """Two scans, and only a few hundred numbers come back whatever the window holds."""
        return aggregate_window(self.engine, since, feature_edges, score_edges, version, as_of)

    def aggregate_labels(self, span: AsOf) -> LabelAggregate:
        """Two scans (the mature window; the cohorts' span), a few hundred numbers back."""
        return aggregate_labels(self.engine, span)

    def score_sums(
        self, start: datetime, end: datetime, knots: Mapping[str, Sequence[float]]
    ) -> list[ScoreSum]:
        """One scan and one GROUP BY: a few numbers per map segment come back."""
        return score_sums(self.engine, start, end, knots)

    def labelled_chunks(
        self, since: datetime, chunk_rows: int = 50_000, until: datetime | None = None
    ) -> Iterator[pd.DataFrame]:
        return sql.labelled_chunks(self.engine, since, chunk_rows, until)

    def prune(self, before: datetime, batch_rows: int = PRUNE_BATCH) -> tuple[int, int]:
        return sql.prune(self.engine, before, batch_rows)

    def close(self) -> None:
        """Close the pooled connections rather than leave them to the garbage collector."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()


def aggregate_window(
    engine: Engine,
    since: datetime,
    feature_edges: Mapping[str, Sequence[float]],
    score_edges: Sequence[float],
    version: str,
    as_of: datetime | None = None,
) -> WindowAggregate:
    """The window's counts from SQL aggregates: one GROUP BY, one row of COUNT ... FILTER."""
    names = list(feature_edges)
    try:
        with engine.connect() as conn:
            if not sql.is_logging(conn):
                empty = {name: [0] * (len(feature_edges[name]) + 1) for name in names}
                return WindowAggregate([], empty, [0] * (len(score_edges) + 1))
            in_window = _happened_between(engine, since, as_of)
            groups = conn.execute(_group_query(in_window, _known_label(as_of))).all()
            champion = predictions.c.model_version == version
            row = conn.execute(
                select(
                    func.count(),
                    *(
                        total
                        for name in names
                        for total in _at_or_above(predictions.c[name], feature_edges[name])
                    ),
                    _count_if(champion),
                    *_at_or_above(predictions.c.probability, score_edges, champion),
                ).where(in_window, predictions.c.variant != SHADOW)
            ).one()
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {sql.error_reason(exc)}") from exc
    totals = [int(v or 0) for v in row]
    feature_bins = {}
    at = 1
    for name in names:
        width = len(feature_edges[name])
        feature_bins[name] = _from_cumulative(totals[0], totals[at : at + width])
        at += width
    score_bins = _from_cumulative(totals[at], totals[at + 1 :])
    return WindowAggregate(
        [
            (str(variant), str(v), bool(flag), None if label is None else int(label), int(n))
            for variant, v, flag, label, n in groups
        ],
        feature_bins,
        score_bins,
    )


def score_sums(
    engine: Engine, start: datetime, end: datetime, knots: Mapping[str, Sequence[float]]
) -> list[ScoreSum]:
    """Count and score sum of the served rows per (version, flagged, map segment), the
    segment picked by a CASE over the version's knots (most rows score near zero and stop at
    the first WHEN)."""
    if not knots:
        return []
    score = predictions.c.probability
    segment = case(
        *(
            (
                predictions.c.model_version == version,
                case(*((score < float(x), k) for k, x in enumerate(xs)), else_=len(xs)),
            )
            for version, xs in knots.items()
        )
    ).label("segment")
    keys = (predictions.c.model_version, predictions.c.is_fraud)
    query = (
        select(*keys, segment, func.count(), func.sum(score))
        .where(
            _happened_between(engine, start, end),
            predictions.c.variant != SHADOW,
            predictions.c.model_version.in_(list(knots)),
        )
        # By its name: the CASE's bound knots would not match a repeated expression.
        .group_by(*keys, literal_column("segment"))
    )
    try:
        with engine.connect() as conn:
            if not sql.is_logging(conn):
                return []
            groups = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {sql.error_reason(exc)}") from exc
    return [
        ScoreSum(str(version), bool(flagged), int(segment), int(rows), float(total or 0.0))
        for version, flagged, segment, rows, total in groups
    ]


def aggregate_labels(engine: Engine, span: AsOf) -> LabelAggregate:
    """The label side of a window judged as of a moment, from SQL aggregates."""
    learnt = _known_label(span.as_of)
    source = case((learnt.is_not(None), feedback.c.source))
    served = predictions.c.variant != SHADOW
    alert = served & (predictions.c.is_fraud == true())
    reviewed = source == "review"
    known = learnt.is_not(None) | (_happened() <= span.mature_until)
    by_day = _day(engine)
    try:
        with engine.connect() as conn:
            if not sql.is_logging(conn):
                return LabelAggregate([], (0, 0, 0), 0, [])
            keys = (predictions.c.variant, predictions.c.model_version, predictions.c.is_fraud)
            settled = conn.execute(
                select(*keys, learnt, source, func.count())
                .select_from(_joined())
                .where(_happened_between(engine, span.mature_since, span.mature_until))
                .group_by(*keys, learnt, source)
            ).all()
            recent = _happened() >= span.since
            cohorts = conn.execute(
                select(
                    by_day,
                    func.count(),
                    _count_if(alert),
                    _count_if(alert & reviewed),
                    _count_if(source == "chargeback"),
                    _count_if(known),
                    _count_if(recent & alert),
                    _count_if(recent & alert & reviewed),
                    _count_if(recent & alert & reviewed & (learnt == 1)),
                    _count_if(recent & known),
                )
                .select_from(_joined())
                .where(_happened_between(engine, span.mature_since, span.as_of), served)
                .group_by(by_day)
                .order_by(by_day)
            ).all()
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {sql.error_reason(exc)}") from exc
    totals = [sum(int(row[k]) for row in cohorts) for k in range(6, 10)]
    return LabelAggregate(
        [
            (str(v), str(m), bool(f), None if label is None else int(label), src, int(n))
            for v, m, f, label, src, n in settled
        ],
        (totals[0], totals[1], totals[2]),
        totals[3],
        [
            (_as_date(day), int(rows), int(alerts), int(reviewed), int(charged), int(settled))
            for day, rows, alerts, reviewed, charged, settled, *_ in cohorts
        ],
    )


def _joined() -> Any:
    return predictions.outerjoin(
        feedback, feedback.c.transaction_id == predictions.c.transaction_id
    )


def _happened() -> ColumnElement[datetime]:
    return type_coerce(sql.HAPPENED, DateTime())


def _happened_between(
    engine: Engine, since: datetime, until: datetime | None
) -> ColumnElement[bool]:
    """The row happened (event time, else receive time) in since..until (no end: None).

    SQLite reads the window by a full scan: its planner would walk a time index, visiting
    rows in time order (random on disk), which took over 100 s where a scan of the same 5M
    rows took 4 s; COALESCE keeps it off the indexes. PostgreSQL gets the same condition in a
    form its event_time and created_at indexes serve, and its statistics choose."""
    if engine.dialect.name == "sqlite":
        happened = _happened()
        return (happened >= since) & (happened <= until) if until else happened >= since
    event, created = predictions.c.event_time, predictions.c.created_at
    if until is None:
        return (event >= since) | (event.is_(None) & (created >= since))
    return event.between(since, until) | (event.is_(None) & created.between(since, until))


def _known_label(as_of: datetime | None) -> Any:
    """The label when it was learnt by `as_of` (every label without one), else NULL."""
    if as_of is None:
        return feedback.c.label
    learnt = type_coerce(sql.LEARNT, DateTime()) <= as_of
    return case((learnt, feedback.c.label))


def _day(engine: Engine) -> Any:
    """The UTC day a row happened on."""
    if engine.dialect.name == "sqlite":
        return func.date(sql.HAPPENED)
    return cast(_happened(), Date)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _group_query(in_window: ColumnElement[bool], label: Any) -> Any:
    keys = (predictions.c.variant, predictions.c.model_version, predictions.c.is_fraud)
    return (
        select(*keys, label, func.count())
        .select_from(_joined())
        .where(in_window)
        .group_by(*keys, label)
    )


def _count_if(condition: ColumnElement[bool]) -> Any:
    # COUNT(*) FILTER (WHERE ...): SQLite 3.30+ and PostgreSQL; a third faster than SUM(CASE).
    return func.count().filter(condition)


def _at_or_above(
    column: Any, edges: Sequence[float], where: ColumnElement[bool] | None = None
) -> list[Any]:
    """Rows at or above each edge: cumulative counts whose differences are the bins."""
    return [
        _count_if(column >= float(edge) if where is None else where & (column >= float(edge)))
        for edge in edges
    ]


def _from_cumulative(rows: int, at_or_above: Sequence[int]) -> list[int]:
    """Bin counts from the rows at or above each edge: bin k is edges[k-1] <= v < edges[k],
    exactly as `reference.bin_counts` (searchsorted, side right) puts them."""
    bounds = [rows, *at_or_above, 0]
    return [bounds[k] - bounds[k + 1] for k in range(len(bounds) - 1)]
