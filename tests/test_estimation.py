"""Performance estimation from calibrated scores: the expected confusion counts by hand, the
sums the database computes against the rows in memory, and intervals that cover as stated."""

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from test_monitor_window import logged_rows

from fraud_detection.calibration import CalibrationMap, load_map
from fraud_detection.log_record import LOG_COLUMNS, SHADOW, utc_now
from fraud_detection.monitoring.estimation import (
    draw_outcomes,
    estimates,
    expect,
    score_sums_of_frame,
)
from fraud_detection.sql_sink import open_sink


def isotonic(x: list[float], y: list[float]) -> CalibrationMap:
    body = {"format": 1, "method": "isotonic", "fitted": {}, "x": x, "y": y}
    return load_map(json.dumps(body).encode())


# Version 1: p rises linearly from 0 at 0.1 to 0.2 at 0.5, then to 1 at 0.9.
# Version 2: p = score / 2.
MAPS = {"1": isotonic([0.1, 0.5, 0.9], [0.0, 0.2, 1.0]), "2": isotonic([0.0, 1.0], [0.0, 0.5])}


def frame(rows: list[tuple[str, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["model_version", "probability", "is_fraud"])


SMALL = frame(
    [
        # version, score, flagged: calibrated p by hand
        ("1", 0.0, False),  # below the first knot: 0.0
        ("1", 0.3, False),  # halfway from 0.1 to 0.5: 0.1
        ("1", 0.4, False),  # three quarters: 0.15
        ("1", 0.5, True),  # on a knot: 0.2
        ("1", 0.7, True),  # halfway from 0.5 to 0.9: 0.6
        ("1", 0.95, True),  # past the last knot: 1.0
        ("2", 0.6, True),  # 0.3
        ("2", 0.2, False),  # 0.1
        ("3", 0.9, True),  # version 3 has no map: left out
    ]
)


def test_the_estimate_equals_a_hand_computation_on_a_small_frame() -> None:
    knots = {version: cal.x for version, cal in MAPS.items()}
    expected = expect(score_sums_of_frame(SMALL, knots), MAPS)
    tp, fp = 0.2 + 0.6 + 1.0 + 0.3, (1 - 0.2) + (1 - 0.6) + (1 - 1.0) + (1 - 0.3)
    fn, tn = 0.0 + 0.1 + 0.15 + 0.1, 1.0 + 0.9 + 0.85 + 0.9
    assert (expected.tp, expected.fp, expected.fn, expected.tn) == pytest.approx((tp, fp, fn, tn))
    assert expected.rows_by_version == {"1": 6, "2": 2}
    assert expected.flagged == 4
    figures = estimates(expected)
    assert figures["precision"].value == pytest.approx(tp / 4)
    assert figures["recall"].value == pytest.approx(tp / (tp + fn))
    assert figures["f1"].value == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert figures["fpr"].value == pytest.approx(fp / (fp + tn))
    assert figures["fnr"].value == pytest.approx(fn / (fn + tp))
    assert figures["expected_frauds"].value == pytest.approx(tp + fn)
    assert "8 rows (version 1: isotonic map, version 2: isotonic map)" in figures["f1"].basis
    assert "not of the map's own error" in figures["f1"].basis


def test_rows_of_versions_without_a_map_are_not_estimated() -> None:
    only_three = SMALL[SMALL["model_version"] == "3"]
    knots = {version: cal.x for version, cal in MAPS.items()}
    assert estimates(expect(score_sums_of_frame(only_three, knots), MAPS)) == {}


def test_each_row_outcome_is_drawn_from_its_calibrated_probability() -> None:
    # One flagged group of 1000 rows at p = 0.3: the frauds caught are Binomial(1000, 0.3).
    knots = {"2": MAPS["2"].x}
    rows = frame([("2", 0.6, True)] * 1000 + [("2", 0.02, False)] * 5000)
    drawn = draw_outcomes(expect(score_sums_of_frame(rows, knots), MAPS), resamples=20_000)
    assert np.mean(drawn["precision"]) == pytest.approx(0.3, abs=0.002)
    assert np.std(drawn["precision"]) == pytest.approx(np.sqrt(0.3 * 0.7 / 1000), rel=0.03)
    assert np.mean(drawn["expected_frauds"]) == pytest.approx(300 + 50, rel=0.01)


def test_the_interval_covers_the_realised_figure_as_often_as_it_says() -> None:
    rng = np.random.default_rng(7)
    scores = np.r_[rng.beta(0.3, 30, 20_000), rng.beta(5, 2, 60)]
    x = [0.0, 0.05, 0.2, 0.5, 0.8, 1.0]
    cal = isotonic(x, [0.0005, 0.002, 0.05, 0.4, 0.8, 0.95])
    window = frame([("7", float(s), bool(s >= 0.5)) for s in scores])
    figures = estimates(expect(score_sums_of_frame(window, {"7": cal.x}), {"7": cal}))
    p = cal.apply(scores)
    flagged = scores >= 0.5
    covered = {"recall": 0, "f1": 0, "precision": 0}
    trials = 400
    for _ in range(trials):
        fraud = rng.random(len(p)) < p
        tp, fp = np.sum(fraud & flagged), np.sum(~fraud & flagged)
        fn = np.sum(fraud & ~flagged)
        realised = {"precision": tp / (tp + fp), "recall": tp / (tp + fn),
                    "f1": 2 * tp / (2 * tp + fp + fn)}  # fmt: skip
        for name, value in realised.items():
            low, high = figures[name].interval or (np.nan, np.nan)
            covered[name] += low <= value <= high
    for name, hits in covered.items():
        assert 0.92 <= hits / trials <= 0.99, (name, hits)


@pytest.mark.parametrize("segments", ["isotonic knots", "a fine grid"])
def test_sums_in_sql_equal_the_rows_in_memory(database_url: str, segments: str) -> None:
    rows = logged_rows(3000, seed=4)
    sink = open_sink(database_url)
    sink.write(rows)
    # Knots on values the rows hold (0.01, 0.5), so a score on a knot is placed alike.
    knots = {
        "4": [0.0, 0.01, 0.02, 0.05, 0.5] if segments == "isotonic knots" else
        list(np.linspace(0, 1, 301)),
        "3": [0.01, 0.5],
        "5": [0.01, 0.5],  # shadow rows are never estimated
    }  # fmt: skip
    start, end = utc_now() - timedelta(hours=30), utc_now() - timedelta(hours=2)
    in_sql = sorted(sink.score_sums(start, end, knots))
    sink.close()
    logged = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    window = logged[
        (logged["created_at"] >= start)
        & (logged["created_at"] <= end)
        & (logged["variant"] != SHADOW)
    ]
    in_memory = sorted(score_sums_of_frame(window, knots))
    assert [s[:4] for s in in_sql] == [s[:4] for s in in_memory]
    assert [s.score_sum for s in in_sql] == pytest.approx([s.score_sum for s in in_memory])
    assert {s.version for s in in_sql} == {"3", "4"}
    assert sum(s.rows for s in in_sql) == len(window)


def test_an_empty_or_missing_log_sums_nothing(tmp_path: pytest.TempPathFactory) -> None:
    sink = open_sink(f"sqlite:///{tmp_path}/none.db")
    assert sink.score_sums(utc_now() - timedelta(days=1), utc_now(), {"1": [0.5]}) == []
    assert sink.score_sums(utc_now() - timedelta(days=1), utc_now(), {}) == []
    sink.close()
