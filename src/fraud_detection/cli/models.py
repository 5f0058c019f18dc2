"""`fraud models`: list, show, promote, roll back and diff registered versions."""

import json
import re
import shutil
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich import box
from rich.table import Table

from ..bootstrap import with_interval
from ..config import get_settings
from ..errors import FraudError, StoreError, UsageError
from ..manifests import describe_slice, lookup, manifest_diff, scored_slice
from ..mlflow_mirror import sync
from ..registry import CHAMPION, Registry, open_registry
from ..terminal import console
from .console import mirror_to_mlflow

F = TypeVar("F", bound=Callable[..., Any])
_HASH = re.compile(r"[0-9a-f]{32,}")


def _registry_options(command: F) -> F:
    """Add the --store, --name and --json options every subcommand shares."""
    options = (
        click.option(
            "--store", "store_uri", help="s3://bucket/prefix or folder (default FRAUD_MODEL_STORE)."
        ),
        click.option("--name", "model_name", help="Model name (default: FRAUD_MODEL_NAME)."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def short_time(iso: str | None) -> str:
    """`2030-01-02 03:04` from an ISO 8601 timestamp, for narrow tables."""
    return iso[:16].replace("T", " ") if iso else "-"


def cell(value: Any) -> str:
    """A compact table cell: 4 decimals for floats, hashes cut to 12 characters."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = str(value)
    return text[:12] + "…" if _HASH.fullmatch(text) else text


def signed(delta: float | None) -> str:
    """A delta with its sign: whole numbers as integers, others to 4 decimals."""
    if not delta:
        return ""
    return f"{int(delta):+,}" if float(delta).is_integer() else f"{delta:+.4f}"


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


def _print(renderable: Any) -> None:
    # A console per call follows the current stdout and COLUMNS, as click's runner sets them;
    # piped output gets room for every column instead of rich's 80-column default.
    width = shutil.get_terminal_size((160, 24)).columns
    console(width=max(width, 120)).print(renderable)


@click.group()
def models() -> None:
    """Registered model versions: list, show, promote, roll back, diff."""


@models.command("list")
@_registry_options
def list_command(store_uri: str | None, model_name: str | None, as_json: bool) -> None:
    """Every complete version with its aliases and headline test metrics, and the slice each
    was measured on (figures on different slices do not compare)."""
    settings = get_settings(model_store=store_uri, model_name=model_name)
    registry = open_registry(settings)
    readable, problems = registry.survey()
    versions = [{**m, "test_slice": scored_slice(m)} for m in readable]
    if as_json:
        _echo_json(versions)
    else:
        _print(_versions_table(registry, versions))
    if problems:
        # Every version that could be read is listed above; the files that could not, here.
        raise StoreError("; ".join(problems))


def _versions_table(registry: Registry, versions: list[dict[str, Any]]) -> Table | str:
    if not versions:
        return f"No versions of {registry.name} in {registry.store.uri}."
    table = _table(f"{registry.name} in {registry.store.uri}")
    columns = (
        "version",
        "created",
        "aliases",
        "threshold",
        "test PR-AUC",
        "precision",
        "recall",
        "test slice",
        "data rows",
        "synthetic",
    )
    for column in columns:
        table.add_column(column, no_wrap=column in ("version", "created", "aliases"))
    for m in versions:
        table.add_row(
            m["version"],
            short_time(m.get("created_at")),
            ", ".join(m["aliases"]),
            cell(m.get("threshold")),
            cell(lookup(m, "metrics.test.pr_auc")),
            cell(lookup(m, "metrics.test.precision")),
            cell(lookup(m, "metrics.test.recall")),
            describe_slice(m["test_slice"]),
            cell(lookup(m, "data.rows")),
            cell(lookup(m, "data.synthetic")),
        )
    if len({describe_slice(m["test_slice"]) for m in versions}) > 1:
        table.caption = (
            "Test figures on different slices do not compare; the retrain report scores "
            "champion and challenger on the same rows."
        )
    return table


@models.command("show")
@click.argument("ref")
@_registry_options
def show_command(ref: str, store_uri: str | None, model_name: str | None, as_json: bool) -> None:
    """One version's manifest; REF is a version number, champion, challenger or latest."""
    settings = get_settings(model_store=store_uri, model_name=model_name)
    registry = open_registry(settings)
    manifest = registry.manifest(ref)
    if as_json:
        _echo_json(manifest)
        return
    aliases = [a for a, v in registry.aliases().items() if v == manifest["version"]]
    table = _table(f"{registry.name} version {manifest['version']}")
    table.show_header = False
    table.add_column("field")
    table.add_column("value")
    table.add_row("aliases", ", ".join(aliases) or "-")
    table.add_row("algorithm", cell(manifest.get("algorithm")))
    for field in (
        "created_at",
        "threshold",
        "data.rows",
        "data.frauds",
        "data.synthetic",
        "data.source",
        "code_revision",
    ):
        table.add_row(field, cell(lookup(manifest, field)))
    for split in ("test", "validation"):
        for metric in (
            "pr_auc",
            "roc_auc",
            "precision",
            "recall",
            "f1",
            "recall_at_budget",
            "recall_at_precision",
        ):
            value = lookup(manifest, f"metrics.{split}.{metric}")
            bounds = lookup(manifest, f"metrics.{split}_ci.{metric}")
            table.add_row(f"{split} {metric}", with_interval(value, bounds))
    for name, digest in manifest.get("files", {}).items():
        table.add_row(f"file {name}", f"sha256 {cell(digest)}")
    _print(table)


@models.command("promote")
@click.argument("version")
@click.option("--reason", default="manual promotion (fraud models promote)", show_default=True)
@_registry_options
def promote_command(
    version: str, reason: str, store_uri: str | None, model_name: str | None, as_json: bool
) -> None:
    """Make VERSION champion after verifying its artifacts; the old champion stays in history."""
    settings = get_settings(model_store=store_uri, model_name=model_name)
    registry = open_registry(settings)
    event = registry.promote(version, reason=reason)
    if event is None:
        current = registry.resolve(version)
        previous: str | None = current
    else:
        current, previous = event["version"], event["previous_version"]
    mirror_to_mlflow(registry, settings.mlflow_tracking_uri)
    _report_change(registry, previous, current, changed=event is not None, as_json=as_json)


@models.command("rollback")
@click.option("--reason", default="manual rollback (fraud models rollback)", show_default=True)
@_registry_options
def rollback_command(
    reason: str, store_uri: str | None, model_name: str | None, as_json: bool
) -> None:
    """Make the previous champion champion again."""
    settings = get_settings(model_store=store_uri, model_name=model_name)
    registry = open_registry(settings)
    event = registry.step_back(reason=reason)
    mirror_to_mlflow(registry, settings.mlflow_tracking_uri)
    _report_change(
        registry, event["previous_version"], event["version"], changed=True, as_json=as_json
    )


@models.command("sync-mlflow")
@click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")
@click.option("--name", "model_name", help="Model name (default: FRAUD_MODEL_NAME).")
@click.option("--tracking-uri", help="MLflow tracking server (default: MLFLOW_TRACKING_URI).")
def sync_mlflow_command(
    store_uri: str | None, model_name: str | None, tracking_uri: str | None
) -> None:
    """Mirror every version and alias MLflow lacks (after an outage, or on first use)."""
    settings = get_settings(model_store=store_uri, model_name=model_name)
    registry = open_registry(settings)
    uri = tracking_uri or settings.mlflow_tracking_uri
    if not uri:
        raise UsageError("no MLflow server: set MLFLOW_TRACKING_URI or pass --tracking-uri")
    report = sync(registry, uri)
    if report.error:
        raise FraudError(report.summary())
    _print(report.summary())


def _report_change(
    registry: Registry, previous: str | None, current: str, *, changed: bool, as_json: bool
) -> None:
    if as_json:
        _echo_json(
            {
                "alias": CHAMPION,
                "version": current,
                "previous_version": previous,
                "changed": changed,
            }
        )
    elif changed:
        where = registry.store.uri
        _print(f"{registry.name} champion: {previous or 'none'} -> {current} ({where})")
    else:
        _print(f"{registry.name} version {current} is already champion; nothing changed.")


@models.command("diff")
@click.argument("v1")
@click.argument("v2")
@_registry_options
def diff_command(
    v1: str, v2: str, store_uri: str | None, model_name: str | None, as_json: bool
) -> None:
    """Threshold, metrics, data, hyperparameters and files of V1 and V2 side by side."""
    settings = get_settings(model_store=store_uri, model_name=model_name)
    registry = open_registry(settings)
    a, b = registry.manifest(v1), registry.manifest(v2)
    rows = manifest_diff(a, b)
    if as_json:
        _echo_json({"a": a["version"], "b": b["version"], "rows": rows})
        return
    table = _table(f"{registry.name}: version {a['version']} vs {b['version']}")
    for column in ("field", f"v{a['version']}", f"v{b['version']}", "delta"):
        table.add_column(column)
    for row in rows:
        style = None if row["changed"] else "dim"
        values = (cell(row["a"]), cell(row["b"]), signed(row["delta"]))
        table.add_row(row["field"], *values, style=style)
    _print(table)
