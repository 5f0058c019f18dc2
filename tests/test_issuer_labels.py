"""The simulated issuer's label process in simulated time: reviews of the best-scored alerts up
to a daily capacity, chargebacks of missed frauds weeks later, nothing for legitimate rows."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fraud_detection.simulate import IssuerLabels, IssuerOptions, SimClock, event_times

START = datetime(2026, 3, 1, 0, 0)
NEVER = IssuerOptions(chargeback_rate=0.0, dispute_window_days=60)


def issuer(labels: list[int], options: IssuerOptions = NEVER, seed: int = 0) -> IssuerLabels:
    return IssuerLabels(np.array(labels, dtype=np.int64), START, options, seed)


def test_each_round_reviews_the_best_scored_alerts_up_to_the_days_capacity() -> None:
    options = IssuerOptions(review_capacity=3, review_delay_hours=4, chargeback_rate=0.0)
    process = issuer([1, 0, 0, 1, 0, 0], options)
    for row, score in enumerate([0.5, 0.9, 0.6, 0.95, 0.7]):
        process.scored(row, f"t{row}", START + timedelta(hours=1), score, flagged=True)
    process.scored(5, "t5", START + timedelta(hours=1), 0.01, flagged=False)
    assert process.release(START + timedelta(hours=3)) == [], "the round comes at 04:00"
    first = process.release(START + timedelta(hours=5))
    assert [(x.transaction_id, x.label, x.source) for x in first] == [
        ("t3", 1, "review"), ("t1", 0, "review"), ("t4", 0, "review"),
    ]  # fmt: skip
    assert {x.observed_at for x in first} == {START + timedelta(hours=4)}
    assert process.release(START + timedelta(hours=23)) == [], "the day's capacity is used"
    # Past midnight the next day's capacity takes what is still waiting, within its day.
    second = process.release(START + timedelta(days=1, hours=1))
    assert [x.transaction_id for x in second] == ["t2", "t0"]
    assert second[0].observed_at == START + timedelta(days=1)
    assert process.counts() == {
        "reviews": 5, "reviewed_frauds": 2, "chargebacks": 0, "alerts_unreviewed": 0,
    }  # fmt: skip
    assert len(process) == 0 and process.next_at() is None


def test_an_alert_no_round_takes_within_a_day_goes_through_unreviewed() -> None:
    process = issuer([1, 0], IssuerOptions(review_capacity=0, chargeback_rate=0.0))
    process.scored(0, "t0", START, 0.9, flagged=True)
    process.scored(1, "t1", START, 0.8, flagged=True)
    assert process.release(START + timedelta(days=2)) == []
    assert process.counts()["alerts_unreviewed"] == 2 and len(process) == 0


def test_missed_frauds_are_charged_back_after_their_delay_and_legitimate_rows_never() -> None:
    options = IssuerOptions(review_capacity=10, chargeback_rate=1.0, chargeback_delay_days=14)
    labels = [1, 1, 0, 0, 1]
    process = issuer(labels, options, seed=3)
    process.scored(0, "missed", START, 0.01, flagged=False)
    process.scored(1, "caught", START, 0.99, flagged=True)
    process.scored(2, "legit", START, 0.01, flagged=False)
    process.scored(3, "false-alarm", START, 0.9, flagged=True)
    process.scored(4, "late", START, 0.01, flagged=False)
    learnt = process.release(START + timedelta(days=365))
    by_id = {x.transaction_id: x for x in learnt}
    assert by_id["caught"].source == "review" and by_id["caught"].label == 1
    assert by_id["false-alarm"].source == "review" and by_id["false-alarm"].label == 0
    assert by_id["missed"].source == "chargeback" and by_id["missed"].label == 1
    delay = by_id["missed"].observed_at - START
    assert delay == timedelta(days=float(process.dispute_days[0]))
    assert "legit" not in by_id, "a legitimate row is never labelled"
    assert [x.source for x in learnt if x.transaction_id == "caught"] == ["review"]
    times = [x.observed_at for x in learnt]
    assert times == sorted(times), "released in the order the issuer learns them"


def test_chargeback_delays_have_the_stated_mean_and_none_past_the_dispute_window() -> None:
    rows = 20_000
    options = IssuerOptions(chargeback_rate=0.5, chargeback_delay_days=14, dispute_window_days=30)
    process = issuer([1] * rows, options, seed=1)
    assert process.dispute_days.mean() == pytest.approx(14, rel=0.02)
    assert process.disputed.mean() == pytest.approx(0.5, abs=0.01)
    for row in range(rows):
        process.scored(row, f"t{row}", START, 0.0, flagged=False)
    learnt = process.release(START + timedelta(days=400))
    window = process.dispute_days <= 30
    assert len(learnt) == int((process.disputed & window).sum())
    assert max(x.observed_at for x in learnt) <= START + timedelta(days=30)


def test_the_labels_do_not_depend_on_the_order_rows_are_scored_in() -> None:
    options = IssuerOptions(chargeback_rate=0.7)
    a, b = issuer([1] * 50, options, seed=9), issuer([1] * 50, options, seed=9)
    for row in range(50):
        a.scored(row, f"t{row}", START + timedelta(hours=row), 0.1, flagged=False)
    for row in reversed(range(50)):
        b.scored(row, f"t{row}", START + timedelta(hours=row), 0.1, flagged=False)
    end = START + timedelta(days=200)
    assert a.release(end) == b.release(end)


def test_event_times_follow_the_rows_time_from_the_start_stretched_over_the_days() -> None:
    rows = pd.DataFrame({"Time": [100.0, 160.0, 400.0]})
    assert event_times(rows, START, None) == [
        START, START + timedelta(seconds=60), START + timedelta(seconds=300),
    ]  # fmt: skip
    assert event_times(rows, START, 10)[-1] == START + timedelta(days=10)
    assert event_times(rows, START, 10)[1] == START + timedelta(days=2)


def test_simulated_time_runs_at_speed_and_holds_while_the_replay_lags() -> None:
    clock = SimClock(START, speed=3600, wall=100.0)
    assert clock.now(101.0) == START, "held at the first row until it is sent"
    second_row = START + timedelta(hours=2)
    clock.sent_until(second_row, 100.0)
    assert clock.now(101.0) == START + timedelta(hours=1)
    assert clock.wall_at(second_row) == 102.0
    # The second row goes out late, at 110: simulated time waited for it at 02:00.
    assert clock.now(110.0) == second_row
    clock.sent_until(None, 110.0)
    assert clock.now(111.0) == second_row + timedelta(hours=1), "carries on from the hold"
    assert clock.now(50.0) == second_row + timedelta(hours=1), "never back"
