"""`fraud retrain`: a challenger against the champion, and the one way every caller (this
command, the weekly job of `fraud schedule`, `fraud monitor --on-drift retrain`) runs one."""

from contextlib import closing
from pathlib import Path
from typing import Literal

import click
from rich.text import Text

from ..config import Settings, training_settings
from ..families import ALGORITHMS, Algorithm
from ..gate import GATE_METRICS
from ..registry import open_registry
from ..retraining import (
    HOLDOUT_FRACTION,
    HOLDOUT_FRAUDS,
    LOOKBACK_DAYS,
    MAX_HOLDOUT_FRACTION,
    MAX_PRODUCTION_LEGIT,
    PromotionRule,
    RetrainOptions,
    RetrainRun,
    provenance,
    run_retrain,
)
from ..sql_sink import open_sink
from .console import err, given, load_command_data, out, show_mirror
from .train import MIN_SAMPLES_OPTION, tree_progress


def retrain_here(settings: Settings, options: RetrainOptions) -> RetrainRun:
    """One retraining run on the store, dataset and prediction log the settings name,
    printed as `fraud retrain` prints it."""
    registry = open_registry(settings)
    df, source = load_command_data(settings, False, 0, options.min_samples)
    with (
        closing(open_sink(settings.database_url)) as sink,
        tree_progress("Growing challenger trees") as on_trees,
    ):
        run = run_retrain(
            registry,
            df,
            options,
            source=source,
            sink=sink,
            maturity_days=settings.label_maturity_days,
            tracking_uri=settings.mlflow_tracking_uri,
            commit=settings.github_sha,
            on_trees=on_trees,
        )
    print_run(run)
    return run


def print_run(run: RetrainRun) -> None:
    """The production rows used (stderr), the MLflow mirror's outcome, the report and the
    decision (stdout)."""
    production, error = run.production, run.production_error
    if error:
        warning = Text.assemble(("warning:", "yellow"), f" no production rows: {error}")
        err.print(warning, highlight=False)
    if production.rows:
        noun = "mature" if production.presumed else "labelled"
        err.print(
            f"Added {production.rows:,} {noun} production rows from the prediction log "
            f"(of {production.mature:,} {noun}){provenance(production)}",
            highlight=False,
        )
    show_mirror(run.mirror)
    result = run.result
    click.echo(result.report)  # Markdown: never wrapped to the terminal width
    where = f"version {result.version}" if result.version else "nothing written (--dry-run)"
    out.print(f"Decision: {result.decision.action}; {where}.")
    if run.rollout is not None:
        out.print(
            f"Rolling out version {run.rollout.version} instead: {run.rollout.share:.0%} of "
            "traffic now; `fraud rollout step` judges each step (hourly under fraud schedule)."
        )


@click.command("retrain")
@click.option(
    "--data",
    "data_uri",
    help="Dataset path or s3:// URI (default: FRAUD_DATA, else the cached real dataset).",
)
@click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")
@click.option("--name", "model_name", help="Model name (default: FRAUD_MODEL_NAME).")
@MIN_SAMPLES_OPTION
@click.option(
    "--holdout-fraction",
    type=float,
    show_default=str(HOLDOUT_FRACTION),
    help="Least share of most recent rows both models are scored on.",
)
@click.option(
    "--holdout-frauds",
    type=click.IntRange(min=0),
    show_default=str(HOLDOUT_FRAUDS),
    help=f"Grow the holdout (up to {MAX_HOLDOUT_FRACTION:.0%} of rows) until it holds this "
    "many frauds; 0: do not.",
)
@click.option(
    "--min-improvement",
    type=float,
    show_default=str(PromotionRule.min_improvement),
    help="F1 gain needed to promote.",
)
@click.option(
    "--max-precision-drop",
    type=float,
    show_default=str(PromotionRule.max_precision_drop),
    help="Largest precision loss a promotion may bring.",
)
@click.option(
    "--lookback-days",
    default=LOOKBACK_DAYS,
    show_default=True,
    help="Add the production rows (DATABASE_URL) that happened in this many days before the "
    "label horizon (FRAUD_LABEL_MATURITY_DAYS, 60): labelled ones, and unlabelled ones as "
    "legitimate; younger rows never join. 0 for none.",
)
@click.option(
    "--algorithm",
    type=click.Choice([*ALGORITHMS, "auto"]),
    default="rf",
    show_default=True,
    help="Challenger family; auto trains each and keeps the best on history-only validation.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.5, 0.999),
    show_default=str(PromotionRule.min_confidence),
    help="Promote only if the paired-bootstrap gain's lower bound at this confidence is > 0.",
)
@click.option(
    "--gate-metric",
    type=click.Choice(GATE_METRICS),
    show_default=PromotionRule.gate_metric,
    help="Metric whose paired gain the gate bounds (pr_auc: free of the threshold's noise).",
)
@click.option(
    "--rule-only", is_flag=True, help="Decide by the F1/precision rule alone, no bootstrap."
)
@click.option(
    "--max-production-legit",
    type=click.IntRange(min=0),
    default=MAX_PRODUCTION_LEGIT,
    show_default=True,
    help="Labelled legitimate production rows sampled for training (every fraud is kept; "
    "sampled rows are weighted by the inverse sampling rate).",
)
@click.option("--force-promotion", is_flag=True, help="Promote without comparing.")
@click.option(
    "--rollout",
    is_flag=True,
    help="A challenger that beats the champion starts `fraud rollout` (5% -> 25% -> 50% -> "
    "100%, each step judged live) instead of being promoted at once.",
)
@click.option("--dry-run", is_flag=True, help="Train and compare, write nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Also write the Markdown report here.",
)
def retrain_command(
    data_uri: str | None,
    store_uri: str | None,
    model_name: str | None,
    min_samples: int | None,
    holdout_fraction: float | None,
    holdout_frauds: int | None,
    min_improvement: float | None,
    max_precision_drop: float | None,
    lookback_days: float,
    algorithm: Algorithm | Literal["auto"],
    min_confidence: float | None,
    gate_metric: str | None,
    rule_only: bool,
    max_production_legit: int,
    force_promotion: bool,
    rollout: bool,
    dry_run: bool,
    report_path: Path | None,
) -> None:
    """Train a challenger, score it and the champion on the same recent rows, and decide."""
    settings = training_settings(model_store=store_uri, model_name=model_name, data=data_uri)
    rule = PromotionRule(
        **given(
            min_improvement=min_improvement,
            max_precision_drop=max_precision_drop,
            min_confidence=min_confidence,
            gate_metric=gate_metric,
        ),
        force=force_promotion,
        paired_bootstrap=not rule_only,
    )
    options = RetrainOptions(
        rule=rule,
        algorithm=algorithm,
        lookback_days=lookback_days,
        max_production_legit=max_production_legit,
        dry_run=dry_run,
        report_path=report_path,
        rollout=rollout,
        **given(
            holdout_fraction=holdout_fraction,
            holdout_frauds=holdout_frauds,
            min_samples=min_samples,
        ),
    )
    retrain_here(settings, options)
