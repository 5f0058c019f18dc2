"""Champion/challenger retraining: train on all data but a recent holdout, score both models
on that same holdout, decide."""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from . import bootstrap
from .bootstrap import with_interval
from .data import MIN_SAMPLES, time_split, validate
from .errors import PredictionLogError
from .evaluation import classification_metrics
from .families import Algorithm, TreeCallback
from .gate import MIN_CONFIDENCE, Gain, paired_gain
from .inference import onnx_fraud_probability, onnx_session
from .log_record import utc_now
from .mlflow_mirror import MirrorReport, sync
from .prediction_sink import PRESUMED, PredictionSink
from .registry import CHAMPION, Registry
from .report import plot_pr_curves
from .rollout import DEFAULT_STEPS, Limits, Rollout
from .rollout_run import begin
from .schema import COLUMNS, FEATURES, LABEL
from .training import (
    TrainedModel,
    TrainingOptions,
    WeightedRows,
    features_and_label,
    train_best_family,
    train_on,
    with_extra_rows,
)

Action = Literal["promote", "stage"]
HOLDOUT_FRACTION = 0.1
"""The least share of most recent rows both models are scored on."""
HOLDOUT_FRAUDS = 50
"""Frauds the holdout grows to hold: on the real data the last 10% holds 22, where one caught
fraud moves recall by 4.5 points and the gate cannot tell a better model from luck; the
most recent 50 take 14% of the rows."""
MAX_HOLDOUT_FRACTION = 0.3
"""The holdout never takes more than this share, so the challenger keeps most of history."""


@dataclass(frozen=True)
class Holdout:
    """The newest `share` of rows both models are scored on, sized once per run: at least
    `least` of the rows, grown until it holds `wanted` frauds (0: not grown)."""

    share: float
    least: float
    wanted: int

    def note(self, labels: NDArray[Any]) -> str:
        """How the holdout was sized, and whether it holds the frauds it was sized for."""
        held = int(np.sum(labels))
        if self.wanted <= 0:
            return f"the most recent {self.share:.0%} of rows ({held} frauds; --holdout-frauds 0)"
        if self.share <= self.least and held >= self.wanted:
            return f"the most recent {self.share:.0%} of rows, which already hold {held} frauds"
        if held >= self.wanted:
            return (
                f"the most recent {self.share:.0%} of rows, grown from {self.least:.0%} to "
                f"hold {self.wanted} frauds"
            )
        return (
            f"the most recent {self.share:.0%} of rows (the most it may take) hold only {held} "
            f"of the {self.wanted} frauds wanted: the decision rests on fewer frauds than it should"
        )


def size_holdout(
    df: pd.DataFrame, least: float = HOLDOUT_FRACTION, wanted: int = HOLDOUT_FRAUDS
) -> Holdout:
    """The holdout of `df`: at least `least` of its newest rows, grown until it holds `wanted`
    frauds (0: not grown), never beyond MAX_HOLDOUT_FRACTION."""
    if wanted <= 0 or df.empty:
        return Holdout(least, least, wanted)
    newest_first = df.sort_values("Time", kind="stable")[LABEL].to_numpy()[::-1]
    reached = np.flatnonzero(np.cumsum(newest_first) >= wanted)
    rows = int(reached[0]) + 1 if reached.size else len(newest_first)
    grown = min(rows / len(newest_first), MAX_HOLDOUT_FRACTION)
    return Holdout(max(least, grown), least, wanted)


@dataclass(frozen=True)
class PromotionRule:
    """SPEC 5: promote when F1 gains enough and precision does not fall too far."""

    min_improvement: float = 0.02
    max_precision_drop: float = 0.05
    force: bool = False
    paired_bootstrap: bool = True
    """On top of the rule: the gain's paired-bootstrap lower bound must be above zero."""
    min_confidence: float = MIN_CONFIDENCE
    gate_metric: str = "pr_auc"


