"""The live service (gunicorn) against its own /openapi.json: schemathesis runs every check on
a bounded number of generated requests per operation, with and without bearer tokens."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from serving_helpers import serve

# A 413 rejects a too-large batch as surely as a 400; schemathesis lists it for neither check.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "404", "405", "413", "415"]
"""


def schemathesis_run(url: str, tmp_path: Path, *options: str) -> dict[str, Any]:
    """`schemathesis run --checks all` against `url`; its JSON report."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"]
    cmd += [f"{url}/openapi.json", "--checks", "all", "--max-examples", "8", "--seed", "1"]
    # One worker: CPython 3.11.7's ast.parse is not thread-safe, and hypothesis calls it.
    cmd += ["--workers", "1", "--generation-database", "none", "--no-color"]
    cmd += ["--report", "json", "--report-json-path", str(report), *options]
    # The hooks module sits next to this file; pytest's own sys.path does not reach a child.
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "SCHEMATHESIS_HOOKS": "schemathesis_hooks"}
    # In tmp_path: schemathesis keeps a crash cache in its working directory.
    result = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    summary: dict[str, Any] = json.loads(report.read_text())
    return summary


def check_report(report: dict[str, Any], operations: int) -> None:
    """Every operation reached, nothing failed or errored, the success path exercised."""
    assert report["failures"] == [] and report["errors"] == []
    assert report["operations"]["tested"] == report["operations"]["selected"] == operations
    assert not any(report["warnings"].values()), report["warnings"]
    for operation in ("POST /predict", "POST /feedback", "POST /v2/models/{name}/infer"):
        assert report["valid_rates"][operation]["fuzzing"]["accepted"] > 0, operation


def test_live_service_honours_its_openapi_document(trained_store: Path, tmp_path: Path) -> None:
    with serve(trained_store, tmp_path, workers=1) as url:
        report = schemathesis_run(url, tmp_path)
    check_report(report, operations=15)


def test_live_service_with_tokens_honours_its_openapi_document(
    trained_store: Path, tmp_path: Path
) -> None:
    # One token for scoring and admin, so that one header reaches every guarded route. Only
    # the guarded routes, and the model metadata whose versions let it reach versioned infer.
    auth = {"FRAUD_API_TOKENS": "s3cret", "FRAUD_ADMIN_TOKEN": "s3cret"}
    guarded = r"^/(predict|feedback|admin/reload|v2/models/.*)$"
    with serve(trained_store, tmp_path, workers=1, **auth) as url:
        options = ["--header", "Authorization: Bearer s3cret", "--include-path-regex", guarded]
        report = schemathesis_run(url, tmp_path, *options)
    check_report(report, operations=9)
