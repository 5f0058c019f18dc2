"""The side effects of a rollout: its state and the canary alias in the store, the step's rows
from the prediction log (and Prometheus), the event trail, the report and the gauges.
The decisions themselves are rollout.py's pure functions; `now` is always passed in."""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import requests
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from .errors import NotFoundError, PredictionLogError, RolloutAborted, UsageError
from .prediction_log import error_reason, feedback, is_logging, predictions
from .reference import bin_counts
from .registry import CANARY, CHAMPION, Registry, to_json
from .rollout import (
    Decision,
    Limits,
    Rollout,
    Variant,
    aborted_by_hand,
    advanced,
    decide,
    figure_text,
    start,
)

log = logging.getLogger(__name__)
JOB = "fraud-rollout"
"""The Pushgateway job of the rollout gauges; one group per model name under it."""


def state_key(registry: Registry) -> str:
    return f"{registry.root}/rollout.json"


def load(registry: Registry) -> Rollout | None:
    """The latest rollout (open or ended), or None if there never was one."""
    try:
        return Rollout.from_json(json.loads(registry.store.get_bytes(state_key(registry))))
    except NotFoundError:
        return None


def save(registry: Registry, rollout: Rollout) -> None:
    registry.store.put_bytes(state_key(registry), to_json(rollout.to_json()))


def open_rollout(registry: Registry) -> Rollout | None:
    """The rollout in progress, if any."""
    rollout = load(registry)
    return rollout if rollout is not None and rollout.state == "open" else None


def begin(
    registry: Registry,
    version: str,
    *,
    steps: Sequence[float],
    limits: Limits,
    now: datetime,
    reason: str,
) -> Rollout:
    """Stage `version` as the canary at the first step's share: every replica follows."""
    if (current := open_rollout(registry)) is not None:
        raise UsageError(
            f"version {current.version} is being rolled out already: fraud rollout abort first"
        )
    champion = registry.aliases().get(CHAMPION)
    if champion is None:
        raise NotFoundError(f"{registry.name} has no champion to roll out against")
    version = registry.verify(version)["version"]
    rollout = start(version, champion, now, steps, limits)
    details = {"steps": list(rollout.steps), "limits": rollout.to_json()["limits"]}
    registry.stage(version, alias=CANARY, share=rollout.share, reason=f"rollout step 1: {reason}")
    save(registry, rollout)
    registry.note("rollout_started", version=version, reason=reason, details=details)
    return rollout


@dataclass(frozen=True)
class StepResult:
    """What one `fraud rollout step` found and did."""

    before: Rollout
    after: Rollout
    decision: Decision
    canary: Variant
    champion: Variant


def assess(
    registry: Registry, engine: Engine, *, now: datetime, prometheus: str | None = None
) -> StepResult | None:
    """Judge the step in progress without acting on it (`fraud rollout status`); None when
    no rollout is open."""
    rollout = open_rollout(registry)
    if rollout is None:
        return None
    champion_now = registry.aliases().get(CHAMPION)
    if champion_now != rollout.champion:
        decision = Decision("abort", f"the champion moved to {champion_now} by hand")
        return StepResult(rollout, rollout, decision, Variant(), Variant())
    reference = json.loads(registry.read_file(rollout.version, "reference.json"))["score"]
    canary, champion = read_variants(engine, rollout, now, prometheus, reference["edges"])
    decision = decide(rollout, canary, champion, reference["proportions"], now)
    return StepResult(rollout, rollout, decision, canary, champion)


def step(
    registry: Registry, engine: Engine, *, now: datetime, prometheus: str | None = None
) -> StepResult | None:
    """Judge the step in progress and carry the decision out; None when no rollout is open.
    An abort has removed the canary when this returns (see `require_not_aborted`)."""
    result = assess(registry, engine, now=now, prometheus=prometheus)
    if result is None:
        return None
    after = advanced(result.before, result.decision, now)
    carry_out(registry, after, result.decision)
    return replace(result, after=after)


def abort(registry: Registry, *, now: datetime, reason: str) -> Rollout:
    """Roll the canary back by hand."""
    rollout = open_rollout(registry)
    if rollout is None:
        raise NotFoundError(f"no rollout of {registry.name} is open")
    after = aborted_by_hand(rollout, reason, now)
    carry_out(registry, after, Decision("abort", reason))
    return after