@dataclass(frozen=True)
class Decision:
    """What happens to the challenger, and the rule's reason in words."""

    action: Action
    reason: str


def decide(
    champion: dict[str, Any] | None,
    challenger: dict[str, Any],
    rule: PromotionRule,
    gain: Gain | None = None,
) -> Decision:
    """Apply the promotion rule to holdout metrics of both models (champion may be absent),
    then, when given, the paired-bootstrap gain (the gate that knows its noise)."""
    if rule.force:
        return Decision("promote", "--force-promotion: comparison skipped")
    if champion is None:
        return Decision("promote", "no champion yet: the first valid model becomes champion")
    f1_gain = challenger["f1"] - champion["f1"]
    drop = champion["precision"] - challenger["precision"]
    if f1_gain < rule.min_improvement:
        return Decision(
            "stage",
            f"F1 {challenger['f1']:.4f} vs champion {champion['f1']:.4f}: gain {f1_gain:+.4f} "
            f"is below --min-improvement {rule.min_improvement}",
        )
    if drop > rule.max_precision_drop:
        return Decision(
            "stage",
            f"precision falls by {drop:.4f} (> --max-precision-drop {rule.max_precision_drop})",
        )
    passed = (
        f"F1 {challenger['f1']:.4f} vs champion {champion['f1']:.4f} (gain {f1_gain:+.4f} >= "
        f"{rule.min_improvement}); precision change {-drop:+.4f} within {rule.max_precision_drop}"
    )
    if gain is not None and not gain.believed:
        return Decision(
            "stage", f"{passed}, but the {gain.summary()}: not above zero, could be luck"
        )
    return Decision("promote", passed + (f"; {gain.summary()}" if gain else ""))


LOOKBACK_DAYS = 30.0
"""Days of mature production rows (before the label horizon) a run adds to the dataset."""
MAX_PRODUCTION_LEGIT = 100_000
"""Labelled legitimate production rows kept for training by default: ~25 MB of features,
about a third of the dataset's own rows, whatever the window holds."""
SAMPLE_SEED = 0


@dataclass(frozen=True)
class ProductionSample:
    """Production rows whose class is known, for training: every fraud and a capped, seeded
    sample of the legitimate rows, weighted by the inverse of its sampling rate (negative
    downsampling)."""

    sample: WeightedRows
    labelled: int
    """Labelled transactions the rows were drawn from."""
    legit: int
    """Legitimate transactions the rows were drawn from: labelled, or presumed."""
    reviewed: int = 0
    """Of the labelled, labelled by an analyst's review."""
    chargebacks: int = 0
    """Of the labelled, labelled by a chargeback."""
    presumed: int = 0
    """Unlabelled transactions past the label horizon, presumed legitimate."""
    horizon_days: float | None = None
    """The label horizon the rows are older than; None: labelled rows of any age."""

    @property
    def rows(self) -> int:
        return len(self.sample.rows)

    @property
    def mature(self) -> int:
        """Transactions the rows were drawn from: labelled, or presumed legitimate."""
        return self.labelled + self.presumed

    @property
    def legit_kept(self) -> int:
        return int((self.sample.rows[LABEL] == 0).sum())


NO_PRODUCTION = ProductionSample(
    WeightedRows(pd.DataFrame(columns=list(COLUMNS)), np.ones(0)), 0, 0
)


