"""Population stability and the drift rule (SPEC 8): what `fraud monitor` decides, as pure maths."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..reference import bin_counts, shares_of_counts
from ..schema import FEATURES
from .estimation import Estimation
from .live import Tally, metrics_of, with_rates_of
from .maturity import (
    Cohort,
    Horizon,
    Reviews,
    Settled,
    completeness,
    review_figures,
    settled_figures,
)
from .status import Estimate, Figure, Status, ratio, with_estimates
from .window import WindowCounts, count_frame

PSI_EPSILON = 1e-4
"""Floor for a bin's share before the log ratio: an empty bin would make PSI infinite. 1e-4
is below one row's share in any window we judge (min_rows 1000), so a bin holding a single
live row still counts (it adds ~0.001), while a reference decile (0.1) that empties
completely adds 0.1 * ln(1000) = 0.69 and fires on its own, as it should."""

RATE_BAND = (0.25, 4.0)
"""Default fraud-rate band, as factors of the reference's predicted fraud rate. Wide on
purpose: the rate is a rare count that swings with fraud waves, so only an order-of-magnitude
change (a model flagging nothing, or flagging everything) should page someone."""

TIME_SKIP_REASON = (
    "seconds since the dataset's first transaction: every live row lies past the reference "
    "range, so its PSI is always huge and says nothing (the model does not use Time)"
)
NOT_A_MODEL_FEATURE = "not used by the model"


def psi(reference_proportions: Sequence[float], edges: Sequence[float], values: ArrayLike) -> float:
    """Population Stability Index of `values` against the reference's bins (0 = same shape)."""
    edges_arr = np.asarray(edges, dtype=np.float64)
    if len(reference_proportions) != len(edges_arr) + 1:
        raise ValueError(f"{len(edges_arr)} edges need {len(edges_arr) + 1} proportions")
    # The same binning as the reference was built with, so the bins line up exactly.
    live = np.asarray(values, dtype=np.float64)
    return psi_of_counts(reference_proportions, bin_counts(live, edges_arr))


