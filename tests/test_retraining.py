"""Champion/challenger retraining: the promotion rule and `fraud retrain` end to end."""

import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic, time_split
from fraud_detection.errors import DataValidationError
from fraud_detection.log_record import LabelRecord
from fraud_detection.prediction_log import (
    LOG_COLUMNS,
    ensure_schema,
    insert_predictions,
    open_engine,
    store_labels,
    utc_now,
)
from fraud_detection.registry import Registry
from fraud_detection.retraining import (
    MAX_HOLDOUT_FRACTION,
    NO_PRODUCTION,
    PromotionRule,
    decide,
    mature_production_rows,
    production_note,
    sample_production,
    score_on_holdout,
    size_holdout,
    with_production_rows,
)
from fraud_detection.schema import COLUMNS, FEATURES, LABEL
from fraud_detection.sql_sink import open_sink
from fraud_detection.store import open_store
from fraud_detection.training import DEFAULT_PARAMS, TrainingOptions, train

CHAMPION = {"f1": 0.80, "precision": 0.90}


@pytest.mark.parametrize(
    ("challenger", "rule", "action"),
    [
        ({"f1": 0.83, "precision": 0.90}, PromotionRule(), "promote"),
        ({"f1": 0.81, "precision": 0.95}, PromotionRule(), "stage"),
        ({"f1": 0.70, "precision": 0.95}, PromotionRule(), "stage"),
        ({"f1": 0.90, "precision": 0.80}, PromotionRule(), "stage"),
        ({"f1": 0.70, "precision": 0.50}, PromotionRule(force=True), "promote"),
    ],
    ids=["better", "marginal", "worse", "precision-drop", "forced"],
)
def test_promotion_rule(challenger: dict, rule: PromotionRule, action: str) -> None:
    assert decide(CHAMPION, challenger, rule).action == action


def test_first_model_becomes_champion() -> None:
    decision = decide(None, {"f1": 0.1, "precision": 0.1}, PromotionRule())
    assert decision.action == "promote" and "first" in decision.reason


def test_production_rows_join_once_earlier_than_the_holdout_and_are_validated_again() -> None:
    df = make_synthetic(rows=2000, seed=5)
    fresh = make_synthetic(rows=300, seed=6)
    fresh["Time"] *= 0.5  # inside the dataset's history
    late = make_synthetic(rows=50, seed=7)
    late["Time"] += 200_000  # after the holdout starts: never trained on
    logged = pd.concat([fresh, late, df.head(100)], ignore_index=True)
    production = sample_production([logged], max_legit=10**6)
    joined = with_production_rows(df, production, min_samples=1000)
    assert joined.labelled == 450 and joined.rows == 300
    pd.testing.assert_frame_equal(
        joined.sample.rows.sort_values("Time", ignore_index=True),
        fresh.loc[:, list(COLUMNS)].sort_values("Time", ignore_index=True),
    )
    assert with_production_rows(df, sample_production([df.head(100)], 10**6)).rows == 0
    assert with_production_rows(df, NO_PRODUCTION) == NO_PRODUCTION
    fresh.loc[0, "Amount"] = -5.0
    with pytest.raises(DataValidationError, match="Amount"):
        with_production_rows(df, sample_production([fresh], 10**6), min_samples=1000)


def test_sampling_keeps_every_fraud_and_weights_the_legitimate_by_their_sampling_rate() -> None:
    logged = make_synthetic(rows=5000, fraud_rate=0.01, seed=8).loc[:, list(COLUMNS)]
    frauds, legit = int(logged.Class.sum()), int((logged.Class == 0).sum())
    whole = sample_production([logged], max_legit=500, seed=3)
    chunked = sample_production(
        [logged.iloc[i : i + 333] for i in range(0, len(logged), 333)], max_legit=500, seed=3
    )
    pd.testing.assert_frame_equal(chunked.sample.rows, whole.sample.rows)
    rows, weights = whole.sample.rows, whole.sample.weights
    assert (whole.labelled, whole.legit, whole.legit_kept) == (5000, legit, 500)
    assert int(rows.Class.sum()) == frauds and len(rows) == frauds + 500
    assert set(weights[rows.Class.to_numpy() == 1]) == {1.0}
    assert weights[rows.Class.to_numpy() == 0].sum() == pytest.approx(legit)
    other_seed = sample_production([logged], max_legit=500, seed=4).sample.rows
    assert not other_seed.equals(rows)
    everything = sample_production([logged], max_legit=legit)
    assert len(everything.sample.rows) == 5000 and set(everything.sample.weights) == {1.0}