def sample_production(
    chunks: Iterable[pd.DataFrame], max_legit: int, seed: int = SAMPLE_SEED
) -> ProductionSample:
    """Every fraud of the `chunks` and `max_legit` legitimate rows drawn uniformly (a
    reservoir: each row gets a seeded random key, the smallest keys stay), so memory holds one
    chunk and the sample whatever the stream's length. A `source` column (mature rows) is
    counted (review, chargeback, presumed) and dropped; without it every row is labelled."""
    rng = np.random.default_rng(seed)
    frauds: list[pd.DataFrame] = []
    kept, keys = pd.DataFrame(columns=list(COLUMNS)), np.empty(0)
    labelled = legit = 0
    sources: Counter[str] = Counter()
    for chunk in chunks:
        if "source" in chunk:
            sources.update(chunk["source"].astype(str))
            chunk = chunk.drop(columns="source")
        is_fraud = (chunk[LABEL] == 1).to_numpy()
        labelled += len(chunk)
        legit += int((~is_fraud).sum())
        frauds.append(chunk[is_fraud])
        pool = (
            pd.concat([kept, chunk[~is_fraud]], ignore_index=True)
            if len(kept)
            else chunk[~is_fraud]
        )
        pool_keys = np.concatenate([keys, rng.random(int((~is_fraud).sum()))])
        if len(pool) > max_legit:
            # Sorted back into arrival order, so the sample does not depend on chunk size.
            smallest = np.sort(np.argpartition(pool_keys, max_legit)[:max_legit])
            pool, pool_keys = pool.iloc[smallest], pool_keys[smallest]
        kept, keys = pool.reset_index(drop=True), pool_keys
    if not labelled:
        return NO_PRODUCTION
    rows = pd.concat([*frauds, kept], ignore_index=True).loc[:, list(COLUMNS)]
    n_frauds = labelled - legit
    weights = np.concatenate([np.ones(n_frauds), np.full(len(kept), legit / max(len(kept), 1))])
    presumed = sources[PRESUMED]
    return ProductionSample(
        WeightedRows(rows, weights),
        labelled - presumed,
        legit,
        reviewed=sources["review"],
        chargebacks=sources["chargeback"],
        presumed=presumed,
    )


def mature_production_rows(
    sink: PredictionSink,
    lookback_days: float,
    maturity_days: float,
    max_legit: int = MAX_PRODUCTION_LEGIT,
) -> ProductionSample:
    """The production rows of the `lookback_days` before the label horizon (`maturity_days`
    ago; none for a lookback of 0 or less), as a bounded sample: labelled ones with their
    label, unlabelled ones presumed legitimate. Younger rows never join: an unlabelled one is
    not known to be legitimate, and the labelled ones are mostly reviewed alerts, no sample
    of the legitimate traffic. PredictionLogError when the log cannot be read."""
    if lookback_days <= 0:
        return NO_PRODUCTION
    until = utc_now() - timedelta(days=maturity_days)
    chunks = sink.labelled_chunks(until - timedelta(days=lookback_days), until=until)
    return replace(sample_production(chunks, max_legit), horizon_days=maturity_days)


def with_production_rows(
    df: pd.DataFrame,
    production: ProductionSample,
    *,
    holdout: Holdout | None = None,
    min_samples: int = MIN_SAMPLES,
) -> ProductionSample:
    """The sampled production rows that may join training: strictly earlier (Time) than the
    holdout (`size_holdout(df)` unless given) and not already in the dataset; validated with
    the dataset when any remain.

    A replay of the dataset through the service (`fraud simulate`) logs rows the dataset
    already has: counting them twice would tilt the model toward them. Weighted rows never
    enter the holdout, which scores both models on rows as they occur.
    """
    rows = production.sample.rows
    if rows.empty:
        return production
    share = (holdout or size_holdout(df)).share
    holdout_start = time_split(df, 1 - share)[1]["Time"].min()
    known = df.loc[:, list(COLUMNS)].drop_duplicates()
    merged = rows.merge(known, on=list(COLUMNS), how="left", indicator=True)
    keep = ((merged["_merge"] == "left_only") & (merged["Time"] < holdout_start)).to_numpy()
    sample = WeightedRows(rows[keep].reset_index(drop=True), production.sample.weights[keep])
    if keep.any():
        validate(pd.concat([df, sample.rows], ignore_index=True), min_samples=min_samples)
    return replace(production, sample=sample)