def psi_of_counts(reference_proportions: Sequence[float], counts: ArrayLike) -> float:
    """PSI of live rows counted per reference bin against the reference's shares."""
    expected = np.asarray(reference_proportions, dtype=np.float64)
    live = np.asarray(counts, dtype=np.int64)
    if len(expected) != len(live):
        raise ValueError(f"{len(live)} bins counted against {len(expected)} proportions")
    if live.sum() == 0:
        raise ValueError("PSI of no values is undefined")
    actual = np.asarray(shares_of_counts(live))
    expected, actual = np.maximum(expected, PSI_EPSILON), np.maximum(actual, PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class DriftRule:
    """When `fraud monitor` flags drift (SPEC 8); None means "derive from the champion"."""

    baseline_f1: float | None = None
    """None: the champion manifest's test F1."""
    baseline_recall: float | None = None
    """None: the champion manifest's test recall (judged only against the estimate)."""
    alert_threshold: float = 0.1
    fraud_rate_low: float | None = None
    """None: RATE_BAND[0] x the reference's predicted fraud rate."""
    fraud_rate_high: float | None = None
    """None: RATE_BAND[1] x the reference's predicted fraud rate."""
    max_fpr: float = 0.001
    """7x the measured test FPR (0.00014); at 0.01 the model could raise 70x its false
    alarms, ~570 extra reviews per 57k transactions, before anything fired."""
    max_fnr: float = 0.5
    """The champion misses ~25% of frauds on the test slice; missing half is a failure."""
    psi_threshold: float = 0.2
    min_labelled: int = 1000
    """FPR is only judged on this many labelled rows: at max_fpr 0.001 it then takes two
    false alarms to fire, which chance alone produces ~1% of the time at the measured FPR."""
    min_labelled_frauds: int = 50
    """F1 and FNR are only judged on this many labelled frauds: simulated at the champion's
    test precision/recall, a healthy model falls 0.1 below its F1 by chance 10% of the time
    with 20 frauds, 6% with 30, 2% with 50 (the whole new-data slice holds 75)."""
    min_rows: int = 1000
    """PSI is only judged on this many rows (its sampling noise is about bins/rows, ~0.01)."""
    min_flags: float = 10.0
    """The band only fires on counts chance cannot fake: above it needs this many flagged
    rows, below it a window expecting this many at the reference rate. Measured: a 1,018-row
    slice of the real new data held 4 flags (0.39%), above x4 the reference rate, by chance;
    with 10 expected, chance gives fewer than a quarter of them 0.3% of the time."""

    def resolved(self, reference: Mapping[str, Any], manifest: Mapping[str, Any]) -> "DriftRule":
        """This rule with every None default filled in from the champion's files."""
        rate = float(reference.get("predicted_fraud_rate", 0.0))
        test = manifest.get("metrics", {}).get("test", {})
        return replace(
            self,
            baseline_f1=self._or(self.baseline_f1, test.get("f1")),
            baseline_recall=self._or(self.baseline_recall, test.get("recall")),
            fraud_rate_low=self._or(self.fraud_rate_low, RATE_BAND[0] * rate),
            fraud_rate_high=self._or(self.fraud_rate_high, RATE_BAND[1] * rate),
        )

    @staticmethod
    def _or(value: float | None, default: float | None) -> float | None:
        return default if value is None else value


@dataclass(frozen=True)
class MonitorResult:
    """Everything one monitoring run measured and decided."""

    model_version: str
    start: datetime | None
    end: datetime | None
    metrics: dict[str, Any]
    reference_fraud_rate: float
    feature_psi: dict[str, float | None]
    """PSI of every model feature; None when the window has too few rows."""
    skipped_features: dict[str, str]
    """Features left out of the drift rule, with why (Time; any feature the model ignores)."""
    skipped_psi: dict[str, float]
    """PSI of the skipped features, shown in the report but never judged or pushed."""
    score_psi: float | None
    score_rows: int
    rule: DriftRule
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Checks that could not be judged on this window, and why."""
    figures: dict[str, Figure] = field(default_factory=dict)
    """Every figure with how it is known: measured, estimated or unknown (and why)."""
    horizon: Horizon | None = None
    """The moment judged as of and the label maturity; None: a labelled frame judged whole."""
    settled: Settled | None = None
    reviews: Reviews = field(default_factory=Reviews)
    cohorts: tuple[Cohort, ...] = ()
    estimation: Estimation | None = None
    """Precision, recall and F1 estimated from calibrated scores, and their judgement."""

    @property
    def drift_detected(self) -> bool:
        return bool(self.reasons)

    def with_estimation(self, estimation: Estimation) -> "MonitorResult":
        """This result with its estimation: estimates beside the figures measured on the
        same (mature) rows, in place of the unknown ones, and the rule's judgement of them."""
        figures = self.figures
        beside = {n: e for n, e in estimation.mature.items() if n in figures
                  and figures[n].status is Status.MEASURED}  # fmt: skip
        instead = {n: e for n, e in estimation.window.items()
                   if n not in figures or figures[n].status is Status.UNKNOWN}  # fmt: skip
        return replace(
            self.with_estimates({**beside, **instead}),
            estimation=estimation,
            reasons=self.reasons + estimation.reasons,
            notes=self.notes + estimation.notes,
        )

    def with_estimates(self, estimates: Mapping[str, Estimate]) -> "MonitorResult":
        """This result with label-free estimates beside (or, where unknown, in place of) the
        measured figures."""
        return replace(self, figures=with_estimates(self.figures, estimates))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for `fraud monitor --json`."""
        return {
            "model_version": self.model_version,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "metrics": self.metrics,
            "reference_fraud_rate": self.reference_fraud_rate,
            "feature_psi": self.feature_psi,
            "score_psi": self.score_psi,
            "score_rows": self.score_rows,
            "skipped_features": {
                name: {"reason": why, "psi": self.skipped_psi.get(name)}
                for name, why in self.skipped_features.items()
            },
            "rule": asdict(self.rule),
            "drift_detected": self.drift_detected,
            "reasons": self.reasons,
            "notes": self.notes,
            "figures": {name: figure.to_json() for name, figure in self.figures.items()},
            "as_of": self.horizon.as_of.isoformat() if self.horizon else None,
            "label_maturity_days": self.horizon.days if self.horizon else None,
            "mature_window": self.settled.to_json() if self.settled else None,
            "reviews": asdict(self.reviews),
            "cohorts": [cohort.to_json() for cohort in self.cohorts],
            "estimation": self.estimation.to_json() if self.estimation else None,
        }


def _skipped_features(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Features the drift rule ignores: Time always, and any the model was not trained on."""
    used = set(manifest.get("model_features", FEATURES))
    skipped = {name: NOT_A_MODEL_FEATURE for name in FEATURES if name not in used}
    skipped["Time"] = TIME_SKIP_REASON
    return skipped


def _performance_reasons(
    m: Mapping[str, Any], evidence: Tally, rule: DriftRule, scope: str
) -> tuple[list[str], list[str]]:
    """Drift reasons and not-judged notes from the rates of the rows whose class is known
    (`evidence`; `scope` says which rows those are)."""
    reasons: list[str] = []
    notes: list[str] = []
    frauds = evidence.tp + evidence.fn
    labelled = frauds + evidence.tn + evidence.fp
    if frauds < rule.min_labelled_frauds:
        notes.append(
            f"F1 and FNR not judged: not enough labels ({frauds} labelled frauds{scope}, "
            f"need {rule.min_labelled_frauds})"
        )
    else:
        if rule.baseline_f1 is None:
            notes.append("F1 not judged: no baseline F1 (champion manifest has no test F1)")
        elif m["f1"] is not None and m["f1"] < rule.baseline_f1 - rule.alert_threshold:
            reasons.append(
                f"F1 {m['f1']:.3f} < {rule.baseline_f1 - rule.alert_threshold:.3f} "
                f"(baseline {rule.baseline_f1:.3f} - {rule.alert_threshold:.3f})"
            )
        if m["fnr"] is not None and m["fnr"] > rule.max_fnr:
            reasons.append(f"FNR {m['fnr']:.3f} > {rule.max_fnr:.3f}")
    if labelled < rule.min_labelled:
        notes.append(
            f"FPR not judged: not enough labels ({labelled:,} labelled rows{scope}, "
            f"need {rule.min_labelled:,})"
        )
    elif m["fpr"] is not None and m["fpr"] > rule.max_fpr:
        reasons.append(f"FPR {m['fpr']:.5f} > {rule.max_fpr:.5f}")
    return reasons, notes


def _rate_reasons(
    m: Mapping[str, Any], reference_rate: float, rule: DriftRule
) -> tuple[list[str], list[str]]:
    """Drift reasons and notes for the predicted fraud rate against its band."""
    rate, rows, flags = m["predicted_fraud_rate"], m["rows"], m["flagged"]
    low, high = rule.fraud_rate_low or 0.0, rule.fraud_rate_high or 0.0
    band = f"band {low:.4%}..{high:.4%}"
    if rate is not None and rate > high and flags >= rule.min_flags:
        return [f"predicted fraud rate {rate:.4%} above {band} ({flags:,} of {rows:,})"], []
    expected = rows * reference_rate
    if expected < rule.min_flags:
        return [], [
            f"fraud rate below the band not judged: {rows:,} rows expect {expected:.1f} flags "
            f"at the reference rate, need {rule.min_flags:g}"
        ]
    if rate is not None and rate < low:
        return [f"predicted fraud rate {rate:.4%} below {band} ({flags:,} of {rows:,})"], []
    return [], []


def _feature_psi(
    counts: WindowCounts, reference: Mapping[str, Any], names: Sequence[str], enough: bool
) -> dict[str, float | None]:
    """PSI of each named feature present in the reference (None when rows are too few)."""
    profiles = reference["features"]
    return {
        name: psi_of_counts(profiles[name]["proportions"], counts.feature_counts[name])
        if enough
        else None
        for name in names
        if name in profiles
    }


def evaluate(
    window: pd.DataFrame,
    reference: Mapping[str, Any],
    manifest: Mapping[str, Any],
    rule: DriftRule = DriftRule(),
    *,
    period: tuple[datetime, datetime] | None = None,
) -> MonitorResult:
    """`judge` every row of a window in memory; `period` defaults to the rows' time range."""
    if period is None and len(window):
        created = pd.to_datetime(window["created_at"], utc=True)
        period = (created.min().to_pydatetime(), created.max().to_pydatetime())
    counts = count_frame(window, reference, str(manifest["version"]))
    return judge(counts, reference, manifest, rule, period=period)


def figures_of(counts: WindowCounts, horizon: Horizon | None) -> dict[str, Figure]:
    """Every figure of a window with its status. The rates are measured on the mature window
    when judged as of a moment, on the labelled rows of a frame judged whole."""
    served = counts.served
    figures = {
        "predicted_fraud_rate": ratio(
            served.flagged, served.rows, f"{served.rows:,} rows", "no rows in the window"
        ),
        **review_figures(counts.reviews),
    }
    if counts.settled is None or horizon is None:
        figures.update(settled_figures(served, "no labelled rows in the window"))
    else:
        s = counts.settled
        days = horizon.days
        figures.update(
            settled_figures(
                s.tally,
                f"no mature rows: none of the window's rows is older than the {days:g}-day "
                f"label horizon (the mature window {s.start:%Y-%m-%d %H:%M} → "
                f"{s.end:%Y-%m-%d %H:%M} UTC is empty)",
            )
        )
    labelled = served.tn + served.fp + served.fn + served.tp
    known = labelled if counts.known is None else counts.known
    figures["label_completeness"] = completeness(served.rows, known)
    return figures


def judge(
    counts: WindowCounts,
    reference: Mapping[str, Any],
    manifest: Mapping[str, Any],
    rule: DriftRule = DriftRule(),
    *,
    period: tuple[datetime, datetime] | None = None,
    horizon: Horizon | None = None,
) -> MonitorResult:
    """Live metrics, PSI per feature and of the score, and every reason to flag drift, from
    a window's counts; `period` is the lookback window for the report. Judged as of a moment
    (`horizon`, with `counts.settled`), the rates and the drift rule's judgement of them come
    from the mature window only."""
    rule = rule.resolved(reference, manifest)
    version = str(manifest["version"])
    metrics = metrics_of(counts.served)
    evidence, scope = counts.served, ""
    if counts.settled is not None:
        evidence, scope = counts.settled.tally, " among the mature rows"
        metrics = {**with_rates_of(metrics, evidence), "mature": counts.settled.to_json()}
    reference_rate = float(reference.get("predicted_fraud_rate", 0.0))
    rows = counts.served.rows
    enough_rows = rows >= rule.min_rows

    skipped = _skipped_features(manifest)
    judged = [name for name in FEATURES if name not in skipped]
    feature_psi = _feature_psi(counts, reference, judged, enough_rows)
    skipped_psi = {
        name: value
        for name, value in _feature_psi(counts, reference, list(skipped), enough_rows).items()
        if value is not None
    }

    # Scores are comparable to the reference only when the same model produced them.
    score_psi = (
        psi_of_counts(reference["score"]["proportions"], counts.score_counts)
        if counts.scored >= rule.min_rows
        else None
    )

    reasons, notes = _performance_reasons(metrics, evidence, rule, scope)
    rate_reasons, rate_notes = _rate_reasons(metrics, reference_rate, rule)
    reasons += rate_reasons
    notes += rate_notes
    if not enough_rows:
        notes.append(f"feature PSI not judged: {rows:,} rows, need {rule.min_rows:,}")
    for name, value in sorted(feature_psi.items(), key=lambda kv: -(kv[1] or 0.0)):
        if value is not None and value > rule.psi_threshold:
            reasons.append(f"PSI of {name} {value:.3f} > {rule.psi_threshold:g}")
    if score_psi is None:
        notes.append(
            f"score PSI not judged: {counts.scored:,} rows scored by version {version}, "
            f"need {rule.min_rows:,}"
        )
    elif score_psi > rule.psi_threshold:
        reasons.append(f"PSI of the score {score_psi:.3f} > {rule.psi_threshold:g}")

    return MonitorResult(
        model_version=version,
        start=period[0] if period else None,
        end=period[1] if period else None,
        metrics=metrics,
        reference_fraud_rate=reference_rate,
        feature_psi=feature_psi,
        skipped_features=skipped,
        skipped_psi=skipped_psi,
        score_psi=score_psi,
        score_rows=counts.scored,
        rule=rule,
        reasons=reasons,
        notes=notes,
        figures=figures_of(counts, horizon),
        horizon=horizon,
        settled=counts.settled,
        reviews=counts.reviews,
        cohorts=counts.cohorts,
    )
