"""`fraud monitor` with performance estimation: estimated figures with intervals beside the
measured ones, the drift rule on estimates, calibration drift, the gauges, and versions trained
before calibration maps existed."""

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_calibration import FAST, without_calibration
from test_monitoring import labels, pushed, pushgateway, reference, run, window  # noqa: F401

from fraud_detection.calibration import FILE, load_map
from fraud_detection.cli import cli
from fraud_detection.config import Settings
from fraud_detection.data import make_synthetic, time_split
from fraud_detection.log_record import LOG_COLUMNS, LabelRecord
from fraud_detection.monitoring import push_gauges
from fraud_detection.monitoring.estimation import (
    Expected,
    estimates,
    estimation_of,
)
from fraud_detection.monitoring.status import Estimate, Status, unknown
from fraud_detection.registry import Registry
from fraud_detection.schema import FEATURES
from fraud_detection.serving import close_app, create_app
from fraud_detection.sql_sink import open_sink
from fraud_detection.store import open_store
from fraud_detection.training import train_on

BASELINES = {"f1": 0.8, "recall": 0.75}


def monitor_json(store: Path, url: str, *extra: str) -> dict[str, Any]:
    args = ["monitor", "--store", str(store), "--database-url", url, "--json", *extra]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_monitor_reports_the_window_estimated_with_intervals(
    logged: tuple[Path, str], tmp_path: Path
) -> None:
    store, url = logged
    result = monitor_json(store, url, "--report", str(tmp_path / "m.md"))
    estimation = result["estimation"]
    assert estimation["rows"] == 2000 and estimation["unavailable"] is None
    for name in ("precision", "recall", "f1", "fpr", "expected_frauds"):
        figure = estimation["window"][name]
        low, high = figure["interval"]
        assert low <= figure["value"] <= high, name
        assert "version 1: platt map" in figure["basis"]
    assert result["figures"]["expected_frauds"]["status"] == "estimated"
    report = (tmp_path / "m.md").read_text()
    assert "## Estimated from calibrated scores" in report
    assert "not of the map's own error" in report


def small_window(rows: int, frauds_caught: float, frauds_missed: float, flagged: int) -> Expected:
    """A window as two groups: flagged rows at one probability, unflagged at another."""
    return Expected(
        tp=frauds_caught,
        fp=flagged - frauds_caught,
        fn=frauds_missed,
        tn=rows - flagged - frauds_missed,
        groups=(
            (True, flagged, frauds_caught / flagged),
            (False, rows - flagged, frauds_missed / (rows - flagged)),
        ),
        methods={"1": "isotonic"},
        rows_by_version={"1": rows},
    )


def test_estimated_recall_below_its_baseline_flags_only_when_the_interval_excludes_it() -> None:
    # 400 expected frauds, recall 0.5: far below 0.75 - 0.1, and surely so.
    low = small_window(200_000, frauds_caught=200, frauds_missed=200, flagged=240)
    judged = estimation_of(low, {"1": 200_000}, {}, baselines=BASELINES, alert_threshold=0.1)
    assert judged.quality_low
    assert any(r.startswith("estimated recall 0.500") for r in judged.reasons)
    assert all("interval excludes the baseline" in r for r in judged.reasons)
    # The same recall on 4 expected frauds: the interval reaches the baseline, nothing fires.
    few = small_window(2_000, frauds_caught=2, frauds_missed=2, flagged=3)
    judged = estimation_of(few, {"1": 2_000}, {}, baselines=BASELINES, alert_threshold=0.1)
    assert not judged.quality_low and not judged.reasons
    assert any("not judged: its interval reaches the baseline" in n for n in judged.notes)
    # A healthy window is quiet.
    fine = small_window(200_000, frauds_caught=320, frauds_missed=80, flagged=360)
    judged = estimation_of(fine, {"1": 200_000}, {}, baselines=BASELINES, alert_threshold=0.1)
    assert not judged.reasons and not judged.quality_low


