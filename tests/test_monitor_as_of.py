"""`fraud monitor` judged as of a moment, in memory (the plain definition the SQL counts must
equal): alert precision from reviews at once, the rates only from mature rows, never a recall
of 1.00 from the reviewed alerts alone."""

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from fraud_detection.log_record import LOG_COLUMNS, LabelRecord
from fraud_detection.monitoring import DriftRule, MonitorResult, judge, push_gauges
from fraud_detection.monitoring.maturity import Horizon
from fraud_detection.monitoring.report import format_report
from fraud_detection.monitoring.status import Estimate, Status
from fraud_detection.monitoring.window import count_frame_as_of, count_log
from fraud_detection.prediction_log import (
    ensure_schema,
    insert_predictions,
    open_engine,
    read_window,
    store_labels,
)
from fraud_detection.reference import build_reference
from fraud_detection.schema import FEATURES
from fraud_detection.sql_sink import open_sink
from prometheus_helpers import running_pushgateway

START = datetime(2026, 3, 1)
MANIFEST: dict[str, Any] = {"version": 1, "metrics": {"test": {"f1": 0.8}}}
RULE = DriftRule(min_rows=100, min_labelled=100, min_labelled_frauds=20, min_flags=1.0)
HORIZON = timedelta(days=60)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x, scores = rng.normal(size=(2_000, len(FEATURES))), rng.beta(0.5, 20, size=2_000)
    reference: dict[str, Any] = build_reference(x, FEATURES, scores, 0.5)
    return reference


def issuer_log(days: int = 56, per_day: int = 200, seed: int = 1) -> pd.DataFrame:
    """A log as an issuer fills it: one row every few minutes over `days`, 2% fraud; the model
    flags 70% of frauds and 0.5% of legitimate rows; every alert is reviewed 2 hours after it
    happened, every missed fraud charged back 20 days after it. Truth in `truth`."""
    rng = np.random.default_rng(seed)
    rows = days * per_day
    event = [START + timedelta(days=days * i / rows) for i in range(rows)]
    truth = rng.random(rows) < 0.02
    flagged = np.where(truth, rng.random(rows) < 0.7, rng.random(rows) < 0.005)
    review = flagged
    chargeback = truth & ~flagged
    delay = np.where(review, 2 / 24, np.where(chargeback, 20.0, np.nan))
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=list(FEATURES))
    frame.insert(0, "transaction_id", [f"t{i}" for i in range(rows)])
    frame["created_at"] = START + timedelta(days=400)  # received long after: event time rules
    frame["event_time"] = event
    frame["variant"] = "champion"
    frame["model_version"] = "1"
    frame["probability"] = np.where(flagged, 0.9, 0.01)
    frame["is_fraud"] = flagged
    frame["threshold"] = 0.5
    labelled = review | chargeback
    frame["label"] = np.where(labelled, truth.astype(float), np.nan)
    frame["source"] = [
        "review" if r else "chargeback" if c else None
        for r, c in zip(review, chargeback, strict=True)
    ]
    frame["label_observed_at"] = [
        e + timedelta(days=float(d)) if not np.isnan(d) else pd.NaT
        for e, d in zip(event, delay, strict=True)
    ]
    frame["truth"] = truth
    return frame


def judged(
    frame: pd.DataFrame, reference: dict[str, Any], as_of: datetime, lookback: float
) -> MonitorResult:
    since = as_of - timedelta(days=lookback)
    horizon = Horizon(as_of, HORIZON)
    counts, _ = count_frame_as_of(frame, reference, "1", since, horizon)
    return judge(counts, reference, MANIFEST, RULE, period=(since, as_of), horizon=horizon)


def test_on_day_one_alert_precision_is_measured_and_recall_is_not(
    reference: dict[str, Any],
) -> None:
    frame = issuer_log()
    result = judged(frame, reference, START + timedelta(days=1), lookback=1)
    day = frame[frame.event_time <= START + timedelta(days=1)]
    # Every alert of the day that is 2 hours old is reviewed by then.
    assert result.figures["alert_precision"].status is Status.MEASURED
    reviewed = day[day.is_fraud & (day.label_observed_at <= START + timedelta(days=1))]
    assert result.figures["alert_precision"].value == pytest.approx(reviewed.truth.mean())
    # What the issue measured: the labels in on day 1 alone would read recall 1.00.
    labelled = day[day.label_observed_at <= START + timedelta(days=1)]
    naive = (labelled.is_fraud & labelled.truth).sum() / labelled.truth.sum()
    assert naive == 1.0
    for name in ("recall", "precision", "f1", "fpr", "fnr"):
        assert result.figures[name].status is Status.UNKNOWN, name
        assert result.metrics[name] is None, name
    assert "no mature rows" in (result.figures["recall"].reason or "")
    report = format_report(result)
    recall_lines = [line for line in report.splitlines() if line.startswith("| recall")]
    assert recall_lines and all("1.000" not in line for line in recall_lines), recall_lines
    assert any("F1 and FNR not judged" in n and "among the mature rows" in n for n in result.notes)
    assert not [r for r in result.reasons if r.startswith(("F1", "FNR", "FPR"))]


