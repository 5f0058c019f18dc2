"""`fraud monitor`'s maths: PSI, live metrics, the drift rule, the report and the pushed gauges."""

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from fraud_detection.data import load_dataset, time_split
from fraud_detection.monitoring import (
    DriftRule,
    MonitorResult,
    evaluate,
    format_report,
    live_metrics,
    psi,
    push_gauges,
)
from fraud_detection.monitoring.drift import PSI_EPSILON
from fraud_detection.reference import build_reference, feature_bins
from fraud_detection.schema import FEATURES
from fraud_detection.training import MODEL_FEATURES, features_and_label, split_history
from prometheus_helpers import running_pushgateway

VERSION = "3"
MANIFEST: dict[str, Any] = {
    "version": 3,
    "model_features": list(MODEL_FEATURES),
    "metrics": {"test": {"f1": 0.8}},
}
RATE = 0.01
"""The test reference's predicted fraud rate: band 0.25%..4% by default."""


def features(rows: int, seed: int, time_offset: float = 0.0) -> np.ndarray[Any, Any]:
    """Rows of the schema: Time increasing from `time_offset`, the rest standard normal."""
    x = np.random.default_rng(seed).normal(size=(rows, len(FEATURES)))
    x[:, 0] = time_offset + np.arange(rows, dtype=np.float64)
    return x


def scores(rows: int, seed: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).beta(0.5, 20, size=rows)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    ref: dict[str, Any] = build_reference(
        features(20_000, seed=1), FEATURES, scores(20_000, seed=2), 0.5
    )
    ref["predicted_fraud_rate"] = RATE
    return ref


def window(
    rows: int = 5_000,
    *,
    tp: int = 50,
    fp: int = 0,
    fn: int = 10,
    labelled: int | None = None,
    unlabelled_flags: int = 0,
    seed: int = 10,
) -> pd.DataFrame:
    """A prediction-log window drawn like the reference, with the given confusion counts.

    The first tp+fp+fn+tn rows (all rows unless `labelled`) carry labels; Time lies past the
    reference range, as live traffic always does.
    """
    x = features(rows, seed, time_offset=1e6)
    n_labelled = rows if labelled is None else labelled
    rest = rows - n_labelled
    counts = [tp, fp, fn, n_labelled - tp - fp - fn, unlabelled_flags, rest - unlabelled_flags]
    flagged = np.repeat([True, True, False, False, True, False], counts)
    label = np.repeat([1.0, 0.0, 1.0, 0.0, np.nan, np.nan], counts)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    frame.insert(0, "transaction_id", [f"t{i}" for i in range(rows)])
    frame.insert(1, "created_at", [start + timedelta(minutes=i) for i in range(rows)])
    frame.insert(2, "variant", "champion")
    frame.insert(3, "model_version", VERSION)
    frame["probability"] = scores(rows, seed + 1)
    frame["is_fraud"] = flagged
    frame["threshold"] = 0.5
    frame["label"] = label
    return frame


def run(frame: pd.DataFrame, reference: dict[str, Any], **rule: Any) -> MonitorResult:
    return evaluate(frame, reference, MANIFEST, DriftRule(**rule))


# --- PSI -------------------------------------------------------------------------------------


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shifted_one() -> None:
    rng = np.random.default_rng(0)
    bins = feature_bins(rng.normal(size=50_000))
    same = psi(bins["proportions"], bins["edges"], rng.normal(size=10_000))
    shifted = psi(bins["proportions"], bins["edges"], rng.normal(loc=1.0, size=10_000))
    assert same < 0.01
    assert shifted > 0.5


def test_psi_matches_a_hand_computed_value() -> None:
    # Edges [0, 1]: bins (-inf, 0), [0, 1), [1, inf); a value on an edge goes right.
    # Live shares [0.5, 0.25, 0.25] against [0.25, 0.5, 0.25]:
    # (0.5 - 0.25) ln 2 + (0.25 - 0.5) ln 0.5 + 0 = 0.5 ln 2.
    value = psi([0.25, 0.5, 0.25], [0.0, 1.0], [-1.0, -2.0, 0.0, 1.0])
    assert value == pytest.approx(0.5 * math.log(2), rel=1e-12)


def test_empty_bins_are_floored_at_epsilon_so_psi_stays_finite() -> None:
    # Reference bin 3 is empty and stays empty: floored on both sides, it adds nothing.
    # Live bin 2 empties: (eps - 0.5) ln(eps / 0.5). Live bin 1 doubles: 0.5 ln 2.
    value = psi([0.5, 0.5, 0.0], [0.0, 1.0], [-1.0, -1.0])
    eps = 1e-4
    assert PSI_EPSILON == eps
    assert value == pytest.approx(0.5 * math.log(2) + (eps - 0.5) * math.log(eps / 0.5))
    assert math.isfinite(value) and value > 4