def test_a_measured_figure_outside_the_estimate_for_the_same_rows_is_calibration_drift() -> None:
    window = small_window(100_000, frauds_caught=160, frauds_missed=40, flagged=180)
    mature = small_window(100_000, frauds_caught=160, frauds_missed=40, flagged=180)
    rows = mature.rows

    def judged(recall: float, f1: float) -> Any:
        measured = {"recall": (recall, rows), "f1": (f1, rows)}
        return estimation_of(
            window,
            {"1": rows},
            {},
            baselines=BASELINES,
            alert_threshold=0.1,
            mature=mature,
            measured=measured,
        )

    calibrated = judged(0.8, 0.84)
    assert calibrated.calibration_drift is False and not calibrated.reasons
    assert calibrated.gaps["recall"] == pytest.approx(0.0, abs=1e-9)
    drifted = judged(0.55, 0.65)
    assert drifted.calibration_drift is True
    assert any(r.startswith("calibration drift: measured recall 0.550") for r in drifted.reasons)
    assert drifted.gaps["recall"] == pytest.approx(0.55 - 0.8)
    # Measured on rows the estimate does not cover (a version without a map): not judged.
    partial = estimation_of(
        window,
        {"1": rows},
        {},
        baselines=BASELINES,
        alert_threshold=0.1,
        mature=mature,
        measured={"recall": (0.55, rows + 500)},
    )
    assert partial.calibration_drift is None and not partial.reasons
    assert any(n.startswith("calibration not judged") for n in partial.notes)


def test_estimates_sit_beside_measured_figures_and_stand_in_for_unknown_ones(
    reference: dict[str, Any],  # noqa: F811
) -> None:
    result = run(window(fp=10), reference)
    result = replace(result, figures={**result.figures, "recall": unknown("no mature rows")})
    window_estimates = {
        "recall": Estimate(0.7, (0.6, 0.8), "window"),
        "precision": Estimate(0.9, (0.8, 1.0), "window"),
    }
    mature = {"precision": Estimate(0.85, (0.8, 0.9), "mature rows")}
    plugged = result.with_estimation(
        replace(
            estimation_of(Expected(), {}, {}, baselines={}, alert_threshold=0.1),
            window=window_estimates,
            mature=mature,
            reasons=["estimated thing"],
        )
    )
    assert plugged.figures["recall"].status is Status.ESTIMATED
    assert plugged.figures["recall"].value == 0.7
    precision = plugged.figures["precision"]
    assert (
        precision.status is Status.MEASURED and precision.value == result.figures["precision"].value
    )
    assert precision.estimate == mature["precision"]  # the same rows, never the window's
    assert plugged.reasons == [*result.reasons, "estimated thing"]


def test_the_estimates_are_pushed_under_their_own_names(
    pushgateway: str,  # noqa: F811
    reference: dict[str, Any],  # noqa: F811
) -> None:
    result = run(window(fp=10), reference)
    low = small_window(200_000, frauds_caught=200, frauds_missed=200, flagged=240)
    result = result.with_estimation(
        estimation_of(low, {"1": 200_000}, {}, baselines=BASELINES, alert_threshold=0.1)
    )
    push_gauges(result, pushgateway, "m1", last_trained=None)
    got = pushed(pushgateway, "m1")
    recall = estimates(low)["recall"]
    assert got[("model_estimated_recall", labels())] == pytest.approx(recall.value)
    assert recall.interval is not None
    assert got[("model_estimated_recall_lower", labels())] == pytest.approx(recall.interval[0])
    assert got[("model_estimated_recall_upper", labels())] == pytest.approx(recall.interval[1])
    assert got[("model_estimated_frauds", labels())] == pytest.approx(400)
    assert got[("model_estimated_quality_low", labels())] == 1.0
    assert got[("model_baseline_f1_score", labels())] == 0.8
    assert got[("model_calibration_drift_detected", labels())] == 0.0  # not judged
    # The measured recall gauge never carries an estimate.
    assert got.get(("model_current_recall", labels())) == pytest.approx(50 / 60)


