"""`fraud monitor` on a prediction log filled through the service: report, JSON, exit codes."""

import json
from pathlib import Path

from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.prediction_log import open_engine
from fraud_detection.schema import FEATURES


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["monitor", *args])
    return result.exit_code, result.stdout, result.stderr


def test_monitor_reports_live_metrics_and_psi(logged: tuple[Path, str], tmp_path: Path) -> None:
    store, url = logged
    code, stdout, _ = run(
        "--store", str(store), "--database-url", url, "--json", "--report", str(tmp_path / "m.md")
    )
    assert code == 0
    result = json.loads(stdout)
    assert result["metrics"]["rows"] == 2000 and result["metrics"]["labelled"] == 2000
    assert set(result["feature_psi"]) == set(FEATURES) - {"Time"}
    assert "Time" in result["skipped_features"]
    assert result["drift_detected"] is False, result["reasons"]
    assert "PSI" in (tmp_path / "m.md").read_text()


def test_shifted_traffic_is_flagged_by_psi(logged: tuple[Path, str]) -> None:
    store, url = logged
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql('UPDATE predictions SET "V14" = "V14" + 2')
    try:
        code, stdout, _ = run("--store", str(store), "--database-url", url, "--json")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql('UPDATE predictions SET "V14" = "V14" - 2')
    assert code == 0, "drift is a finding, not a failure"
    result = json.loads(stdout)
    assert result["drift_detected"] is True
    assert [r for r in result["reasons"] if "V14" in r]
    assert not [r for r in result["reasons"] if "V13" in r or "Amount" in r]


def test_an_unreachable_pushgateway_exits_1_after_the_report(logged: tuple[Path, str]) -> None:
    store, url = logged
    code, stdout, stderr = run(
        "--store", str(store), "--database-url", url, "--pushgateway", "http://127.0.0.1:1"
    )
    assert code == 1
    assert "PSI" in stdout and "could not push" in stderr


def test_an_unreachable_database_exits_1(logged: tuple[Path, str]) -> None:
    store, _ = logged
    code, _, stderr = run(
        "--store", str(store), "--database-url", "postgresql://nobody@127.0.0.1:1/none"
    )
    assert code == 1 and "prediction log unavailable" in stderr


def test_the_markdown_report_is_never_wrapped_to_the_terminal(logged: tuple[Path, str]) -> None:
    store, url = logged
    code, stdout, _ = run("--store", str(store), "--database-url", url)
    assert code == 0
    rows = [line for line in stdout.splitlines() if line.startswith("|")]
    assert rows and all(line.endswith("|") for line in rows), stdout
    assert any(len(line) > 80 for line in stdout.splitlines()), "a long line to wrap"


def test_an_empty_prediction_log_is_reported_not_an_error(
    logged: tuple[Path, str], tmp_path: Path
) -> None:
    store, _ = logged
    code, stdout, stderr = run(
        "--store", str(store), "--database-url", f"sqlite:///{tmp_path / 'new.db'}", "--json"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["metrics"]["rows"] == 0


def test_ab_variants_are_reported_side_by_side(logged: tuple[Path, str]) -> None:
    store, url = logged
    engine = open_engine(url)
    challenger = (
        "UPDATE predictions SET variant = 'challenger', model_version = '2' WHERE id % 5 = 0"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(challenger)
    try:
        code, stdout, _ = run("--store", str(store), "--database-url", url, "--json")
        _, report, _ = run("--store", str(store), "--database-url", url)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE predictions SET variant = 'champion', model_version = '1'")
    assert code == 0
    variants = json.loads(stdout)["variants"]
    assert {k: v["rows"] for k, v in variants.items()} == {
        "challenger v2": 400,
        "champion v1": 1600,
    }
    assert "## By variant" in report and "| challenger v2 | 400 |" in report