def test_after_the_horizon_recall_is_measured_and_equals_the_truth(
    reference: dict[str, Any],
) -> None:
    frame = issuer_log()
    end = START + timedelta(days=56)
    result = judged(frame, reference, end + HORIZON, lookback=56)
    truth = frame.truth.to_numpy()
    true_recall = (frame.is_fraud & truth).sum() / truth.sum()
    recall = result.figures["recall"]
    assert recall.status is Status.MEASURED and recall.value == pytest.approx(true_recall)
    assert recall.interval is not None and recall.interval[0] <= true_recall <= recall.interval[1]
    true_fpr = (frame.is_fraud & ~truth).sum() / (~truth).sum()
    assert result.figures["fpr"].value == pytest.approx(true_fpr)
    settled = result.settled
    assert settled is not None and settled.tally.rows == len(frame)
    assert settled.presumed == int((frame.label.isna()).sum())
    assert settled.reviewed == int(frame.is_fraud.sum())
    assert settled.chargebacks == int((truth & ~frame.is_fraud).sum())
    assert {c.completeness for c in result.cohorts} == {1.0}
    assert result.figures["label_completeness"].reason == "no rows in the window"


def test_cohorts_fill_in_as_chargebacks_arrive_and_rows_mature(reference: dict[str, Any]) -> None:
    frame = issuer_log(days=70)
    as_of = START + timedelta(days=70)
    result = judged(frame, reference, as_of, lookback=7)
    cohorts = {c.day: c for c in result.cohorts}
    oldest = (as_of - timedelta(days=67)).date()
    assert min(cohorts) == oldest, "from the mature window's start on"
    first, recent = cohorts[oldest], cohorts[(as_of - timedelta(days=3)).date()]
    on_first = frame[frame.event_time.dt.date == oldest]
    assert first.completeness == 1.0, "past the horizon: every row settled"
    assert first.chargebacks == int((on_first.truth & ~on_first.is_fraud).sum())
    assert recent.chargebacks == 0, "3 days old: no chargeback yet (they take 20)"
    assert recent.reviewed == recent.alerts > 0
    assert recent.completeness == pytest.approx(recent.reviewed / recent.rows)


def test_an_estimate_plugs_in_with_one_call(reference: dict[str, Any]) -> None:
    result = judged(issuer_log(), reference, START + timedelta(days=1), lookback=1)
    estimated = result.with_estimates({"recall": Estimate(0.72, (0.6, 0.8), "calibrated scores")})
    assert estimated.figures["recall"].status is Status.ESTIMATED
    assert estimated.to_json()["figures"]["recall"]["value"] == 0.72
    assert "≈ 0.720 [0.600, 0.800]" in format_report(estimated)


def test_day_one_pushes_alert_precision_and_the_statuses_never_a_recall(
    reference: dict[str, Any],
) -> None:
    result = judged(issuer_log(), reference, START + timedelta(days=1), lookback=1)
    with running_pushgateway() as gateway:
        push_gauges(result, gateway, "m1", last_trained=None)
        text = requests.get(f"{gateway}/metrics", timeout=5).text
    samples = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k in ("figure", "status")))):
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("job") == "fraud-monitor"
    }  # fmt: skip
    names = {name for name, _ in samples}
    assert "model_current_recall" not in names and "model_current_f1_score" not in names
    assert samples[("model_alert_precision", ())] == pytest.approx(
        result.figures["alert_precision"].value
    )
    assert samples[("model_review_coverage", ())] == 1.0
    status = {k[1]: v for k, v in samples.items() if k[0] == "fraud_monitor_figure_status"}
    assert status[(("figure", "recall"), ("status", "unknown"))] == 1.0
    assert status[(("figure", "recall"), ("status", "measured"))] == 0.0
    assert status[(("figure", "alert_precision"), ("status", "measured"))] == 1.0


@pytest.mark.parametrize("day", [1, 30, 116])
def test_the_counts_in_sql_judge_exactly_as_the_plain_definition(
    database_url: str, reference: dict[str, Any], day: int
) -> None:
    frame = issuer_log(days=56, per_day=50, seed=4)
    frame.loc[frame.index % 10 == 3, "variant"] = "shadow"  # never judged, never an alert
    frame.loc[frame.index % 7 == 0, "event_time"] = pd.NaT  # the receive time stands in
    engine = open_engine(database_url)
    ensure_schema(engine)
    insert_predictions(engine, [tuple(row[c] for c in LOG_COLUMNS) for _, row in frame.assign(
        latency_ms=1.0, explanation=None, endpoint="predict",
        event_time=frame.event_time.astype(object).where(frame.event_time.notna(), None),
    ).iterrows()])  # fmt: skip
    labelled = frame[frame.label.notna()]
    store_labels(
        engine,
        [LabelRecord(t, int(lab), s, o) for t, lab, s, o in zip(
            labelled.transaction_id, labelled.label, labelled.source,
            labelled.label_observed_at.dt.to_pydatetime(), strict=True,
        )],
    )  # fmt: skip
    as_of = START + timedelta(days=day)
    since = as_of - timedelta(days=14)
    horizon = Horizon(as_of, HORIZON)
    sink = open_sink(database_url)
    try:
        in_sql, variants = count_log(sink, since, reference, "1", horizon)
        window = read_window(engine, horizon.span(since).mature_since)
        in_memory, memory_variants = count_frame_as_of(window, reference, "1", since, horizon)
    finally:
        sink.close()
    assert in_sql == in_memory
    assert variants == memory_variants
    result = judge(in_sql, reference, MANIFEST, RULE, period=(since, as_of), horizon=horizon)
    assert (
        result.to_json()
        == judge(
            in_memory, reference, MANIFEST, RULE, period=(since, as_of), horizon=horizon
        ).to_json()
    )
    assert in_sql.served.rows > 0 or day == 116