@dataclass(frozen=True)
class HoldoutScores:
    """Both models scored by ONNX, as served, on the same holdout rows, each at its own
    threshold: metrics (the champion's with its `version`) and per-row fraud probabilities."""

    labels: NDArray[np.int8]
    challenger: dict[str, Any]
    challenger_scores: NDArray[np.float64]
    champion: dict[str, Any] | None = None
    champion_scores: NDArray[np.float64] | None = None


def score_model(
    onnx_bytes: bytes, threshold: float, holdout: pd.DataFrame
) -> tuple[dict[str, Any], NDArray[np.float64]]:
    """Holdout metrics of one ONNX model at `threshold`, and its scores."""
    session = onnx_session(onnx_bytes, threads=0)
    x, y = features_and_label(holdout)
    scores = onnx_fraud_probability(session, x).astype(np.float64)
    amounts = x[:, FEATURES.index("Amount")]
    metrics = classification_metrics(y, scores, threshold, amounts=amounts)
    intervals = bootstrap.metric_intervals(y, scores, threshold, amounts=amounts)
    return {**metrics, "threshold": threshold, "ci": intervals}, scores


def score_champion(
    registry: Registry, holdout: pd.DataFrame
) -> tuple[dict[str, Any], NDArray[np.float64]]:
    """Holdout metrics of the champion (verified artifacts) with its version, and its scores."""
    manifest = registry.manifest(CHAMPION)
    version = str(manifest["version"])
    onnx_bytes = registry.read_file(version, "model.onnx")
    metrics, scores = score_model(onnx_bytes, float(manifest["threshold"]), holdout)
    return {**metrics, "version": version}, scores


def score_on_holdout(
    challenger: TrainedModel, registry: Registry, holdout: pd.DataFrame
) -> HoldoutScores:
    """The challenger and the registry's champion, if any, scored on the same `holdout` rows."""
    threshold = float(challenger.manifest["threshold"])
    metrics, scores = score_model(challenger.files["model.onnx"], threshold, holdout)
    result = HoldoutScores(features_and_label(holdout)[1], metrics, scores)
    if CHAMPION not in registry.aliases():
        return result
    champion, champion_scores = score_champion(registry, holdout)
    return replace(result, champion=champion, champion_scores=champion_scores)


@dataclass(frozen=True)
class RetrainResult:
    """The decision, the numbers behind it, and the report."""

    decision: Decision
    champion: dict[str, Any] | None
    challenger: dict[str, Any]
    version: str | None
    report: str
    gain: Gain | None = None
    pr_curves: bytes | None = None
    """Both PR curves as PNG (not drawn on a dry run); `report` does not link it."""


