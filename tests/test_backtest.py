"""`fraud backtest`: one re-trained model per rolling time fold, each fold and the spread."""

import json

from click.testing import CliRunner

from fraud_detection.backtest import rolling_folds
from fraud_detection.cli import cli


def test_rolling_folds_are_the_last_slices_in_time_order() -> None:
    assert rolling_folds(1000, 3, 0.1) == [(700, 800), (800, 900), (900, 1000)]


def test_backtest_prints_each_fold_with_intervals_and_the_spread() -> None:
    args = ["backtest", "--synthetic", "--synthetic-rows", "40000", "--trees", "8"]
    result = CliRunner().invoke(cli, [*args, "--folds", "3", "--fold-fraction", "0.15"])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:4]] == ["1", "2", "3"]
    assert "[" in rows[1]  # every figure with its interval
    assert any(r.startswith("| pr_auc |") for r in rows)  # the spread over folds


def test_backtest_json_has_folds_that_train_on_every_earlier_row() -> None:
    args = ["backtest", "--synthetic", "--synthetic-rows", "40000", "--trees", "8", "--json"]
    result = CliRunner().invoke(cli, [*args, "--folds", "2", "--fold-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [f["train_rows"] for f in out["folds"]] == [24_000, 32_000]
    assert out["folds"][0]["ci"]["pr_auc"][0] <= out["folds"][0]["metrics"]["pr_auc"]
    assert set(out["spread"]["pr_auc"]) == {"mean", "std", "min", "max"}


def test_folds_that_leave_nothing_to_train_on_exit_2() -> None:
    args = ["backtest", "--synthetic", "--folds", "5", "--fold-fraction", "0.2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
