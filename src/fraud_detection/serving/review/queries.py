"""The review queue's reads over the prediction log, and the one write the log has no other
path for: taking a reviewer's last label back.

An alert is a flagged, answered prediction (`ALERT`); it is open until its transaction has a
label, from any source. The queue is the review policy's order (highest score first, ties by
newest) and walks the partial index over alerts only, so its first page costs the same
whatever the log holds.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import operators

from ...errors import PredictionLogError
from ...prediction_log import (
    ALERT,
    HAPPENED,
    error_reason,
    feedback,
    is_logging,
    label_history,
    predictions,
    utc_now,
)
from ...review_policy import queue_order
from ...schema import FEATURES

Status = Literal["open", "reviewed", "all"]
REVIEW = "review"
"""The label source of the review page (SPEC section 16)."""
PAGE_SIZE = 50


@dataclass(frozen=True)
class QueueFilter:
    """What the analyst narrowed the queue to; every field optional."""

    status: Status = "open"
    day: date | None = None
    """The UTC day the alert happened (its event time, else when it was received), the day
    the review policy counts it against."""
    version: str | None = None
    search: str | None = None
    """A transaction id, or its beginning."""

    def where(self) -> ColumnElement[bool]:
        labelled = exists().where(feedback.c.transaction_id == predictions.c.transaction_id)
        terms: list[ColumnElement[bool]] = [ALERT]
        if self.status == "open":
            terms.append(~labelled)
        elif self.status == "reviewed":
            terms.append(labelled)
        if self.day is not None:
            start = datetime.combine(self.day, datetime.min.time())
            terms.append(HAPPENED >= start)
            terms.append(HAPPENED < start + timedelta(days=1))
        if self.version:
            terms.append(predictions.c.model_version == self.version)
        if self.search:
            terms.append(predictions.c.transaction_id.startswith(self.search, autoescape=True))
        return and_(*terms)


@dataclass(frozen=True)
class Label:
    """A label as stored: current, or one of a transaction's history."""

    label: int
    source: str
    reviewer: str | None
    received_at: datetime
    undone_at: datetime | None = None


@dataclass(frozen=True)
class QueueRow:
    """One alert as the queue lists it."""

    id: int
    transaction_id: str
    at: datetime
    """When it happened: its event time, else when it was received."""
    amount: float
    probability: float
    threshold: float
    model_version: str
    variant: str
    label: int | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    page: int
    has_next: bool


@dataclass(frozen=True)
class DayCounts:
    """A day's alerts and how many of them have a label."""

    day: date
    alerts: int
    reviewed: int

    @property
    def left(self) -> int:
        return self.alerts - self.reviewed


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Alert:
    """One alert with everything its page shows."""

    row: QueueRow
    received_at: datetime
    features: dict[str, float]
    explanation: list[Contribution]
    expected_value: float | None
    output: str | None
    history: list[Label]


_QUEUE_COLUMNS = (
    predictions.c.id,
    predictions.c.transaction_id,
    HAPPENED,
    predictions.c.Amount,
    predictions.c.probability,
    predictions.c.threshold,
    predictions.c.model_version,
    predictions.c.variant,
    select(feedback.c.label)
    .where(feedback.c.transaction_id == predictions.c.transaction_id)
    .scalar_subquery(),
)
# The review policy's order (the id last makes it total over rows of one transaction).
_KEY = (predictions.c.probability, HAPPENED, predictions.c.transaction_id)
_ORDER = (*queue_order(*_KEY), predictions.c.id.asc())


def _queue_row(row: Sequence[Any]) -> QueueRow:
    tid, at, amount, probability, threshold, version, variant = row[1:8]
    return QueueRow(
        int(row[0]),
        str(tid),
        at,
        float(amount),
        float(probability),
        float(threshold),
        str(version),
        str(variant),
        None if row[8] is None else int(row[8]),
    )


def _fail(exc: SQLAlchemyError) -> PredictionLogError:
    return PredictionLogError(f"prediction log unavailable: {error_reason(exc)}")


def queue_query(where: QueueFilter, page: int = 1) -> Select[Any]:
    """The query of one page of the queue (1-based), and one row more to tell if it goes on."""
    return (
        select(*_QUEUE_COLUMNS)
        .where(where.where())
        .order_by(*_ORDER)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )


def queue_page(engine: Engine, where: QueueFilter, page: int = 1) -> QueuePage:
    """One page of the queue (1-based), in the review policy's order."""
    query = queue_query(where, page)
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                return QueuePage([], page, False)
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    return QueuePage([_queue_row(r) for r in rows[:PAGE_SIZE]], page, len(rows) > PAGE_SIZE)


def day_counts(engine: Engine, day: date) -> DayCounts:
    """The alerts of `day` (UTC, as the day filter reads it) and how many have a label."""
    start = datetime.combine(day, datetime.min.time())
    labelled = exists().where(feedback.c.transaction_id == predictions.c.transaction_id)
    query = select(func.count(), func.count().filter(labelled)).where(
        ALERT, HAPPENED >= start, HAPPENED < start + timedelta(days=1)
    )
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                return DayCounts(day, 0, 0)
            alerts, reviewed = conn.execute(query).one()
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    return DayCounts(day, int(alerts), int(reviewed))