def retrain(
    df: pd.DataFrame,
    registry: Registry,
    rule: PromotionRule,
    *,
    source: str,
    holdout: Holdout | None = None,
    dry_run: bool = False,
    on_trees: TreeCallback | None = None,
    production: ProductionSample = NO_PRODUCTION,
    algorithm: Algorithm | Literal["auto"] = "rf",
    options: TrainingOptions | None = None,
    rollout: Callable[[str, str], object] | None = None,
) -> RetrainResult:
    """Train a challenger on all but the holdout's rows (`size_holdout(df)` unless given) and
    the weighted `production` rows (from `with_production_rows`), score both there, decide.
    With `rollout`, a challenger that wins against a champion is staged and handed to it
    (version, reason) to take the traffic in steps, instead of being promoted at once.

    Nothing is written before the challenger is complete, so a crash leaves the champion as is.
    With `algorithm="auto"` every family is trained and the best on validation (history
    only, never the holdout) is kept.
    """
    sized = holdout or size_holdout(df)
    history, holdout_rows = time_split(df, 1 - sized.share)
    base = replace(options or TrainingOptions(), history_fraction=1 - sized.share)
    if algorithm == "auto":
        trained, family_note = train_best_family(
            df,
            base,
            source=source,
            model_name=registry.name,
            on_trees=on_trees,
            extra_fit=production.sample,
        )
    else:
        trained = train_on(
            history,
            holdout_rows,
            replace(base, algorithm=algorithm),
            data=with_extra_rows(df, production.sample),
            source=source,
            model_name=registry.name,
            on_trees=on_trees,
            extra_fit=production.sample,
        )
        family_note = f"family `{algorithm}` (--algorithm)"
    scored = score_on_holdout(trained, registry, holdout_rows)
    champion, challenger = scored.champion, scored.challenger
    gain: Gain | None = None
    compare = rule.paired_bootstrap and not rule.force
    if compare and champion is not None and scored.champion_scores is not None:
        gain = paired_gain(
            scored.labels,
            (scored.champion_scores, float(champion["threshold"])),
            (scored.challenger_scores, float(challenger["threshold"])),
            metric=rule.gate_metric,
            min_confidence=rule.min_confidence,
        )
    decision = decide(champion, challenger, rule, gain)
    details = {
        "decision": asdict(decision),
        "rule": asdict(rule),
        "champion": champion,
        "challenger": challenger,
        "holdout_rows": len(holdout_rows),
        "holdout_frauds": int(scored.labels.sum()),
        "holdout_share": round(sized.share, 4),
        "holdout_frauds_wanted": sized.wanted,
        "production_rows": production.rows,
        "production_labelled": production.labelled,
        "production_legit_kept": production.legit_kept,
        "production_legit": production.legit,
        "production_mature": production.mature,
        "production_reviewed": production.reviewed,
        "production_chargebacks": production.chargebacks,
        "production_presumed": production.presumed,
        "family": family_note,
        "paired_gain": asdict(gain) if gain else None,
    }
    report = retrain_report(
        decision,
        rule,
        champion,
        challenger,
        len(holdout_rows),
        source,
        production,
        gain=gain,
        family_note=family_note,
        holdout_note=sized.note(scored.labels),
    )
    if dry_run:
        return RetrainResult(decision, champion, challenger, None, report, gain)
    curves = {"challenger": (scored.labels, scored.challenger_scores, challenger["pr_auc"])}
    if champion is not None and scored.champion_scores is not None:
        label = f"champion v{champion['version']}"
        curves = {label: (scored.labels, scored.champion_scores, champion["pr_auc"]), **curves}
    files = dict(trained.files)
    pr_curves = plot_pr_curves(curves, "Holdout: champion vs challenger")
    files["retrain_pr_curves.png"] = pr_curves
    files["retrain_report.md"] = with_pr_curves(report, "retrain_pr_curves.png").encode()
    manifest = registry.register(
        files, {**trained.manifest, "retraining": details}, reason="retrain"
    )
    version = str(manifest["version"])
    if rollout is not None and decision.action == "promote" and champion is not None:
        registry.stage(version, reason=decision.reason, details=details)
        rollout(version, decision.reason)
    else:
        act = registry.promote if decision.action == "promote" else registry.stage
        act(version, reason=decision.reason, details=details)
    return RetrainResult(decision, champion, challenger, version, report, gain, pr_curves)


@dataclass(frozen=True)
class RetrainOptions:
    """What one retraining run may vary (`fraud retrain`'s options); the defaults are the
    product's, which the weekly job and a drift-triggered retrain use."""

    rule: PromotionRule = PromotionRule()
    algorithm: Algorithm | Literal["auto"] = "rf"
    holdout_fraction: float = HOLDOUT_FRACTION
    holdout_frauds: int = HOLDOUT_FRAUDS
    lookback_days: float = LOOKBACK_DAYS
    """The production rows of this many days before the label horizon join training; 0:
    none."""
    max_production_legit: int = MAX_PRODUCTION_LEGIT
    min_samples: int = MIN_SAMPLES
    dry_run: bool = False
    """Train and compare, write nothing to the store."""
    report_path: Path | None = None
    """Also write the report here, its PR curves beside it."""
    rollout: bool = False
    """A challenger that beats the champion starts a rollout (`fraud rollout`, default steps
    and limits) instead of being promoted at once."""