def test_psi_refuses_bins_that_do_not_line_up_and_empty_values() -> None:
    with pytest.raises(ValueError, match="2 edges need 3 proportions"):
        psi([0.5, 0.5], [0.0, 1.0], [0.5])
    with pytest.raises(ValueError, match="no values"):
        psi([0.5, 0.5], [0.0], [])


# --- Live metrics ----------------------------------------------------------------------------


def test_live_metrics_of_a_hand_made_window() -> None:
    frame = pd.DataFrame(
        {
            "is_fraud": [True, True, True, False, False, False, False, False, False, True],
            "label": [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, np.nan, np.nan],
        }
    )
    m = live_metrics(frame)
    assert m["confusion_matrix"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 4}
    assert (m["rows"], m["labelled"], m["labelled_frauds"], m["flagged"]) == (10, 8, 3, 4)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 5)
    assert m["fnr"] == pytest.approx(1 / 3)
    assert m["predicted_fraud_rate"] == pytest.approx(0.4)


def test_undefined_metrics_are_none_not_nan_or_zero() -> None:
    unlabelled = live_metrics(pd.DataFrame({"is_fraud": [True, False], "label": [np.nan] * 2}))
    for name in ("precision", "recall", "f1", "fpr", "fnr"):
        assert unlabelled[name] is None, name
    assert unlabelled["predicted_fraud_rate"] == 0.5
    no_frauds = live_metrics(pd.DataFrame({"is_fraud": [False, False], "label": [0.0, 0.0]}))
    assert no_frauds["recall"] is None and no_frauds["fnr"] is None
    assert no_frauds["precision"] is None and no_frauds["f1"] is None
    assert no_frauds["fpr"] == 0.0
    empty = live_metrics(pd.DataFrame({"is_fraud": pd.Series([], dtype=bool), "label": []}))
    assert empty["rows"] == 0 and empty["predicted_fraud_rate"] is None


# --- The drift rule --------------------------------------------------------------------------


def test_a_clean_window_has_no_drift_reasons(reference: dict[str, Any]) -> None:
    result = run(window(), reference)
    assert result.reasons == []
    assert not result.drift_detected
    assert result.notes == []
    assert result.rule.baseline_f1 == 0.8, "defaults to the champion's test F1"
    assert result.rule.fraud_rate_low == pytest.approx(RATE / 4)
    assert result.rule.fraud_rate_high == pytest.approx(RATE * 4)
    assert max(v for v in result.feature_psi.values() if v is not None) < 0.05


def test_f1_below_baseline_minus_alert_threshold_is_drift(reference: dict[str, Any]) -> None:
    # tp 30, fn 30: F1 = 60 / 90 = 0.667 < 0.8 - 0.1; FNR exactly 0.5 is not above its limit.
    result = run(window(tp=30, fn=30), reference)
    assert result.reasons == ["F1 0.667 < 0.700 (baseline 0.800 - 0.100)"]
    assert run(window(tp=30, fn=30), reference, baseline_f1=0.7).reasons == []


def test_false_negative_rate_above_its_limit_is_drift(reference: dict[str, Any]) -> None:
    result = run(window(tp=20, fn=40), reference, baseline_f1=0.3)
    assert result.reasons == ["FNR 0.667 > 0.500"]


def test_false_positive_rate_above_its_limit_is_drift(reference: dict[str, Any]) -> None:
    # 10 false alarms among 4,940 labelled legit rows: FPR 0.00202 > 0.001.
    result = run(window(fp=10), reference)
    assert result.reasons == ["FPR 0.00202 > 0.00100"]


def test_fraud_rate_outside_its_band_is_drift(reference: dict[str, Any]) -> None:
    # Unlabelled windows, so only the rate is judged: 300 / 5,000 = 6% > 4%; 5 / 5,000 < 0.25%.
    high = run(window(labelled=0, tp=0, fn=0, unlabelled_flags=300), reference)
    assert high.reasons == [
        "predicted fraud rate 6.0000% above band 0.2500%..4.0000% (300 of 5,000)"
    ]
    low = run(window(labelled=0, tp=0, fn=0, unlabelled_flags=5), reference)
    assert low.reasons == ["predicted fraud rate 0.1000% below band 0.2500%..4.0000% (5 of 5,000)"]
    custom = run(window(labelled=0, tp=0, fn=0, unlabelled_flags=5), reference, fraud_rate_low=0)
    assert custom.reasons == []


def test_fraud_rate_band_does_not_fire_on_counts_chance_can_fake(
    reference: dict[str, Any],
) -> None:
    # 3 flags in 50 rows (6%) are too few to call a rise; 500 rows expect only 5 flags at the
    # reference rate of 1%, so seeing none says nothing yet.
    tiny = run(window(50, labelled=0, tp=0, fn=0, unlabelled_flags=3), reference)
    assert not any("rate" in r for r in tiny.reasons)
    few = run(window(500, labelled=0, tp=0, fn=0, unlabelled_flags=0), reference)
    assert not any("rate" in r for r in few.reasons)
    assert any("fraud rate below the band not judged" in n for n in few.notes)


