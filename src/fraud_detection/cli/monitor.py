"""`fraud monitor`: live quality and drift of the champion from the prediction log."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ..config import Settings, get_settings
from ..errors import PushError
from ..log_record import utc_now
from ..monitoring import DriftRule, monitor_champion, push_gauges
from ..monitoring.trigger import ACTIONS, COOLDOWN, WorkflowDispatch, act_on_drift
from ..registry import open_registry
from ..retraining import RetrainOptions
from ..sql_sink import open_sink
from .console import err, iso_time
from .retrain import retrain_here

WINDOW_DAYS = 7.0


@click.command("monitor")
@click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")
@click.option("--name", "model_name", help="Model name (default: FRAUD_MODEL_NAME).")
@click.option("--database-url", help="Prediction log (default: DATABASE_URL).")
@click.option(
    "--lookback-days",
    default=WINDOW_DAYS,
    show_default=True,
    help="Window of predictions, by when they happened (event time, else receive time); the "
    "rates are measured on the same span FRAUD_LABEL_MATURITY_DAYS (60) earlier.",
)
@click.option(
    "--as-of",
    callback=iso_time,
    metavar="TIME",
    help="Judge as if it were this moment (ISO 8601, UTC without a zone): only what happened "
    "and was learnt by then counts. [default: now]",
)
@click.option("--baseline-f1", type=float, help="Expected F1 (default: the champion's test F1).")
@click.option(
    "--baseline-recall",
    type=float,
    help="Expected recall, judged against the estimated recall (default: the champion's test "
    "recall).",
)
@click.option(
    "--alert-threshold",
    default=0.1,
    show_default=True,
    help="Drop of F1 (measured or estimated) or estimated recall below its baseline that flags.",
)
@click.option("--min-fraud-rate", type=float, help="Lower edge of the predicted fraud-rate band.")
@click.option("--max-fraud-rate", type=float, help="Upper edge of the predicted fraud-rate band.")
@click.option("--max-fpr", default=DriftRule.max_fpr, show_default=True, type=float)
@click.option("--max-fnr", default=DriftRule.max_fnr, show_default=True, type=float)
@click.option("--psi-threshold", default=DriftRule.psi_threshold, show_default=True, type=float)
@click.option(
    "--pushgateway",
    help="Push the gauges here, e.g. http://127.0.0.1:9091 (default: PUSHGATEWAY_URL).",
)
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Also write here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--on-drift",
    type=click.Choice(ACTIONS),
    help="When drift is flagged: run `fraud retrain` here, or dispatch the GitHub retrain "
    "workflow (GITHUB_TOKEN, GITHUB_REPOSITORY) (default: FRAUD_ON_DRIFT, else nothing).",
)
@click.option(
    "--cooldown-days",
    type=float,
    default=COOLDOWN.days,
    show_default=True,
    help="No second drift-triggered retrain within this many days.",
)
def monitor(
    store_uri: str | None,
    model_name: str | None,
    database_url: str | None,
    lookback_days: float,
    as_of: datetime | None,
    baseline_f1: float | None,
    baseline_recall: float | None,
    alert_threshold: float,
    min_fraud_rate: float | None,
    max_fraud_rate: float | None,
    max_fpr: float,
    max_fnr: float,
    psi_threshold: float,
    pushgateway: str | None,
    report_path: Path | None,
    as_json: bool,
    on_drift: str | None,
    cooldown_days: float,
) -> None:
    """Precision, recall, F1, FPR, FNR and PSI drift over the window; exits 1 only on failure."""
    settings = get_settings(
        model_store=store_uri,
        model_name=model_name,
        database_url=database_url,
        pushgateway_url=pushgateway,
        on_drift=on_drift,
    )
    rule = DriftRule(
        baseline_f1=baseline_f1,
        baseline_recall=baseline_recall,
        alert_threshold=alert_threshold,
        fraud_rate_low=min_fraud_rate,
        fraud_rate_high=max_fraud_rate,
        max_fpr=max_fpr,
        max_fnr=max_fnr,
        psi_threshold=psi_threshold,
    )
    monitor_here(
        settings,
        rule,
        lookback_days=lookback_days,
        as_of=as_of,
        report_path=report_path,
        as_json=as_json,
        cooldown=timedelta(days=cooldown_days),
    )


def monitor_here(
    settings: Settings,
    rule: DriftRule,
    *,
    lookback_days: float = WINDOW_DAYS,
    as_of: datetime | None = None,
    report_path: Path | None = None,
    as_json: bool = False,
    cooldown: timedelta = COOLDOWN,
) -> None:
    """One monitoring run on the store and prediction log the settings name, as `fraud
    monitor` runs it: the report, the gauges pushed, the drift acted on (FRAUD_ON_DRIFT)."""
    registry = open_registry(settings)
    end = as_of or utc_now()
    run = monitor_champion(
        registry,
        open_sink(settings.database_url),
        rule,
        end - timedelta(days=lookback_days),
        end,
        timedelta(days=settings.label_maturity_days),
    )
    result, report = run.result, run.report()
    if report_path:
        report_path.write_text(report)
    if as_json:
        click.echo(json.dumps(run.to_json(), indent=2))
    else:
        click.echo(report)  # Markdown: never wrapped to the terminal width
    if settings.pushgateway_url:
        try:
            push_gauges(
                result,
                settings.pushgateway_url,
                settings.model_name,
                last_trained=registry.last_registered_at(),
            )
        except OSError as exc:
            raise PushError(f"could not push to {settings.pushgateway_url}: {exc}") from exc
        err.print(f"Pushed the gauges to {settings.pushgateway_url}")
    if settings.on_drift:
        outcome = act_on_drift(
            result,
            registry,
            settings.on_drift,
            now=datetime.now(UTC),
            cooldown=cooldown,
            retrain=lambda: _retrain_on_drift(settings),
            dispatch=_dispatch(settings),
        )
        if outcome:
            err.print(f"Drift: {outcome.replace('_', ' ')} (--on-drift {settings.on_drift})")


def _retrain_on_drift(settings: Settings) -> None:
    """A retraining run as `fraud retrain` runs it, on the same store, data and prediction
    log, its report in FRAUD_REPORTS/retrain-on-drift.md."""
    settings.reports.mkdir(parents=True, exist_ok=True)
    retrain_here(settings, RetrainOptions(report_path=settings.reports / "retrain-on-drift.md"))


def _dispatch(settings: Settings) -> WorkflowDispatch | None:
    if not (settings.github_token and settings.github_repository):
        return None
    return WorkflowDispatch(
        repository=settings.github_repository,
        token=settings.github_token,
        workflow=settings.retrain_workflow,
        ref=settings.retrain_ref,
        api_url=settings.github_api_url,
    )
