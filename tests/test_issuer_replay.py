"""Eight simulated weeks of an issuer's labels, replayed through the live service (gunicorn)
into SQLite and PostgreSQL in compressed time, then judged by `fraud monitor` as of two
moments: the day after the last transaction, when only the reviews are in (alert precision
measured, recall not), and past the label horizon, when the measured recall is the truth the
dataset holds."""

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraud_detection.data import load_dataset
from fraud_detection.prediction_log import open_engine, read_window
from fraud_detection.simulate import new_data, spread_rows
from serving_helpers import serve

pytestmark = pytest.mark.long  # an end-to-end run: see pyproject.toml

START = datetime(2026, 3, 1)
WEEKS = 8
ROWS = 12_000
"""Rows of the real new data replayed (about 16 frauds), spread over the eight weeks."""
HORIZON_DAYS = 60


def fraud(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "fraud_detection", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"fraud {args[0]}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def store(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A champion trained on the real data's history."""
    store = tmp_path_factory.mktemp("issuer") / "store"
    fraud("train", "--data", str(real_data), "--store", str(store), "--trees", "20")
    return store


def monitor(store: Path, database: str, as_of: datetime, lookback_days: float) -> Any:
    report = fraud(
        "monitor", "--store", str(store), "--database-url", database, "--json",
        "--as-of", as_of.isoformat(), "--lookback-days", str(lookback_days),
    )  # fmt: skip
    return json.loads(report.stdout)


def test_eight_weeks_of_issuer_labels_are_judged_as_an_issuer_can(
    store: Path, real_data: Path, database_url: str, tmp_path: Path
) -> None:
    with serve(store, tmp_path, DATABASE_URL=database_url) as url:
        replayed = json.loads(
            fraud(
                "simulate", "--url", url, "--data", str(real_data), "--limit", str(ROWS),
                "--labels", "issuer", "--start", START.isoformat(), "--days", str(WEEKS * 7),
                "--speed", "1000000", "--batch-size", "50", "--chargeback-rate", "1",
                "--transaction-prefix", "wk", "--json",
            ).stdout
        )  # fmt: skip
    assert replayed["ok"] and replayed["scored"] == ROWS, replayed
    issuer = replayed["issuer"]
    assert issuer["reviews"] == replayed["flagged"] and issuer["alerts_unreviewed"] == 0

    # The truth: the service's decisions on the replayed rows against the dataset's classes.
    rows = spread_rows(new_data(load_dataset(str(real_data))), ROWS)
    log = read_window(open_engine(database_url), START - timedelta(days=1))
    flagged = log.set_index("transaction_id").is_fraud
    frauds = [f"wk-{i}" for i in rows.index[rows["Class"] == 1]]
    truth = float(np.mean([flagged[tid] for tid in frauds]))
    assert len(frauds) >= 10 and 0 < truth < 1

    # The day after the last transaction: every alert reviewed, few chargebacks in yet.
    end = START + timedelta(days=WEEKS * 7)
    day_after = monitor(store, database_url, end + timedelta(days=1), WEEKS * 7 + 1)
    figures = day_after["figures"]
    assert figures["alert_precision"]["status"] == "measured"
    assert figures["review_coverage"]["value"] == 1.0
    for name in ("recall", "f1", "fpr", "fnr", "precision"):
        assert figures[name]["status"] != "measured", (name, figures[name])
        assert day_after["metrics"][name] is None, name
    assert "no mature rows" in figures["recall"]["reason"]
    assert any("F1 and FNR not judged" in note for note in day_after["notes"])

    # Past the horizon every replayed row is mature: labelled, or presumed legitimate.
    matured = monitor(store, database_url, end + timedelta(days=HORIZON_DAYS + 1), WEEKS * 7 + 1)
    recall = matured["figures"]["recall"]
    assert recall["status"] == "measured"
    low, high = recall["interval"]
    assert low <= truth <= high and recall["value"] == pytest.approx(truth, abs=0.07)
    mature = matured["mature_window"]
    assert mature["rows"] == ROWS and mature["presumed_legitimate"] > 0.99 * ROWS - 100
    assert mature["reviewed"] == replayed["flagged"]
    assert mature["chargebacks"] == issuer["chargebacks"]
    cohorts = pd.DataFrame(matured["cohorts"])
    assert cohorts["rows"].sum() >= ROWS and (cohorts["label_completeness"] == 1.0).all()