def test_a_shifted_feature_is_flagged_by_its_psi(reference: dict[str, Any]) -> None:
    frame = window()
    frame["V14"] += 2
    result = run(frame, reference)
    assert len(result.reasons) == 1
    assert result.reasons[0].startswith("PSI of V14 ")
    assert result.reasons[0].endswith(" > 0.2")


def test_a_shifted_score_is_flagged_by_its_psi(reference: dict[str, Any]) -> None:
    frame = window()
    frame["probability"] = np.minimum(frame["probability"] * 5, 1.0)
    result = run(frame, reference)
    assert len(result.reasons) == 1 and result.reasons[0].startswith("PSI of the score ")


def test_score_psi_only_counts_rows_of_the_reference_model(reference: dict[str, Any]) -> None:
    frame = window()
    challenger = frame.index % 2 == 1
    frame.loc[challenger, "model_version"] = "4"
    frame.loc[challenger, "probability"] = 0.99  # another model's scores: not comparable
    result = run(frame, reference)
    assert result.score_rows == 2_500
    assert result.score_psi is not None and result.score_psi < 0.05
    assert result.reasons == []


def test_too_few_labels_report_instead_of_firing(reference: dict[str, Any]) -> None:
    # Every labelled fraud missed and 20 false alarms, but only 100 labelled rows (5 frauds).
    result = run(window(labelled=100, tp=0, fp=20, fn=5, unlabelled_flags=30), reference)
    assert result.reasons == []
    assert any(
        "F1 and FNR not judged: not enough labels (5 labelled frauds" in n for n in result.notes
    )
    assert any("FPR not judged: not enough labels (100 labelled rows" in n for n in result.notes)
    assert result.metrics["f1"] == 0.0, "still measured and shown"
    shown = "| F1 | 0.000 [0.000, 0.000] | ≥ 0.700 (baseline 0.800 - 0.1) (too few labels) |"
    assert shown in format_report(result)


def test_too_few_rows_leave_psi_unjudged(reference: dict[str, Any]) -> None:
    frame = window(500, tp=5, fn=0)
    frame["V14"] += 2
    result = run(frame, reference)
    assert set(result.feature_psi.values()) == {None}
    assert result.score_psi is None
    assert result.reasons == []
    assert any("feature PSI not judged: 500 rows, need 1,000" in n for n in result.notes)


def test_time_is_never_flagged_though_its_psi_is_huge(reference: dict[str, Any]) -> None:
    result = run(window(), reference)
    assert "Time" not in result.feature_psi
    assert result.skipped_psi["Time"] > 5
    assert "seconds since the dataset's first transaction" in result.skipped_features["Time"]
    assert not any("Time" in r for r in result.reasons)


def test_features_the_model_does_not_use_are_not_judged(reference: dict[str, Any]) -> None:
    frame = window()
    frame["V14"] += 2
    manifest = {**MANIFEST, "model_features": [f for f in MODEL_FEATURES if f != "V14"]}
    result = evaluate(frame, reference, manifest)
    assert result.reasons == []
    assert result.skipped_features["V14"] == "not used by the model"


def test_an_empty_window_is_reported_not_an_error(reference: dict[str, Any]) -> None:
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)
    result = evaluate(window(0, tp=0, fn=0), reference, MANIFEST, period=(start, end))
    assert not result.drift_detected
    assert (result.start, result.end) == (start, end)
    assert "Predictions: 0" in format_report(result)


# --- Report and JSON -------------------------------------------------------------------------


def test_report_shows_window_metrics_psi_table_and_every_reason(
    reference: dict[str, Any],
) -> None:
    frame = window(fp=10)
    frame["V14"] += 2
    frame["Amount"] *= 3
    result = run(frame, reference)
    report = format_report(result)
    assert "Window: 2026-03-01 00:00 → 2026-03-04 11:19 UTC" in report
    assert "Predictions: 5,000; labelled: 5,000 (60 frauds)" in report
    assert "**Drift detected:**" in report
    for reason in result.reasons:
        assert f"- {reason}" in report
    assert "| false positive rate | 0.00202 | ≤ 0.001 |" in report
    psi_rows = [line for line in report.splitlines() if line.startswith("| V")]
    assert psi_rows[0].startswith("| V14 |") and psi_rows[0].endswith("| **DRIFT** |")
    assert "| Time |" in report and "not judged" in report
    assert "No drift" in format_report(run(window(), reference))


