"""`fraud train`: a new version from a dataset."""

import json
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn
from rich.table import Table

from ..bootstrap import PRECISION_TARGET, with_interval
from ..config import training_settings
from ..data import MIN_SAMPLES
from ..families import ALGORITHMS, Algorithm, TreeCallback, family_params
from ..progress import description_column, progress_display
from ..registry import open_registry
from ..training import TrainingOptions, train
from .console import err, given, load_command_data, mirror_to_mlflow, out

MIN_SAMPLES_OPTION = click.option(
    "--min-samples",
    type=int,
    show_default=str(MIN_SAMPLES),
    help="Refuse datasets with fewer rows.",
)


@contextmanager
def tree_progress(description: str) -> Iterator[TreeCallback]:
    """A transient progress bar of trees grown (plain lines in a log); yields the callback
    that advances it."""
    columns = (SpinnerColumn(), description_column(), BarColumn(), MofNCompleteColumn())
    with progress_display(err, *columns, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda grown, total: progress.update(task, completed=grown, total=total)


def _summary(manifest: dict[str, Any], alias: str, peak_mb: float) -> Table:
    test, ci = manifest["metrics"]["test"], manifest["metrics"].get("test_ci", {})
    synthetic = manifest["data"]["synthetic"]
    table = Table(title="Training summary" + (" — SYNTHETIC DATA" if synthetic else ""))
    table.add_column("")
    table.add_column("value [95% bootstrap interval]", justify="right")
    budget = test["alert_budget_per_10k"]
    rows = [
        ("version", f"{manifest['version']} ({alias}), {manifest['algorithm']}"),
        (
            "test PR-AUC",
            f"{with_interval(test['pr_auc'], ci.get('pr_auc'))} "
            f"(fraud rate {100 * test['test_fraud_rate']:.3f}%)",
        ),
        ("ROC-AUC", with_interval(test["roc_auc"], ci.get("roc_auc"))),
        ("precision", with_interval(test["precision"], ci.get("precision"))),
        ("recall", with_interval(test["recall"], ci.get("recall"))),
        ("F1", with_interval(test["f1"], ci.get("f1"))),
        (
            f"recall at {budget:g} alerts / 10k",
            with_interval(test["recall_at_budget"], ci.get("recall_at_budget")),
        ),
        (
            f"recall at precision >= {test.get('precision_target', PRECISION_TARGET):g}",
            with_interval(test.get("recall_at_precision"), ci.get("recall_at_precision")),
        ),
        ("threshold", f"{manifest['threshold']:.4f}"),
        ("test rows / frauds", f"{test['rows']:,} / {test['frauds']}"),
        ("training time", f"{manifest['training_seconds']:.1f} s"),
        ("peak memory", f"{peak_mb:.0f} MB"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


@click.command("train")
@click.option(
    "--data",
    "data_uri",
    help="Dataset path or s3:// URI (default: FRAUD_DATA, else the cached real dataset).",
)
@click.option(
    "--store",
    "store_uri",
    help="Model store: folder or s3://bucket/prefix (default: FRAUD_MODEL_STORE).",
)
@click.option("--name", "model_name", help="Model name in the store (default: FRAUD_MODEL_NAME).")
@click.option(
    "--synthetic",
    is_flag=True,
    help="Train on generated data (offline fallback; labelled SYNTHETIC).",
)
@click.option(
    "--synthetic-rows", default=100_000, show_default=True, help="Rows of synthetic data."
)
@MIN_SAMPLES_OPTION
@click.option(
    "--threshold-rule",
    type=click.Choice(["f1", "min_precision", "cost"]),
    show_default=TrainingOptions.threshold_rule,
)
@click.option(
    "--min-precision",
    type=float,
    show_default=str(TrainingOptions.min_precision),
    help="Precision floor for --threshold-rule min_precision.",
)
@click.option(
    "--review-fee",
    type=float,
    show_default=str(TrainingOptions.review_fee),
    help="Cost of a false alarm for --threshold-rule cost.",
)
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default="rf",
    show_default=True,
    help="Model family; each has defaults chosen by time-ordered CV on history.",
)
@click.option("--trees", type=int, help="Number of trees (default: the family's).")
@click.option(
    "--promote/--no-promote",
    default=None,
    help="Make it champion (default: only if there is none).",
)
@click.option(
    "--reason", default="fraud train", show_default=True, help="Recorded in the event trail."
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def train_command(
    data_uri: str | None,
    store_uri: str | None,
    model_name: str | None,
    synthetic: bool,
    synthetic_rows: int,
    min_samples: int | None,
    threshold_rule: str | None,
    min_precision: float | None,
    review_fee: float | None,
    algorithm: Algorithm,
    trees: int | None,
    promote: bool | None,
    reason: str,
    as_json: bool,
) -> None:
    """Train on a time-ordered split, export to ONNX and register a version."""
    settings = training_settings(model_store=store_uri, model_name=model_name, data=data_uri)
    options = TrainingOptions(
        algorithm=algorithm,
        params=family_params(algorithm, trees),
        commit=settings.github_sha,
        **given(threshold_rule=threshold_rule, min_precision=min_precision, review_fee=review_fee),
    )
    registry = open_registry(settings)
    df, source = load_command_data(
        settings, synthetic, synthetic_rows, **given(min_samples=min_samples)
    )
    with tree_progress("Growing trees") as on_trees:
        trained = train(
            df, options, source=source, model_name=settings.model_name, on_trees=on_trees
        )
    manifest = registry.register(trained.files, trained.manifest, reason=reason)
    version = str(manifest["version"])
    alias = registry.promote_or_stage(
        version, reason=reason, promote=promote, details={"metrics": manifest["metrics"]["test"]}
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mirror_to_mlflow(registry, settings.mlflow_tracking_uri)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    out.print(_summary(manifest, alias, peak_mb))
    out.print(f"Registered in {settings.model_store} as version {version} ({alias}).")