@dataclass(frozen=True)
class RetrainRun:
    """One run: its result, the production rows it trained on (or why it could not read any),
    and the MLflow mirror's report (None when there is no mirror or nothing was written)."""

    result: RetrainResult
    production: ProductionSample
    production_error: str | None = None
    mirror: MirrorReport | None = None
    rollout: Rollout | None = None
    """The rollout the run started (with `RetrainOptions.rollout`), if it started one."""


def run_retrain(
    registry: Registry,
    data: pd.DataFrame,
    options: RetrainOptions = RetrainOptions(),
    *,
    source: str,
    sink: PredictionSink,
    maturity_days: float,
    tracking_uri: str = "",
    commit: str = "",
    on_trees: TreeCallback | None = None,
) -> RetrainRun:
    """One retraining run on the validated dataset `data` (from `source`): size the holdout,
    add the mature production rows of `sink` (older than `maturity_days`; none, with the
    reason, when it cannot be read), train and decide (`retrain`), mirror the store into
    MLflow at `tracking_uri`, and write the report to `options.report_path`. `commit` is
    recorded as the code revision."""
    holdout = size_holdout(data, options.holdout_fraction, options.holdout_frauds)
    sample, error = NO_PRODUCTION, None
    try:
        sample = mature_production_rows(
            sink, options.lookback_days, maturity_days, options.max_production_legit
        )
    except PredictionLogError as exc:
        error = str(exc)
    production = with_production_rows(
        data, sample, holdout=holdout, min_samples=options.min_samples
    )
    started: list[Rollout] = []

    def start_rollout(version: str, reason: str) -> None:
        reason = f"fraud retrain --rollout: {reason}"
        now = datetime.now(UTC)
        started.append(
            begin(registry, version, steps=DEFAULT_STEPS, limits=Limits(), now=now, reason=reason)
        )

    result = retrain(
        data,
        registry,
        options.rule,
        source=source,
        holdout=holdout,
        dry_run=options.dry_run,
        on_trees=on_trees,
        production=production,
        algorithm=options.algorithm,
        options=TrainingOptions(commit=commit),
        rollout=start_rollout if options.rollout else None,
    )
    mirror = sync(registry, tracking_uri) if tracking_uri and not options.dry_run else None
    if options.report_path:
        save_report(result, options.report_path)
    return RetrainRun(result, production, error, mirror, started[0] if started else None)


def save_report(result: RetrainResult, path: Path) -> None:
    """Write the report to `path`, with the PR curves beside it when there are any, so its
    image link resolves."""
    report = result.report
    if result.pr_curves is not None:
        plot = path.with_name(f"{path.stem}_pr_curves.png")
        plot.write_bytes(result.pr_curves)
        report = with_pr_curves(report, plot.name)
    path.write_text(report)


def production_note(production: ProductionSample) -> str:
    """How many production rows joined, of how many, how they were weighted, and how their
    classes are known."""
    legit_kept = production.legit_kept
    weight = float(production.sample.weights.max())
    noun = "mature" if production.presumed else "labelled"
    return (
        f" plus {production.rows:,} {noun} production rows from the prediction log (kept "
        f"{production.rows:,} of {production.mature:,}: every fraud, {legit_kept:,} "
        f"legitimate rows sampled from {production.legit:,} and weighted {weight:.2f}x; only "
        f"rows earlier than the holdout and not already in the dataset){provenance(production)}"
    )


def provenance(production: ProductionSample) -> str:
    """How the production rows' classes are known: empty for labelled rows of any age."""
    if production.horizon_days is None:
        return ""
    p = production
    return (
        f"; mature rows only (older than the {p.horizon_days:g}-day label horizon): "
        f"{p.mature:,}, of them {p.reviewed:,} reviewed, {p.chargebacks:,} charged back, "
        f"{p.labelled - p.reviewed - p.chargebacks:,} labelled otherwise and {p.presumed:,} "
        "presumed legitimate"
    )


