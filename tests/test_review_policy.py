"""The review policy the simulated issuer and the review queue share: highest score first, up
to a daily capacity, in the same order in memory as in SQL."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Column, DateTime, Float, MetaData, String, Table, create_engine, select

from fraud_detection.review_policy import Alert, ReviewPolicy, queue_order, review_day

T0 = datetime(2026, 3, 1, 9, 0)


def alerts() -> list[Alert]:
    """Scores with ties: equal scores fall back to the older alert, then the smaller id."""
    return [
        Alert("a", 0.6, T0),
        Alert("b", 0.9, T0 + timedelta(hours=2)),
        Alert("c", 0.6, T0 - timedelta(hours=1)),
        Alert("d", 0.6, T0 - timedelta(hours=1)),
        Alert("e", 0.95, T0 + timedelta(hours=3)),
    ]


def test_the_best_scored_alerts_are_picked_up_to_what_the_day_has_left() -> None:
    policy = ReviewPolicy(capacity=4)
    assert [a.transaction_id for a in policy.pick(alerts(), reviewed_today=0)] == [
        "e", "b", "c", "d",
    ]  # fmt: skip
    assert [a.transaction_id for a in policy.pick(alerts(), reviewed_today=3)] == ["e"]
    assert policy.pick(alerts(), reviewed_today=4) == []
    assert policy.pick(alerts(), reviewed_today=9) == [] and policy.left(9) == 0


def test_a_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        ReviewPolicy(capacity=-1)


def test_the_review_day_is_the_utc_calendar_day() -> None:
    assert review_day(datetime(2026, 3, 1, 23, 59)) != review_day(datetime(2026, 3, 2, 0, 0))


def test_sql_orders_the_queue_exactly_as_the_policy_does() -> None:
    table = Table(
        "queue",
        MetaData(),
        Column("transaction_id", String(16)),
        Column("probability", Float),
        Column("at", DateTime()),
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [{"transaction_id": a.transaction_id, "probability": a.score, "at": a.at}
             for a in alerts()],
        )  # fmt: skip
        query = select(table.c.transaction_id).order_by(
            *queue_order(table.c.probability, table.c.at, table.c.transaction_id)
        )
        in_sql = list(conn.execute(query).scalars())
    in_memory = [a.transaction_id for a in ReviewPolicy(capacity=5).pick(alerts(), 0)]
    assert in_sql == in_memory