def carry_out(registry: Registry, after: Rollout, decision: Decision) -> None:
    """Move the aliases for `decision`, then save the state and add the event. The alias moves
    first: a crash in between leaves the traffic safe and the state to be judged again."""
    version = after.version
    details: dict[str, Any] = {"step": after.step + 1, "share": after.share}
    details["checks"] = after.judged[-1]["checks"] if after.judged else []
    if decision.action == "abort":
        registry.unset(CANARY, reason=f"rollout aborted: {decision.reason}")
    elif decision.action == "complete":
        registry.promote(version, reason=f"rollout completed: {decision.reason}")
        registry.unset(CANARY, reason="rollout completed: the canary is champion")
    elif decision.action == "advance":
        registry.stage(
            version,
            alias=CANARY,
            share=after.share,
            reason=f"rollout step {after.step + 1}: {decision.reason}",
        )
    else:
        return
    save(registry, after)
    action = {"abort": "rollout_aborted", "complete": "rollout_completed"}.get(
        decision.action, "rollout_advanced"
    )
    registry.note(action, version=version, reason=decision.reason, details=details)


def require_not_aborted(result: StepResult | Rollout | None) -> None:
    """RolloutAborted (exit 1) when the rollout was just rolled back, so a scheduler sees it."""
    rollout = result.after if isinstance(result, StepResult) else result
    if rollout is not None and rollout.state == "aborted":
        raise RolloutAborted(f"rollout of version {rollout.version} aborted: {rollout.reason}")


def read_variants(
    engine: Engine,
    rollout: Rollout,
    now: datetime,
    prometheus: str | None,
    score_edges: Sequence[float],
) -> tuple[Variant, Variant]:
    """The canary's and the champion's rows of the step in progress, from the log (the
    canary's scores counted in its reference's bins), with Prometheus' figures if given."""
    since = rollout.step_started_at.astimezone(UTC).replace(tzinfo=None)
    until = now.astimezone(UTC).replace(tzinfo=None)
    rows = read_step_rows(engine, rollout, since, until)
    edges = np.asarray(score_edges, dtype=np.float64)
    variants = {}
    for name, version in ((CANARY, rollout.version), (CHAMPION, rollout.champion)):
        part = rows[rows["variant"] == name]
        variants[name] = variant_of(part, edges if name == CANARY else None)
        if prometheus:
            variants[name] = with_prometheus(variants[name], prometheus, version, name, now, since)
    return variants[CANARY], variants[CHAMPION]


def read_step_rows(
    engine: Engine, rollout: Rollout, since: datetime, until: datetime
) -> pd.DataFrame:
    """variant, probability, is_fraud, latency_ms and review label of the step's rows."""
    # Only an analyst's review judges alert precision: a chargeback arrives weeks later and
    # only for frauds, so counting it would make any step's alerts look better than they are.
    review = and_(
        feedback.c.transaction_id == predictions.c.transaction_id, feedback.c.source == "review"
    )
    p = predictions.c
    query = (
        select(p.variant, p.probability, p.is_fraud, p.latency_ms, feedback.c.label)
        .select_from(predictions.outerjoin(feedback, review))
        .where(p.created_at >= since, p.created_at <= until)
        .where(
            or_(
                and_(p.variant == CANARY, p.model_version == rollout.version),
                and_(p.variant == CHAMPION, p.model_version == rollout.champion),
            )
        )
    )
    columns = ["variant", "probability", "is_fraud", "latency_ms", "label"]
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                return pd.DataFrame(columns=columns)
            frame = pd.DataFrame(conn.execute(query).all(), columns=columns)
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc
    return frame


def variant_of(rows: pd.DataFrame, edges: NDArray[np.float64] | None) -> Variant:
    """One variant's figures from its rows."""
    if rows.empty:
        return Variant()
    flagged = rows["is_fraud"].astype(bool).to_numpy()
    labels = pd.to_numeric(rows["label"], errors="coerce").to_numpy(dtype=np.float64)
    reviewed = flagged & ~np.isnan(labels)
    latency = pd.to_numeric(rows["latency_ms"], errors="coerce").dropna().to_numpy()
    probabilities = rows["probability"].to_numpy(dtype=np.float64)
    return Variant(
        rows=len(rows),
        flagged=int(flagged.sum()),
        score_counts=tuple(int(c) for c in bin_counts(probabilities, edges))
        if edges is not None
        else (),
        p99_latency_ms=float(np.percentile(latency, 99)) if len(latency) else None,
        reviewed=int(reviewed.sum()),
        confirmed=int((reviewed & (labels == 1)).sum()),
    )