def retrain_report(
    decision: Decision,
    rule: PromotionRule,
    champion: dict[str, Any] | None,
    challenger: dict[str, Any],
    holdout_rows: int,
    source: str,
    production: ProductionSample = NO_PRODUCTION,
    *,
    gain: Gain | None = None,
    family_note: str = "",
    holdout_note: str = "",
) -> str:
    """Markdown: both models side by side on the same holdout with their intervals, the
    paired gain's distribution, the decision and the rule."""
    head = "| metric | champion [95% interval] | challenger [95% interval] | change |"
    rows = [head, "|---|---:|---:|---:|"]
    for key in bootstrap.BOOTSTRAPPED:
        new = challenger.get(key)
        old = champion.get(key) if champion else None
        change = f"{new - old:+.4f}" if old is not None and new is not None else "-"
        old_ci = champion.get("ci", {}).get(key) if champion else None
        new_ci = challenger.get("ci", {}).get(key)
        rows.append(
            f"| {key} | {with_interval(old, old_ci)} | {with_interval(new, new_ci)} | {change} |"
        )
    frauds = challenger.get("frauds")
    budget = challenger.get("alert_budget_per_10k", bootstrap.ALERT_BUDGET)
    return "\n".join(
        [
            "# Retraining report",
            "",
            f"Data `{source}`"
            + (production_note(production) if production.rows else "")
            + f"; both models scored on the same most recent {holdout_rows:,} rows"
            + (f" ({frauds} frauds)" if frauds is not None else "")
            + ".",
            "",
            *([f"Holdout: {holdout_note}.", ""] if holdout_note else []),
            *([f"Challenger: {family_note}.", ""] if family_note else []),
            *rows,
            "",
            f"Intervals: 95% bootstrap, {bootstrap.RESAMPLES:,} resamples stratified by class. "
            f"recall_at_budget: share of frauds among the top {budget:g} alerts per 10,000 "
            "transactions.",
            "",
            *_gain_section(gain, rule),
            f"**Decision: {decision.action}.** {decision.reason}",
            "",
            f"Rule: promote when challenger F1 >= champion F1 + {rule.min_improvement} and "
            f"precision drops by no more than {rule.max_precision_drop}"
            + (
                f", and the paired-bootstrap {rule.gate_metric} gain's lower bound at "
                f"{rule.min_confidence:.0%} confidence is above zero"
                if rule.paired_bootstrap
                else " (SPEC rule alone: --rule-only)"
            )
            + f"; otherwise stage as challenger"
            f"{' (forced promotion requested)' if rule.force else ''}.",
            "",
        ]
    )


def _gain_section(gain: Gain | None, rule: PromotionRule) -> list[str]:
    """The paired gain's distribution as a table of quantiles, when it was computed."""
    if gain is None:
        return []
    quantiles = " | ".join(f"{float(q):.1%}" for q in gain.quantiles)
    values = " | ".join(f"{v:+.4f}" for v in gain.quantiles.values())
    return [
        f"## Paired bootstrap: challenger minus champion ({gain.metric})",
        "",
        f"Both models scored on the same {gain.resamples:,} resamples of the holdout; the "
        f"decision rests on **{gain.frauds} frauds** in {gain.rows:,} rows.",
        "",
        f"| quantile | {quantiles} |",
        "|---|" + "---:|" * len(gain.quantiles),
        f"| gain | {values} |",
        "",
        f"Point gain {gain.gain:+.4f}; {gain.share_positive:.1%} of resamples above zero; lower "
        f"bound at {gain.min_confidence:.0%} confidence {gain.lower_bound:+.4f} "
        f"({'above' if gain.believed else 'not above'} zero).",
        "",
    ]


def with_pr_curves(report: str, plot_name: str) -> str:
    """The report with its PR-curves image, for a report saved beside `plot_name`."""
    return f"{report}\n![PR curves]({plot_name})\n"
