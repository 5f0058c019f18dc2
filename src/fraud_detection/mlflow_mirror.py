"""A mirror of the model store in MLflow, for teams that live there; the store stays the truth.

Every store version becomes an MLflow run (parameters, metrics with their row counts, the
threshold, manifest, ONNX model, report and plots, tags for the data, code, algorithm and
decision) and a version of the registered model of the same name, tagged with its store
version; the `champion` and `challenger` aliases follow the store's. `sync` is idempotent: it
mirrors what is missing, so after an MLflow outage the next run, or `fraud models sync-mlflow`,
catches up. A failure never fails the caller: it comes back in the report, to be shown.
"""

import contextlib
import json
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .registry import CHALLENGER, CHAMPION, Registry

STORE_VERSION_TAG = "fraud.store_version"
ALIASES = (CHAMPION, CHALLENGER)
ARTIFACTS = {"model.onnx": "model", "manifest.json": "model", "reference.json": "model"}
"""Where each file goes in the run's artifacts; the report and its plots go to `report/`, and
model.joblib (a pickle, for offline use) stays in the store."""


@dataclass
class MirrorReport:
    """What one sync mirrored, and what it could not (with why)."""

    mirrored: list[str] = field(default_factory=list)
    aliases: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    not_mirrored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the console."""
        if self.error:
            missing = ", ".join(self.not_mirrored) or "nothing new"
            return (
                f"MLflow mirror failed ({self.error}); not mirrored: {missing}. "
                "The store is unaffected; run `fraud models sync-mlflow` to catch up."
            )
        versions = ", ".join(self.mirrored) or "none new"
        aliases = ", ".join(f"{a}={v}" for a, v in self.aliases.items() if v) or "none"
        return f"MLflow mirror: versions {versions}; aliases {aliases}."


def _flat_numbers(values: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, float]]:
    """Numeric leaves of nested metrics as ("test.pr_auc", value), counts included."""
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            yield from _flat_numbers(value, name)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield name, float(value)


def _decision(events: list[dict[str, Any]], version: str) -> tuple[str, str]:
    """The store's last decision about a version (promoted, staged, ...) and its reason."""
    mine = [e for e in events if str(e.get("version")) == version and e["action"] != "registered"]
    if not mine:
        return "registered", ""
    return mine[-1]["action"], str(mine[-1].get("reason") or "")


def _check_reachable(tracking_uri: str) -> None:
    """Fail fast on an HTTP server that does not answer, instead of MLflow's long retries."""
    if tracking_uri.startswith(("http://", "https://")):
        # The operator's own MLflow URL, checked to be http(s) just above.
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=5):  # nosec B310
            pass


def _log_version(client: Any, registry: Registry, version: str, decision: tuple[str, str]) -> None:
    """One run and one registered version for a store version."""
    from mlflow.entities import Metric, Param

    manifest = registry.manifest(version)
    experiment = client.get_experiment_by_name(registry.name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(registry.name)
    )
    created = int(datetime.fromisoformat(manifest["created_at"]).timestamp() * 1000)
    data = manifest.get("data", {})
    tags = {
        STORE_VERSION_TAG: version,
        "fraud.data_sha256": str(data.get("sha256", "")),
        "fraud.data_source": str(data.get("source", "")),
        "fraud.synthetic": str(bool(data.get("synthetic", False))).lower(),
        "fraud.code_revision": str(manifest.get("code_revision", "")),
        "fraud.algorithm": str(manifest.get("algorithm", "")),
        "fraud.decision": decision[0],
        "fraud.decision_reason": decision[1],
    }
    run = client.create_run(
        experiment_id, start_time=created, tags=tags, run_name=f"{registry.name} v{version}"
    )
    run_id = run.info.run_id
    params = {
        **{f"model.{k}": v for k, v in manifest.get("params", {}).items()},
        "threshold": manifest["threshold"],
        "threshold_rule": manifest.get("threshold_rule", ""),
        "algorithm": manifest.get("algorithm", ""),
        "data.rows": data.get("rows", ""),
        "data.frauds": data.get("frauds", ""),
    }
    metrics = [("threshold", float(manifest["threshold"]))]
    metrics += [
        m
        for slice_name, values in manifest.get("metrics", {}).items()
        for m in _flat_numbers(values, slice_name)
    ]
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, created, 0) for k, v in metrics],
        params=[Param(k, str(v)) for k, v in params.items()],
    )
    with tempfile.TemporaryDirectory(prefix="fraud-mlflow-") as tmp:
        for name in manifest["files"]:
            if name == "model.joblib":
                continue
            path = Path(tmp) / name
            path.write_bytes(registry.read_file(version, name))
            client.log_artifact(run_id, str(path), ARTIFACTS.get(name, "report"))
        (Path(tmp) / "manifest.json").write_text(json.dumps(manifest, indent=2))
        client.log_artifact(run_id, str(Path(tmp) / "manifest.json"), "model")
    client.set_terminated(run_id, "FINISHED")
    client.create_model_version(
        registry.name, f"runs:/{run_id}/model", run_id=run_id, tags={STORE_VERSION_TAG: version}
    )


def sync(registry: Registry, tracking_uri: str) -> MirrorReport:
    """Mirror every store version MLflow lacks, then the aliases; never raises."""
    report = MirrorReport()
    try:
        # Until MLflow says what it holds, every version and the aliases count as not mirrored.
        report.not_mirrored = [f"version {v['version']}" for v in registry.list_versions()]
        report.not_mirrored.append("aliases")
        _check_reachable(tracking_uri)
        try:
            from mlflow import MlflowClient
            from mlflow.exceptions import RestException
        except ImportError as exc:
            raise ImportError("no MLflow client: pip install 'fraud-detection[mlflow]'") from exc

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        try:
            client.get_registered_model(registry.name)
        except RestException:
            client.create_registered_model(registry.name)
        mirrored = {
            mv.tags.get(STORE_VERSION_TAG): mv.version
            for mv in client.search_model_versions(f"name = '{registry.name}'")
        }
        events = registry.events()
        missing = [v["version"] for v in registry.list_versions() if v["version"] not in mirrored]
        report.not_mirrored = [*(f"version {v}" for v in missing), "aliases"]
        for version in missing:
            _log_version(client, registry, version, _decision(events, version))
            report.mirrored.append(version)
            report.not_mirrored.remove(f"version {version}")
        mirrored = {
            mv.tags.get(STORE_VERSION_TAG): mv.version
            for mv in client.search_model_versions(f"name = '{registry.name}'")
        }
        store_aliases = registry.aliases()
        for alias in ALIASES:
            target = store_aliases.get(alias)
            if target is None:
                with contextlib.suppress(RestException):  # never set: nothing to remove
                    client.delete_registered_model_alias(registry.name, alias)
            else:
                client.set_registered_model_alias(registry.name, alias, mirrored[target])
            report.aliases[alias] = target
        report.not_mirrored.remove("aliases")
    except Exception as exc:  # MLflow is a mirror: whatever fails, the caller goes on
        report.error = f"{type(exc).__name__}: {exc}"
    return report
