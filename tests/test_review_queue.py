"""The review queue's reads over a real log (SQLite and PostgreSQL): the review policy's order,
filters, day counts, walking the queue, and the schema an older log gains."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from fraud_detection.log_record import LabelRecord
from fraud_detection.prediction_log import (
    ensure_schema,
    feedback,
    index_names,
    label_history,
    metadata,
    open_engine,
    store_labels,
    utc_now,
)
from fraud_detection.review_policy import Alert, queue_key
from fraud_detection.serving.review.queries import (
    REVIEW,
    QueueFilter,
    alert_for,
    day_counts,
    neighbour,
    queue_page,
    queue_query,
    read_alert,
    undo_last,
)
from review_helpers import log_predictions, prediction


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = open_engine(database_url)
    ensure_schema(engine)
    return engine


def _mixed_log(engine: Engine) -> None:
    """Alerts with ties in score and time, plus rows that are not open alerts."""
    now = utc_now()
    log_predictions(
        engine,
        [
            prediction("b", 0.9, at=now, age=timedelta(minutes=5)),
            prediction("a", 0.9, at=now, age=timedelta(minutes=5)),  # same score and time
            prediction("c", 0.9, at=now, age=timedelta(minutes=9)),  # older: first
            prediction("d", 0.7, at=now),
            prediction("e", 0.99, at=now, variant="shadow"),  # answered by no one
            prediction("f", 0.2, at=now),  # not flagged
            prediction("g", 0.8, at=now, version="2", variant="challenger"),
            prediction("h", 0.95, at=now),  # labelled below
        ],
    )
    store_labels(engine, {"h": 1})


def test_queue_is_the_open_alerts_in_the_review_policys_order(engine: Engine) -> None:
    _mixed_log(engine)
    page = queue_page(engine, QueueFilter())
    expected = sorted(
        (Alert(r.transaction_id, r.probability, r.at) for r in page.rows), key=queue_key
    )
    assert [r.transaction_id for r in page.rows] == [a.transaction_id for a in expected]
    assert [r.transaction_id for r in page.rows] == ["c", "a", "b", "g", "d"]
    assert not page.has_next


def test_the_queue_orders_by_when_alerts_happened(engine: Engine) -> None:
    """A transaction's event time, when it has one, places it; else when it was received."""
    now = utc_now()
    log_predictions(
        engine,
        [
            prediction("late", 0.9, at=now, age=timedelta(hours=1)),
            prediction("early", 0.9, at=now, event_time=now - timedelta(days=2)),
        ],
    )
    rows = queue_page(engine, QueueFilter()).rows
    assert [r.transaction_id for r in rows] == ["early", "late"]
    assert rows[0].at == now - timedelta(days=2)
    two_days_ago = QueueFilter(day=(now - timedelta(days=2)).date())
    assert [r.transaction_id for r in queue_page(engine, two_days_ago).rows] == ["early"]
    assert day_counts(engine, (now - timedelta(days=2)).date()).alerts == 1


def test_queue_filters_by_status_day_version_and_id(engine: Engine) -> None:
    _mixed_log(engine)
    today = utc_now().date()

    def ids(**where: object) -> list[str]:
        return [r.transaction_id for r in queue_page(engine, QueueFilter(**where)).rows]  # type: ignore[arg-type]

    assert ids(status="reviewed") == ["h"]
    assert ids(status="all") == ["h", "c", "a", "b", "g", "d"]
    assert ids(day=today) == ["c", "a", "b", "g", "d"]
    assert ids(day=today - timedelta(days=1)) == []
    assert ids(version="2") == ["g"]
    assert ids(search="c") == ["c"]
    assert ids(search="%") == []  # a LIKE wildcard is searched for, not obeyed


def test_day_counts_tell_alerts_reviewed_and_left(engine: Engine) -> None:
    _mixed_log(engine)
    counts = day_counts(engine, utc_now().date())
    assert (counts.alerts, counts.reviewed, counts.left) == (6, 1, 5)
    store_labels(engine, {"c": 0, "f": 0})  # f is no alert: it does not count
    counts = day_counts(engine, utc_now().date())
    assert (counts.alerts, counts.reviewed, counts.left) == (6, 2, 4)


def test_neighbours_walk_the_queue_both_ways(engine: Engine) -> None:
    _mixed_log(engine)
    rows = queue_page(engine, QueueFilter()).rows
    by_id = {r.id: r for r in rows}
    walked = [rows[0].id]
    while (following := neighbour(engine, QueueFilter(), by_id[walked[-1]], True)) is not None:
        walked.append(following)
    assert walked == [r.id for r in rows]
    back = [rows[-1].id]
    while (earlier := neighbour(engine, QueueFilter(), by_id[back[-1]], False)) is not None:
        back.append(earlier)
    assert back == walked[::-1]


def test_queue_pages_hold_fifty_alerts(engine: Engine) -> None:
    log_predictions(engine, [prediction(f"p{i:03}", 0.5 + i / 1000) for i in range(120)])
    first, third = queue_page(engine, QueueFilter()), queue_page(engine, QueueFilter(), 3)
    assert len(first.rows) == 50 and first.has_next and first.rows[0].transaction_id == "p119"
    assert len(third.rows) == 20 and not third.has_next and third.rows[-1].transaction_id == "p000"