def with_prometheus(
    variant: Variant, url: str, version: str, name: str, now: datetime, since: datetime
) -> Variant:
    """The variant with its error count and p99 latency from Prometheus over the step; as it
    was (latency from the log, errors unknown) when Prometheus does not answer."""
    window = f"{max(int((now.astimezone(UTC).replace(tzinfo=None) - since).total_seconds()), 1)}s"
    labels = f'model_version="{version}",variant="{name}"'
    queries = {
        "errors": f"sum(increase(fraud_scoring_errors_total{{{labels}}}[{window}]))",
        "rows": f"sum(increase(fraud_predictions_total{{{labels}}}[{window}]))",
        "p99": "histogram_quantile(0.99, sum by (le) (increase("
        f'fraud_prediction_latency_seconds_bucket{{model_version="{version}"}}[{window}])))',
    }
    try:
        found = {key: prometheus_value(url, promql, now) for key, promql in queries.items()}
    except (requests.RequestException, ValueError, KeyError) as exc:
        log.warning("Prometheus at %s did not answer (%s): errors unknown", url, exc)
        return variant
    errors, scored, p99 = found["errors"] or 0.0, found["rows"] or 0.0, found["p99"]
    return replace(
        variant,
        errors=round(errors),
        calls=round(errors + scored),
        p99_latency_ms=p99 * 1000 if p99 is not None else variant.p99_latency_ms,
    )


def prometheus_value(url: str, promql: str, at: datetime) -> float | None:
    """An instant query's single value at `at`, None for an empty or NaN result."""
    answer = requests.get(
        f"{url.rstrip('/')}/api/v1/query",
        params={"query": promql, "time": f"{at.timestamp():.3f}"},
        timeout=10,
    )
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if np.isnan(value) else value


def report(result: StepResult | None, rollout: Rollout | None, now: datetime) -> str:
    """Markdown: the rollout, the step's decision and each check against its limit."""
    if rollout is None:
        return "# Rollout\n\nNo rollout has been started.\n"
    lines = [f"# Rollout of version {rollout.version}", ""]
    lines += [
        f"- **State:** {rollout.state}" + (f" ({rollout.reason})" if rollout.reason else ""),
        f"- **Champion:** version {rollout.champion}",
        f"- **Steps:** {' → '.join(f'{s:.0%}' for s in rollout.steps)}",
        f"- **Started:** {rollout.started_at.isoformat(timespec='seconds')}",
    ]
    if rollout.state == "open":
        lines.append(
            f"- **Now:** step {rollout.step + 1} of {len(rollout.steps)} at {rollout.share:.0%} "
            f"of traffic, since {rollout.step_started_at.isoformat(timespec='seconds')}"
        )
    if result is not None:
        decision = result.decision
        lines += [
            "",
            f"## Step {result.before.step + 1} at {result.before.share:.0%}: {decision.action}",
            "",
            f"{decision.reason} (judged {now.isoformat(timespec='seconds')}).",
        ]
        if decision.action == "hold":
            lines.append(
                f"Left before it is judged: {decision.rows_left} canary rows, "
                f"{decision.time_left_s / 60:.0f} min."
            )
        lines += ["", *variants_table(result.canary, result.champion)]
        lines += ["", *checks_table(decision)]
    return "\n".join(lines) + "\n"


def variants_table(canary: Variant, champion: Variant) -> list[str]:
    rows = ["| | canary | champion |", "|---|---:|---:|"]
    for label, key in (
        ("rows", "rows"),
        ("flagged", "flagged"),
        ("p99 latency (ms)", "p99_latency_ms"),
        ("scoring errors", "errors"),
        ("reviewed alerts", "reviewed"),
        ("confirmed frauds", "confirmed"),
    ):
        cells = [_cell(getattr(v, key)) for v in (canary, champion)]
        rows.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return rows


def checks_table(decision: Decision) -> list[str]:
    if not decision.checks:
        return []
    rows = ["| check | status | value [interval] | limit | note |", "|---|---|---|---|---|"]
    for check in decision.checks:
        rows.append(
            f"| {check.name} | {check.status} | {figure_text(check)} | {check.limit} | "
            f"{check.note} |"
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "unknown"
    return f"{value:.1f}" if isinstance(value, float) else f"{value:,}"


def push_gauges(rollout: Rollout | None, gateway: str, model_name: str) -> None:
    """fraud_rollout_step (1-based; the step it ended at once it ended) and
    fraud_rollout_share (0 once it ended), labelled by version and state; the push replaces
    the group, so an aborted rollout shows until the next one starts. With no rollout ever,
    both are 0 with state "none": the series exist (and the job is seen to run) from day one."""
    registry = CollectorRegistry()
    if rollout is None:
        labels = {"version": "", "state": "none"}
    else:
        labels = {"version": rollout.version, "state": rollout.state}
    step = Gauge(
        "fraud_rollout_step", "Step of the rollout (1-based)", list(labels), registry=registry
    )
    step.labels(**labels).set(0 if rollout is None else rollout.step + 1)
    share = Gauge(
        "fraud_rollout_share",
        "Share of the champion's traffic the canary takes",
        list(labels),
        registry=registry,
    )
    share.labels(**labels).set(0.0 if rollout is None else rollout.share)
    push_to_gateway(gateway, job=JOB, registry=registry, grouping_key={"model": model_name})