def neighbour(engine: Engine, where: QueueFilter, alert: QueueRow, after: bool) -> int | None:
    """The id of the alert just after (or before) `alert` in the filtered queue's order."""
    p, at, tid, i = (*_KEY, predictions.c.id)
    key = (alert.probability, alert.at, alert.transaction_id, alert.id)
    # Later in the order: a lower score, or the same score and a later time, and so on.
    later = or_(
        p < key[0],
        and_(p == key[0], at > key[1]),
        and_(p == key[0], at == key[1], tid > key[2]),
        and_(p == key[0], at == key[1], tid == key[2], i > key[3]),
    )
    order = _ORDER if after else tuple(map(_reversed, _ORDER))
    # The bound on the score alone is redundant, but lets the index seek to this alert's
    # place instead of scanning every alert above (or below) it.
    beyond = (p <= key[0]) & later if after else (p >= key[0]) & ~later & (i != alert.id)
    return _first_id(engine, select(i).where(where.where(), beyond).order_by(*order))


def _reversed(term: Any) -> Any:
    """An ORDER BY term in the other direction."""
    return term.element.asc() if term.modifier is operators.desc_op else term.element.desc()


def read_alert(engine: Engine, alert_id: int) -> Alert | None:
    """The alert logged with this id, its features, explanation and labels; None when that
    row is not an alert (or not there)."""
    query = select(
        *_QUEUE_COLUMNS,
        predictions.c.created_at,
        *(predictions.c[name] for name in FEATURES),
        predictions.c.explanation,
    ).where(predictions.c.id == alert_id, ALERT)
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                return None
            found = conn.execute(query).first()
            if found is None:
                return None
            row = _queue_row(found)
            history = _history(conn, row.transaction_id)
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    received_at = found[len(_QUEUE_COLUMNS)]
    values = found[len(_QUEUE_COLUMNS) + 1 : len(_QUEUE_COLUMNS) + 1 + len(FEATURES)]
    explained = _explanation(found[-1])
    return Alert(
        row,
        received_at,
        dict(zip(FEATURES, map(float, values), strict=True)),
        [Contribution(**top) for top in explained.get("top_features", [])],
        explained.get("expected_value"),
        explained.get("output"),
        history,
    )


def _explanation(text: str | None) -> dict[str, Any]:
    """The stored explanation; an unreadable one reads as none (it only informs)."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    tops = [
        {"feature": str(t["feature"]), "value": float(t["value"]), "contribution": c}
        for t in found.get("top_features") or []
        if isinstance(t, dict)
        and isinstance(c := t.get("contribution"), int | float)
        and math.isfinite(c)
        and isinstance(t.get("value"), int | float)
        and "feature" in t
    ]
    return {**found, "top_features": tops}


def _history(conn: Any, transaction_id: str) -> list[Label]:
    """Every label the transaction had, oldest first (a log gains its history table, with
    the labels it already held, when the page's engine ensures the schema)."""
    h = label_history.c
    rows = conn.execute(
        select(h.label, h.source, h.reviewer, h.received_at, h.undone_at)
        .where(h.transaction_id == transaction_id)
        .order_by(h.id)
    ).all()
    return [Label(*r) for r in rows]


def alert_for(engine: Engine, transaction_id: str) -> int | None:
    """The newest alert of a transaction (the id its page has), if it has one."""
    query = select(predictions.c.id).where(predictions.c.transaction_id == transaction_id, ALERT)
    return _first_id(engine, query.order_by(predictions.c.id.desc()))


def _first_id(engine: Engine, query: Select[Any]) -> int | None:
    """The id the query finds first, if any."""
    try:
        with engine.connect() as conn:
            found = conn.execute(query.limit(1)).scalar()
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    return None if found is None else int(found)


def undo_last(engine: Engine, reviewer: str) -> str | None:
    """Take back `reviewer`'s last review label that still stands: the transaction gets its
    label from before (or none). Returns its transaction id; None when there is nothing to
    undo. A label stored since by someone else stays the current one."""
    h = label_history.c
    mine = (h.source == REVIEW) & (h.reviewer == reviewer) & h.undone_at.is_(None)
    try:
        with engine.begin() as conn:
            last = conn.execute(
                select(h.id, h.transaction_id).where(mine).order_by(h.id.desc()).limit(1)
            ).first()
            if last is None:
                return None
            taken = conn.execute(
                update(label_history)
                .where(h.id == last.id, h.undone_at.is_(None))
                .values(undone_at=utc_now())
            ).rowcount
            if taken != 1:  # a concurrent Undo took it first
                return None
            standing = (h.transaction_id == last.transaction_id) & h.undone_at.is_(None)
            newer = conn.execute(select(h.id).where(standing, h.id > last.id).limit(1)).first()
            if newer is None:
                _restore(conn, last.transaction_id, standing)
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    return str(last.transaction_id)


def _restore(conn: Any, transaction_id: str, standing: ColumnElement[bool]) -> None:
    """Make the transaction's latest standing label its current one, or remove its label."""
    h = label_history.c
    kept = [c.name for c in feedback.columns if c.name in h and c.name != "transaction_id"]
    previous = conn.execute(
        select(*(h[name] for name in kept)).where(standing).order_by(h.id.desc()).limit(1)
    ).first()
    if previous is None:
        conn.execute(delete(feedback).where(feedback.c.transaction_id == transaction_id))
        return
    values = dict(zip(kept, previous, strict=True))
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(feedback)
    conn.execute(
        insert.values(transaction_id=transaction_id, **values).on_conflict_do_update(
            index_elements=["transaction_id"], set_=values
        )
    )