def test_an_alerts_page_has_its_features_explanation_and_every_label(engine: Engine) -> None:
    _mixed_log(engine)
    store_labels(engine, {"h": 0})
    alert_id = queue_page(engine, QueueFilter(status="reviewed")).rows[0].id
    alert = read_alert(engine, alert_id)
    assert alert is not None and alert.row.transaction_id == "h"
    assert len(alert.features) == 30 and alert.features["V1"] == 0.25
    assert [c.feature for c in alert.explanation] == ["V14", "V10", "Amount"]
    assert [h.label for h in alert.history] == [1, 0]
    assert alert.row.label == 0


def test_rows_that_are_not_alerts_have_no_page(engine: Engine) -> None:
    _mixed_log(engine)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM predictions WHERE transaction_id IN ('e', 'f')"))
        for (row_id,) in ids:
            assert read_alert(engine, row_id) is None


def test_an_older_log_gains_the_alert_indexes_and_a_history_of_its_labels(
    engine: Engine,
) -> None:
    """A log made before the review page: no label_history table and no alert indexes."""
    with engine.begin() as conn:
        label_history.drop(conn)
        for name in ("ix_predictions_alert_order", "ix_predictions_alert_day"):
            conn.execute(text(f"DROP INDEX {name}"))
    _mixed_log_without_history(engine)
    ensure_schema(engine)
    with engine.connect() as conn:
        names = index_names(conn, "predictions")
    assert {"ix_predictions_alert_order", "ix_predictions_alert_day"} <= names
    with engine.connect() as conn:
        history = conn.execute(select(label_history.c.transaction_id, label_history.c.label))
        assert history.all() == [("h", 1)]
    ensure_schema(engine)  # again, as every worker does: nothing is copied twice
    with engine.connect() as conn:
        assert len(conn.execute(select(label_history)).all()) == 1


def _mixed_log_without_history(engine: Engine) -> None:
    log_predictions(engine, [prediction("h", 0.95)])
    with engine.begin() as conn:
        conn.execute(feedback.insert().values(transaction_id="h", label=1, received_at=utc_now()))


def test_the_queue_walks_the_alert_index_on_sqlite(tmp_path: Path) -> None:
    """The first page reads the alerts only, already in order: no scan of the log, no sort."""
    engine = open_engine(f"sqlite:///{tmp_path}/log.db")
    metadata.create_all(engine)
    query = queue_query(QueueFilter())
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX ix_predictions_alert_order" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def _review(tid: str, label: int, reviewer: str = "Ann") -> list[LabelRecord]:
    return [LabelRecord(tid, label, source=REVIEW, reviewer=reviewer)]


def _current(engine: Engine, tid: str) -> tuple[int, str, str | None] | None:
    f = feedback.c
    with engine.connect() as conn:
        row = conn.execute(
            select(f.label, f.source, f.reviewer).where(f.transaction_id == tid)
        ).first()
    return None if row is None else (row[0], row[1], row[2])


def test_undo_puts_back_the_label_from_before_or_none(engine: Engine) -> None:
    _mixed_log(engine)
    store_labels(engine, {"a": 0})  # an earlier label, from /feedback
    store_labels(engine, _review("a", 1))
    store_labels(engine, _review("b", 1))
    assert undo_last(engine, "Ann") == "b"
    assert _current(engine, "b") is None  # b had no label before: it is open again
    assert [r.transaction_id for r in queue_page(engine, QueueFilter()).rows].count("b") == 1
    assert undo_last(engine, "Ann") == "a"
    assert _current(engine, "a") == (0, "other", None)
    assert undo_last(engine, "Ann") is None  # nothing of Ann's stands any more
    alert = read_alert(engine, queue_page(engine, QueueFilter(status="reviewed")).rows[-1].id)
    assert alert is not None


def test_undo_takes_back_only_the_reviewers_own_labels(engine: Engine) -> None:
    _mixed_log(engine)
    store_labels(engine, _review("a", 1, reviewer="Ann"))
    store_labels(engine, _review("b", 0, reviewer="Bob"))
    assert undo_last(engine, "Ann") == "a"
    assert _current(engine, "b") == (0, REVIEW, "Bob")


def test_undo_leaves_a_label_stored_since_as_the_current_one(engine: Engine) -> None:
    _mixed_log(engine)
    store_labels(engine, _review("a", 0))
    store_labels(engine, [LabelRecord("a", 1, source="chargeback")])
    assert undo_last(engine, "Ann") == "a"
    assert _current(engine, "a") == (1, "chargeback", None)
    history = read_alert(engine, _alert_id(engine, "a"))
    assert history is not None
    assert [(h.source, h.undone_at is not None) for h in history.history] == [
        (REVIEW, True),
        ("chargeback", False),
    ]


def _alert_id(engine: Engine, tid: str) -> int:
    found = alert_for(engine, tid)
    assert found is not None
    return found