def test_json_output_round_trips(reference: dict[str, Any]) -> None:
    result = run(window(fp=10), reference)
    data = json.loads(json.dumps(result.to_json()))
    assert data["drift_detected"] is True
    assert data["reasons"] == result.reasons
    assert data["metrics"]["confusion_matrix"] == {"tn": 4930, "fp": 10, "fn": 10, "tp": 50}
    assert data["rule"]["max_fpr"] == 0.001
    assert data["skipped_features"]["Time"]["psi"] > 5
    assert data["start"] == "2026-03-01T00:00:00+00:00"


# --- Pushgateway -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[str]:
    """The real Pushgateway on a free loopback port; yields host:port."""
    with running_pushgateway() as url:
        yield url.removeprefix("http://")


def pushed(address: str, model: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample the Pushgateway exposes for the group, keyed by name and labels."""
    text = requests.get(f"http://{address}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("job") == "fraud-monitor" and s.labels.get("model") == model:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def labels(**extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({"job": "fraud-monitor", "model": "m1", "instance": "", **extra}.items())


def test_push_gauges_reach_the_real_pushgateway(
    pushgateway: str, reference: dict[str, Any]
) -> None:
    frame = window(fp=10)
    frame["V14"] += 2
    result = run(frame, reference)
    before = time.time()
    push_gauges(result, pushgateway, "m1", last_trained=1_700_000_000.0)
    got = pushed(pushgateway, "m1")
    m = result.metrics
    assert got[("model_current_f1_score", labels())] == pytest.approx(m["f1"])
    assert got[("model_current_precision", labels())] == pytest.approx(m["precision"])
    assert got[("model_current_recall", labels())] == pytest.approx(m["recall"])
    assert got[("model_false_positive_rate", labels())] == pytest.approx(0.002024, abs=1e-6)
    assert got[("model_false_negative_rate", labels())] == pytest.approx(m["fnr"])
    assert got[("model_drift_detected", labels())] == 1.0
    assert got[("model_predicted_fraud_rate", labels())] == pytest.approx(60 / 5000)
    assert got[("model_labelled_predictions", labels())] == 5000
    assert got[("fraud_score_psi", labels())] == pytest.approx(result.score_psi)
    assert got[("fraud_model_last_trained_timestamp_seconds", labels())] == 1_700_000_000
    assert got[("model_monitor_last_run_timestamp_seconds", labels())] >= int(before)
    psi_series = {dict(k[1])["feature"]: v for k, v in got.items() if k[0] == "fraud_feature_psi"}
    assert set(psi_series) == set(MODEL_FEATURES), "every judged feature, never Time"
    assert psi_series["V14"] == pytest.approx(result.feature_psi["V14"])


def test_undefined_gauges_are_left_out_not_pushed_as_nan(
    pushgateway: str, reference: dict[str, Any]
) -> None:
    result = run(window(500, labelled=0, tp=0, fn=0), reference)
    push_gauges(result, pushgateway, "m2", last_trained=None)
    names = {name for name, _ in pushed(pushgateway, "m2")}
    assert (
        names
        & {
            "model_current_f1_score",
            "model_current_precision",
            "model_current_recall",
            "model_false_positive_rate",
            "model_false_negative_rate",
            "fraud_feature_psi",
            "fraud_score_psi",
            "fraud_model_last_trained_timestamp_seconds",
        }
        == set()
    )
    assert {
        "model_drift_detected",
        "model_predicted_fraud_rate",
        "model_labelled_predictions",
        "model_monitor_last_run_timestamp_seconds",
    } <= names


# --- Real data -------------------------------------------------------------------------------


def test_on_real_data_only_the_shifted_features_are_flagged(real_data: Path) -> None:
    """Reference from the validation slice as training builds it; new data, 5,000 rows.

    Feature PSI does not depend on the model, so scores are left out here (all zero);
    benchmarks/drift_bench.py measures the score PSI with the real forest.
    """
    history, new = time_split(load_dataset(str(real_data)))
    _, validation = split_history(history, 0.2)
    x_val, _ = features_and_label(validation)
    reference = build_reference(x_val, FEATURES, np.zeros(len(x_val)), 0.5)
    sample = new.iloc[:: len(new) // 5_000].reset_index(drop=True)
    frame = sample.loc[:, list(FEATURES)].assign(
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        model_version=VERSION,
        probability=0.0,
        is_fraud=False,
        label=np.nan,
    )
    clean = evaluate(frame, reference, MANIFEST)
    assert clean.reasons == []
    shifted = frame.assign(Amount=frame["Amount"] * 3, V14=frame["V14"] + 2)
    result = evaluate(shifted, reference, MANIFEST)
    flagged = {name for name, value in result.feature_psi.items() if value and value > 0.2}
    assert flagged == {"Amount", "V14"}
    assert len(result.reasons) == 2
    assert clean.skipped_psi["Time"] > 1, "Time's PSI is huge and rightly not judged"