def score(tmp_path: Path, url: str, instances: list[dict[str, float]], **settings: Any) -> int:
    """POST the rows to a service on the store, logging to `url`; every row logged on return."""
    app = create_app(
        Settings(
            model_store=str(tmp_path / "store"),
            database_url=url,
            serving_cache=tmp_path / "cache",
            reload_interval=3600,
            **settings,
        )
    )
    try:
        return app.test_client().post("/predict", json={"instances": instances}).status_code
    finally:
        close_app(app)


def test_a_version_trained_before_calibration_maps_serves_and_is_estimation_unavailable(
    tmp_path: Path,
    pushgateway: str,  # noqa: F811
) -> None:
    df = make_synthetic(rows=20_000, seed=3)
    history, test = time_split(df, 0.8)
    registry = Registry(open_store(str(tmp_path / "store")), "fraud-detector")
    for version in ("1", "2"):
        trained = train_on(history, test, FAST, data=df, source="s", model_name="fraud-detector")
        files, manifest = (
            without_calibration(trained.files, trained.manifest)
            if version == "1"
            else (trained.files, trained.manifest)
        )
        registry.register(files, manifest)
    registry.promote("1", reason="trained before calibration maps")
    registry.stage("2", reason="a challenger with a map")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    rows = time_split(make_synthetic(rows=5_000, seed=8), 0.8)[1]
    instances = [
        {name: float(v) for name, v in zip(FEATURES, r, strict=True)}
        for r in rows[list(FEATURES)].to_numpy()
    ]
    for traffic in (0.0, 0.5):
        # The old version keeps serving, alone and beside a challenger with a map.
        assert score(tmp_path, url, instances, challenger_traffic=traffic) == 200
    result = monitor_json(tmp_path / "store", url, "--pushgateway", f"http://{pushgateway}")
    estimation = result["estimation"]
    v1_rows = int(sum(v["rows"] for k, v in result["variants"].items() if k.endswith("v1")))
    v2_rows = int(sum(v["rows"] for k, v in result["variants"].items() if k.endswith("v2")))
    assert v1_rows > 1000 and v2_rows > 0
    # Version 2's rows go through its own map; version 1's are left out, and the report says so.
    assert estimation["rows"] == v2_rows
    assert estimation["left_out"] == {
        "1": f"{v1_rows:,} rows not estimated: trained before calibration maps "
        "(`fraud retrain` adds one)"
    }
    assert "version 2: platt map" in estimation["window"]["recall"]["basis"]
    # A log of version 1 alone: estimation unavailable, no estimated gauge pushed.
    only_v1 = tmp_path / "only-v1.db"
    assert score(tmp_path, f"sqlite:///{only_v1}", instances) == 200
    result = monitor_json(
        tmp_path / "store",
        f"sqlite:///{only_v1}",
        "--pushgateway",
        f"http://{pushgateway}",
        "--name",
        "fraud-detector",
    )
    assert result["estimation"]["unavailable"] == (
        f"estimation unavailable: version 1: {len(instances):,} rows not estimated: trained "
        "before calibration maps (`fraud retrain` adds one)"
    )
    assert result["estimation"]["window"] == {}
    assert all(f["status"] != "estimated" for f in result["figures"].values())
    assert result["estimation"]["unavailable"] in result["notes"]
    names = {name for name, _ in pushed(pushgateway, "fraud-detector")}
    assert not {n for n in names if n.startswith("model_estimated")}
    assert np.isfinite(result["metrics"]["rows"])