def test_champion_and_challenger_are_scored_on_the_same_rows_passed_in(tmp_path: Path) -> None:
    df = make_synthetic(rows=6000, fraud_rate=0.02, seed=3)
    options = TrainingOptions(params={**DEFAULT_PARAMS, "n_estimators": 5}, n_jobs=1)
    trained = train(df, options, source="synthetic", model_name="fraud-detector")
    reg = registry(tmp_path / "store")
    version = str(reg.register(trained.files, trained.manifest)["version"])
    reg.promote(version, reason="the same model as champion")
    # Rows from the middle of the data, not the test slice `train` reported on: the same
    # model scored as champion and as challenger must then agree exactly.
    holdout = time_split(df, 0.5)[1].iloc[:1500]
    scored = score_on_holdout(trained, reg, holdout)
    assert scored.champion is not None and scored.champion_scores is not None
    assert scored.challenger["rows"] == scored.champion["rows"] == len(holdout)
    assert scored.challenger != trained.manifest["metrics"]["test"]
    assert scored.champion == {**scored.challenger, "version": version}
    np.testing.assert_array_equal(scored.champion_scores, scored.challenger_scores)
    np.testing.assert_array_equal(scored.labels, holdout["Class"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("retrain") / "cc.csv"
    make_synthetic(rows=30_000, seed=11).to_csv(path, index=False)
    return path


def retrain(data: Path, store: Path, *extra: str) -> Result:
    args = ["retrain", "--data", str(data), "--store", str(store), *extra]
    return CliRunner().invoke(cli, args)


def registry(store: Path) -> Registry:
    return Registry(open_store(str(store)), "fraud-detector")


def test_retrain_twice_on_the_same_data_promotes_once(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = retrain(data, store)
    assert first.exit_code == 0, first.output
    assert "Decision: promote" in first.stdout
    second = retrain(data, store, "--report", str(tmp_path / "report.md"))
    assert second.exit_code == 0, second.output
    assert "Decision: stage" in second.stdout
    reg = registry(store)
    assert reg.aliases() == {"champion": "1", "challenger": "2"}
    staged = [e for e in reg.events() if e["action"] == "staged"][-1]
    assert staged["details"]["champion"]["version"] == "1"
    assert {"f1", "precision"} <= staged["details"]["challenger"].keys()
    holdout_rows = staged["details"]["holdout_rows"]
    assert staged["details"]["champion"]["rows"] == holdout_rows
    assert staged["details"]["challenger"]["rows"] == holdout_rows
    report = (tmp_path / "report.md").read_text()
    assert "| f1 |" in report and "Decision: stage" in report
    stored = reg.read_file("2", "retrain_report.md").decode()
    assert stored.replace("retrain_pr_curves.png", "report_pr_curves.png") == report
    # The paired gain of a same-seed retrain is nil, and the report says what it rested on.
    assert "## Paired bootstrap: challenger minus champion (pr_auc)" in report
    assert f"rests on **{staged['details']['holdout_frauds']} frauds**" in report
    assert staged["details"]["paired_gain"]["gain"] == 0


def _labelled(frauds_at: list[int], rows: int = 1000) -> pd.DataFrame:
    df = make_synthetic(rows=rows, seed=3)
    df["Time"] = np.arange(rows, dtype=float)
    df["Class"] = 0
    df.loc[frauds_at, "Class"] = 1
    return df


def test_the_holdout_grows_until_it_holds_the_frauds_wanted() -> None:
    # Frauds at rows 990, 950, 850 and 750: the newest 10% hold two of them.
    df = _labelled([990, 950, 850, 750]).sample(frac=1, random_state=0)  # any row order
    assert size_holdout(df, 0.1, 2).share == 0.1
    assert size_holdout(df, 0.1, 3).share == pytest.approx(0.15)  # rows 850..999
    assert size_holdout(df, 0.1, 4).share == pytest.approx(0.25)
    assert size_holdout(df, 0.1, 5).share == MAX_HOLDOUT_FRACTION  # never more
    assert size_holdout(df, 0.1, 0).share == 0.1
    history, holdout = time_split(df, 1 - size_holdout(df, 0.1, 3).share)
    assert int(holdout["Class"].sum()) == 3 and len(holdout) == 150
    assert history["Time"].max() < holdout["Time"].min()


def test_retrain_sizes_its_holdout_by_fraud_count_and_says_so(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert retrain(data, store, "--holdout-frauds", "0").exit_code == 0
    frauds = int(pd.read_csv(data).sort_values("Time")["Class"].tail(3000).sum())
    wanted = frauds + 3  # more than the last 10% holds
    result = retrain(data, store, "--holdout-frauds", str(wanted), "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"grown from 10% to hold {wanted} frauds" in result.stdout
    assert f"rests on **{wanted} frauds**" in result.stdout
    fixed = retrain(data, store, "--holdout-frauds", "0", "--dry-run")
    assert f"the most recent 10% of rows ({frauds} frauds; --holdout-frauds 0)" in fixed.stdout


def test_rule_only_decides_without_the_bootstrap(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert retrain(data, store).exit_code == 0
    result = retrain(data, store, "--rule-only", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "SPEC rule alone: --rule-only" in result.stdout
    assert "Paired bootstrap" not in result.stdout


def test_auto_keeps_the_family_best_on_validation_and_says_why(data: Path, tmp_path: Path) -> None:
    result = retrain(data, tmp_path / "store", "--algorithm", "auto")
    assert result.exit_code == 0, result.output
    assert "kept by --algorithm auto: highest validation PR-AUC on history" in result.stdout
    for family in ("rf", "xgboost", "lightgbm"):
        assert f"{family} 0." in result.stdout or f"{family} 1." in result.stdout
    manifest = registry(tmp_path / "store").manifest("champion")
    assert f"family `{manifest['family']}` kept by --algorithm auto" in result.stdout


def test_every_pr_curves_link_points_at_a_file_beside_its_report(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    printed = retrain(data, store)
    assert printed.exit_code == 0, printed.output
    assert "![PR curves]" not in printed.stdout  # stdout has no folder beside it
    (tmp_path / "reports").mkdir()
    saved = retrain(data, store, "--report", "reports/weekly.md")
    assert saved.exit_code == 0, saved.output
    assert "![PR curves](weekly_pr_curves.png)" in (tmp_path / "reports/weekly.md").read_text()
    assert (tmp_path / "reports/weekly_pr_curves.png").read_bytes().startswith(b"\x89PNG")
    stored = registry(store).read_file("2", "retrain_report.md").decode()
    assert "![PR curves](retrain_pr_curves.png)" in stored
    assert registry(store).read_file("2", "retrain_pr_curves.png").startswith(b"\x89PNG")
    dry = retrain(data, store, "--dry-run", "--report", "reports/dry.md")
    assert dry.exit_code == 0, dry.output
    assert "![PR curves]" not in (tmp_path / "reports/dry.md").read_text()
    assert not (tmp_path / "reports/dry_pr_curves.png").exists()


def test_force_promotion_promotes(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert retrain(data, store).exit_code == 0
    assert retrain(data, store, "--force-promotion").exit_code == 0
    assert registry(store).aliases()["champion"] == "2"


def test_dry_run_writes_nothing(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = retrain(data, store, "--dry-run")
    assert result.exit_code == 0 and "nothing written" in result.stdout
    assert registry(store).list_versions() == []


def test_bad_data_promotes_nothing_and_exits_2(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert retrain(data, store).exit_code == 0
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(data)
    frame.loc[10, "Amount"] = -1
    frame.to_csv(bad, index=False)
    result = retrain(bad, store, "--force-promotion")
    assert result.exit_code == 2
    assert "Amount" in result.stderr
    assert [m["version"] for m in registry(store).list_versions()] == ["1"]


def test_crash_in_the_middle_leaves_the_champion_untouched(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    assert retrain(data, store).exit_code == 0

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed while scoring the champion")

    monkeypatch.setattr("fraud_detection.retraining.score_champion", crash)
    result = retrain(data, store, "--force-promotion")
    assert result.exit_code == 1
    reg = registry(store)
    assert reg.aliases() == {"champion": "1"}
    assert [m["version"] for m in reg.list_versions()] == ["1"]


def test_labelled_production_rows_join_the_training_data(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    engine = open_engine(url)
    ensure_schema(engine)
    fresh = make_synthetic(rows=400, seed=99)
    fresh["Time"] *= 0.5  # earlier than the holdout
    late = make_synthetic(rows=30, seed=98)
    late["Time"] += 200_000  # scored after the holdout starts: never trained on
    replayed = pd.read_csv(data).tail(100)  # rows the dataset already holds
    logged = pd.concat([fresh, late, replayed], ignore_index=True)
    columns = {"created_at": utc_now(), "endpoint": "predict", "variant": "champion",
               "model_version": "1", "probability": 0.1, "is_fraud": False, "threshold": 0.5,
               "latency_ms": 1.0, "explanation": None, "event_time": None}  # fmt: skip
    # The labelled rows happened 70 days ago, past the label horizon; the first 50 fresh rows
    # just now, and unlabelled: their class is not known yet, so they cannot train.
    long_ago = utc_now() - timedelta(days=70)
    insert_predictions(
        engine,
        [
            tuple({**columns, **row[list(FEATURES)].to_dict(), "transaction_id": f"p{i}",
                   "event_time": long_ago if i >= 50 else None}[c]
                  for c in LOG_COLUMNS)
            for i, (_, row) in enumerate(logged.iterrows())
        ],
    )  # fmt: skip
    # Labels for all but 50 of the fresh rows: unlabelled rows cannot train.
    store_labels(engine, {f"p{i}": int(logged.Class[i]) for i in range(len(logged)) if i >= 50})

    store = tmp_path / "store"
    result = retrain(data, store, "--report", str(tmp_path / "r.md"))
    assert result.exit_code == 0, result.output
    assert "Added 350 labelled production rows from the prediction log (of 480 labelled)" in (
        result.stderr
    )
    manifest = registry(store).manifest("1")
    assert manifest["data"]["rows"] == 30_000 + 350
    assert manifest["retraining"]["production_rows"] == 350
    assert "plus 350 labelled production rows" in (tmp_path / "r.md").read_text()

    legit = int((logged.Class[50:] == 0).sum())
    capped = retrain(data, tmp_path / "capped", "--max-production-legit", "100", "--dry-run")
    assert capped.exit_code == 0, capped.output
    note = (
        r"plus (\d+) labelled production rows .*kept \d+ of 480: every fraud, "
        r"(\d+) legitimate rows sampled from \d+ and weighted (\d+\.\d+)x"
    )
    kept = re.search(note, capped.stdout)
    assert kept, capped.stdout
    assert int(kept.group(2)) < 100
    assert float(kept.group(3)) == pytest.approx(legit / 100, abs=0.01)

    ignored = retrain(data, tmp_path / "other", "--lookback-days", "0")
    assert registry(tmp_path / "other").manifest("1")["data"]["rows"] == 30_000
    assert "production rows" not in ignored.stderr


def test_only_mature_rows_train_with_unlabelled_ones_presumed_legitimate(
    database_url: str,
) -> None:
    """Reviewed alerts and chargebacks past the horizon train, unlabelled rows past it as
    legitimate; nothing younger trains, not even its reviewed alerts."""
    sink = open_sink(database_url)
    now = utc_now()
    old, young = now - timedelta(days=70), now - timedelta(days=3)
    rows = {"alert": old, "missed": old, "false-alarm": old, "quiet": old, "quiet-2": old,
            "new-alert": young, "new-quiet": young,
            "too-old": now - timedelta(days=100)}  # fmt: skip
    base = {"created_at": now, "endpoint": "predict", "variant": "champion",
            "model_version": "1", "probability": 0.1, "is_fraud": False, "threshold": 0.5,
            "latency_ms": 1.0, "explanation": None, **dict.fromkeys(FEATURES, 0.5)}  # fmt: skip
    sink.write([tuple({**base, "transaction_id": tid, "event_time": at}[c] for c in LOG_COLUMNS)
                for tid, at in rows.items()])  # fmt: skip
    sink.store_labels([
        LabelRecord("alert", 1, "review"), LabelRecord("false-alarm", 0, "review"),
        LabelRecord("missed", 1, "chargeback"), LabelRecord("new-alert", 1, "review"),
    ])  # fmt: skip
    try:
        production = mature_production_rows(sink, lookback_days=30, maturity_days=60)
    finally:
        sink.close()
    assert (production.labelled, production.presumed, production.mature) == (3, 2, 5)
    assert (production.reviewed, production.chargebacks, production.legit) == (2, 1, 3)
    assert sorted(production.sample.rows[LABEL]) == [0, 0, 0, 1, 1]
    note = production_note(production)
    assert "mature rows only (older than the 60-day label horizon): 5, of them 2 reviewed, " in (
        note
    )
    assert "1 charged back, 0 labelled otherwise and 2 presumed legitimate" in note


def test_an_unreachable_prediction_log_only_warns(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = retrain(data, tmp_path / "store")
    assert result.exit_code == 0, result.output
    assert "warning: no production rows" in result.stderr