def mature_log(tmp_path: Path, extra_missed_frauds: int) -> tuple[Path, str, str]:
    """A store whose champion has a map, and a log judged as of AS_OF: 20,000 rows in the
    mature window (61 to 66 days earlier) labelled by drawing each from its calibrated
    probability (so calibration holds by construction), plus `extra_missed_frauds` unflagged
    low-score rows turned fraud (so it does not), and 5,000 recent unlabelled rows."""
    df = make_synthetic(rows=20_000, seed=3)
    history, test = time_split(df, 0.8)
    registry = Registry(open_store(str(tmp_path / "store")), "fraud-detector")
    trained = train_on(history, test, FAST, data=df, source="s", model_name="fraud-detector")
    registry.promote(
        str(registry.register(trained.files, trained.manifest)["version"]), reason="champion"
    )
    cal = load_map(trained.files[FILE])
    threshold = float(trained.manifest["threshold"])
    rng = np.random.default_rng(21)
    as_of = datetime(2026, 6, 1)
    rows, labels, learnt = [], {}, {}
    for i, mature in enumerate([True] * 20_000 + [False] * 5_000):
        score = rng.beta(6, 2) if rng.random() < 0.003 else rng.beta(0.3, 30)
        days = rng.uniform(61, 66) if mature else rng.uniform(1, 6)
        at = as_of - timedelta(days=days)
        values = {
            **dict(zip(FEATURES, rng.normal(size=len(FEATURES)).tolist(), strict=True)),
            "transaction_id": f"t{i}",
            "created_at": at,
            "endpoint": "predict",
            "variant": "champion",
            "model_version": "1",
            "probability": float(score),
            "is_fraud": bool(score >= threshold),
            "threshold": threshold,
            "latency_ms": 1.0,
            "explanation": None,
            "event_time": at,
        }
        rows.append(tuple(values[c] for c in LOG_COLUMNS))
        if mature:
            labels[f"t{i}"] = int(rng.random() < cal.apply(np.array([score]))[0])
            learnt[f"t{i}"] = at + timedelta(days=1)
    quiet = [
        t
        for t, (r, label) in enumerate(zip(rows, labels.values(), strict=False))
        if not r[LOG_COLUMNS.index("is_fraud")] and label == 0
    ]
    for t in quiet[:extra_missed_frauds]:
        labels[f"t{t}"] = 1
    url = f"sqlite:///{tmp_path / 'log.db'}"
    sink = open_sink(url)
    sink.write(rows)
    sink.store_labels([LabelRecord(t, label, observed_at=learnt[t]) for t, label in labels.items()])
    sink.close()
    return tmp_path / "store", url, as_of.isoformat()


@pytest.mark.parametrize("extra_missed_frauds", [0, 40])
def test_mature_rows_carry_the_estimate_for_the_same_rows_and_a_gap_flags_calibration_drift(
    tmp_path: Path, extra_missed_frauds: int
) -> None:
    store, url, as_of = mature_log(tmp_path, extra_missed_frauds)
    result = monitor_json(store, url, "--as-of", as_of, "--report", str(tmp_path / "m.md"))
    estimation = result["estimation"]
    recall = result["figures"]["recall"]
    # Measured on the mature rows, with the estimate for those very rows beside it.
    assert recall["status"] == "measured"
    assert recall["estimate"] == estimation["mature"]["recall"]
    assert estimation["gaps"]["recall"] == pytest.approx(
        recall["value"] - estimation["mature"]["recall"]["value"]
    )
    # The recent window has no mature row: what it holds is estimated, never measured.
    assert estimation["rows"] == 5_000
    assert estimation["window"]["recall"]["value"] != recall["value"]
    report = (tmp_path / "m.md").read_text()
    assert "On the mature window's 20,000 rows" in report
    drifted = [r for r in result["reasons"] if r.startswith("calibration drift")]
    if extra_missed_frauds:
        assert estimation["calibration_drift"] is True
        assert drifted and "outside the estimate's 99% interval" in drifted[0]
        assert result["drift_detected"] is True
        assert "Calibration: **drifted**" in report
    else:
        assert estimation["calibration_drift"] is False and not drifted
        assert "Calibration: holds" in report
