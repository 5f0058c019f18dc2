"""Precision, recall and F1 of a window estimated from calibrated scores alone, before any
label arrives (confidence-based performance estimation, as NannyML's CBPE).

If a version's calibration map is right, a row scored s is fraud with probability p = map(s).
Over a window, the expected confusion counts are then sums of p: expected TP is the sum of p
over the flagged rows, FP the sum of 1 - p over them, FN the sum of p over the unflagged rows
and TN the sum of 1 - p over those; precision, recall, F1 and FPR follow as ratios of the
expected counts, and the expected frauds of the window are TP + FN.

Every map is piecewise linear in the score, so those sums need only each map segment's row
count and score sum, which the prediction sink adds up in the database (`ScoreSum`): memory
does not grow with the window. Each version's rows go through its own map.

The interval is the spread of the realised figure when each row's outcome is drawn from its
calibrated probability: the sampling of outcomes, and nothing else. It does not include the
map's own error (fitted on the validation part's frauds) nor any drift of calibration since
training; comparing the estimate with the measured figure on mature rows checks that.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..calibration import CalibrationMap
from ..prediction_sink import ScoreSum
from .status import Estimate

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
ESTIMATED = ("precision", "recall", "f1", "fpr", "fnr", "expected_frauds")


def segment_of(knots: Sequence[float], scores: NDArray[Any]) -> NDArray[np.int64]:
    """Each score's segment of a map with these knots: how many lie at or below it (0: below
    the first knot, len(knots): at or above the last); the sink's SQL places rows the same way."""
    return np.searchsorted(np.asarray(knots), np.asarray(scores, np.float64), side="right")


def expected_of_segment(cal: CalibrationMap, segment: int, rows: int, score_sum: float) -> float:
    """The sum of calibrated probabilities of `rows` scores in one segment whose sum is
    `score_sum`: exact, as the map is linear within a segment (constant outside the knots)."""
    x, y = cal.x, cal.y
    if segment <= 0:
        return rows * y[0]
    if segment >= len(x):
        return rows * y[-1]
    slope = (y[segment] - y[segment - 1]) / (x[segment] - x[segment - 1])
    return rows * y[segment - 1] + slope * (score_sum - rows * x[segment - 1])


@dataclass(frozen=True)
class Expected:
    """A window's expected confusion counts, and the groups of rows its outcomes are drawn
    from: (flagged, rows, mean calibrated probability) per segment of each version's map."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0
    groups: tuple[tuple[bool, int, float], ...] = ()
    methods: dict[str, str] = field(default_factory=dict)
    """The versions estimated and their map's method."""
    rows_by_version: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_version.values())

    @property
    def flagged(self) -> int:
        return sum(rows for flagged, rows, _ in self.groups if flagged)

    @property
    def frauds(self) -> float:
        return self.tp + self.fn


def expect(sums: Iterable[ScoreSum], maps: Mapping[str, CalibrationMap]) -> Expected:
    """The expected counts of the rows summed per (version, flagged, segment); versions
    without a map in `maps` are left out."""
    tp = fp = fn = tn = 0.0
    groups: list[tuple[bool, int, float]] = []
    rows_by_version: dict[str, int] = {}
    for s in sums:
        cal = maps.get(s.version)
        if cal is None or not s.rows:
            continue
        frauds = expected_of_segment(cal, s.segment, s.rows, s.score_sum)
        # Float sums can step a hair outside [0, rows]; the draws need a probability.
        frauds = min(max(frauds, 0.0), float(s.rows))
        if s.flagged:
            tp, fp = tp + frauds, fp + s.rows - frauds
        else:
            fn, tn = fn + frauds, tn + s.rows - frauds
        groups.append((s.flagged, s.rows, frauds / s.rows))
        rows_by_version[s.version] = rows_by_version.get(s.version, 0) + s.rows
    methods = {v: str(maps[v].method) for v in sorted(rows_by_version, key=_version_order)}
    return Expected(tp, fp, fn, tn, tuple(groups), methods, rows_by_version)


def score_sums_of_frame(
    frame: pd.DataFrame, knots: Mapping[str, Sequence[float]]
) -> list[ScoreSum]:
    """What a sink's `score_sums` computes, from served rows in memory (columns
    model_version, is_fraud and probability): the plain definition the SQL is tested against."""
    out: list[ScoreSum] = []
    for (version, flagged), group in frame.groupby(["model_version", "is_fraud"], sort=True):
        if str(version) not in knots:
            continue
        scores = group["probability"].to_numpy(np.float64)
        segments = segment_of(knots[str(version)], scores)
        for segment in np.unique(segments):
            inside = scores[segments == segment]
            out.append(
                ScoreSum(
                    str(version), bool(flagged), int(segment), len(inside), float(inside.sum())
                )
            )
    return out


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.full_like(num, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def rates(
    tp: NDArray[np.float64],
    fp: NDArray[np.float64],
    fn: NDArray[np.float64],
    tn: NDArray[np.float64],
) -> dict[str, NDArray[np.float64]]:
    """Each estimated figure of confusion counts (NaN where nothing divides)."""
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
        "expected_frauds": tp + fn,
    }


def draw_outcomes(
    expected: Expected, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, NDArray[np.float64]]:
    """Each figure over `resamples` draws of every row's outcome from its calibrated
    probability. A group's rows are drawn as one binomial at the group's mean probability:
    exact where the map is flat (isotonic's steps), and slightly wider than the rows'
    Poisson-binomial where it slopes (a binomial has the larger variance for the same mean)."""
    rng = np.random.default_rng(seed)
    caught = np.zeros(resamples)
    missed = np.zeros(resamples)
    flagged_rows = unflagged_rows = 0
    for flagged, rows, p in expected.groups:
        frauds = rng.binomial(rows, p, resamples).astype(np.float64)
        if flagged:
            caught += frauds
            flagged_rows += rows
        else:
            missed += frauds
            unflagged_rows += rows
    return rates(caught, flagged_rows - caught, missed, unflagged_rows - missed)


def estimates(
    expected: Expected, *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Estimate]:
    """The estimated figures with their `level` intervals, and what they rest on; none for a
    window without rows to estimate."""
    if not expected.rows:
        return {}
    e = expected
    point = rates(*(np.array([v], dtype=np.float64) for v in (e.tp, e.fp, e.fn, e.tn)))
    drawn = draw_outcomes(expected, resamples, seed)
    tail = (1 - level) / 2
    basis = (
        f"calibrated scores of {e.rows:,} rows ({_versions(e)}); {level:.0%} interval of "
        "outcomes drawn from the calibrated probabilities, not of the map's own error"
    )
    out = {}
    for name in ESTIMATED:
        value, draws = float(point[name][0]), drawn[name]
        draws = draws[~np.isnan(draws)]
        if np.isnan(value) or not len(draws):
            continue
        low, high = np.quantile(draws, [tail, 1 - tail])
        out[name] = Estimate(value, (float(low), float(high)), basis)
    return out


def _versions(e: Expected) -> str:
    return ", ".join(f"version {v}: {e.methods[v]} map" for v in e.methods)


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


CALIBRATION_LEVEL = 0.99
"""The measured figure of a mature window must fall outside the estimate's interval at this
level before calibration is called drifted: a calibrated model's own outcomes land outside it
once in a hundred windows, a daily monitor's false alarm about thrice a year per figure."""
JUDGED = ("f1", "recall")
"""The estimated figures the drift rule judges against their baselines."""
NAMES = {"f1": "F1", "recall": "recall"}


@dataclass(frozen=True)
class Estimation:
    """What performance estimation said of a monitoring run, and what it decided."""

    window: dict[str, Estimate] = field(default_factory=dict)
    """The judged window's estimated figures."""
    rows: int = 0
    """Rows of the window estimated."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Versions whose rows were not estimated, and why."""
    mature: dict[str, Estimate] = field(default_factory=dict)
    """Estimates of the mature window's rows, beside the figures measured on the same rows."""
    gaps: dict[str, float] = field(default_factory=dict)
    """Measured minus estimated, on the mature rows."""
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quality_low: bool = False
    """The drift rule fired on an estimated figure."""
    calibration_drift: bool | None = None
    """A measured figure fell outside the estimate's interval; None when not judged."""

    @property
    def unavailable(self) -> str | None:
        """Why the window has no estimate, or None."""
        if self.window:
            return None
        why = "; ".join(f"version {v}: {r}" for v, r in self.left_out.items())
        return "estimation unavailable: " + (why or "no rows in the window")

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {name: e.to_json() for name, e in self.window.items()},
            "rows": self.rows,
            "left_out": self.left_out,
            "unavailable": self.unavailable,
            "mature": {name: e.to_json() for name, e in self.mature.items()},
            "gaps": self.gaps,
            "quality_low": self.quality_low,
            "calibration_drift": self.calibration_drift,
        }


def estimation_of(
    window: Expected,
    served_rows: Mapping[str, int],
    missing: Mapping[str, str],
    *,
    baselines: Mapping[str, float | None],
    alert_threshold: float,
    mature: Expected | None = None,
    measured: Mapping[str, tuple[float | None, int]] | None = None,
) -> Estimation:
    """Estimate the window, and judge the estimates: "estimated F1 or recall fell below
    baseline minus the alert threshold", only when its interval excludes the baseline; and,
    beside figures measured on the mature window's rows (`measured`: value and the rows it
    rests on), whether calibration still holds.

    `served_rows`: the window's served rows per version; `missing`: why a version has no map.
    """
    left_out = {
        version: f"{rows:,} rows not estimated: {missing.get(version, 'no calibration map')}"
        for version, rows in served_rows.items()
        if rows > window.rows_by_version.get(version, 0)
    }
    out = Estimation(estimates(window), window.rows, left_out)
    reasons, notes = _quality_reasons(out.window, baselines, alert_threshold)
    if out.unavailable:
        notes.append(out.unavailable)
    elif left_out:
        notes.append(
            "estimates cover "
            f"{window.rows:,} of {sum(served_rows.values()):,} rows: "
            + "; ".join(f"version {v}: {why}" for v, why in left_out.items())
        )
    if mature is None or measured is None:
        return replace(out, reasons=reasons, notes=notes, quality_low=bool(reasons))
    beside = estimates(mature)
    check = estimates(mature, level=CALIBRATION_LEVEL)
    gaps = {
        name: value - beside[name].value
        for name, (value, _) in measured.items()
        if value is not None and name in beside
    }
    drift, more_notes, judged = _calibration_reasons(measured, check, mature.rows)
    return replace(
        out,
        mature=beside,
        gaps=gaps,
        reasons=reasons + drift,
        notes=notes + more_notes,
        quality_low=bool(reasons),
        calibration_drift=bool(drift) if judged else None,
    )


def _quality_reasons(
    window: Mapping[str, Estimate], baselines: Mapping[str, float | None], threshold: float
) -> tuple[list[str], list[str]]:
    reasons: list[str] = []
    notes: list[str] = []
    for name in JUDGED:
        estimate, baseline = window.get(name), baselines.get(name)
        if estimate is None or baseline is None or estimate.value >= baseline - threshold:
            continue
        low, high = estimate.interval or (estimate.value, estimate.value)
        text = (
            f"estimated {NAMES[name]} {estimate.value:.3f} [{low:.3f}, {high:.3f}] < "
            f"{baseline - threshold:.3f} (baseline {baseline:.3f} - {threshold:g})"
        )
        if high < baseline:
            reasons.append(f"{text}, its interval excludes the baseline")
        else:
            notes.append(f"{text} not judged: its interval reaches the baseline")
    return reasons, notes


def _calibration_reasons(
    measured: Mapping[str, tuple[float | None, int]],
    check: Mapping[str, Estimate],
    estimated_rows: int,
) -> tuple[list[str], list[str], bool]:
    """Calibration drift: a figure measured on the mature rows outside the estimate's
    CALIBRATION_LEVEL interval for the very same rows, over the whole mature window. Returns
    the reasons, the notes, and whether anything was judged."""
    reasons: list[str] = []
    judged = False
    for name in JUDGED:
        value, rows = measured.get(name, (None, 0))
        estimate = check.get(name)
        if value is None or estimate is None or estimate.interval is None:
            continue
        if rows != estimated_rows:
            return (
                [],
                [
                    f"calibration not judged: {estimated_rows:,} of the {rows:,} mature rows "
                    "have a calibration map"
                ],
                False,
            )
        judged = True
        low, high = estimate.interval
        if not low <= value <= high:
            reasons.append(
                f"calibration drift: measured {NAMES[name]} {value:.3f} on the {rows:,} mature "
                f"rows is outside the estimate's {CALIBRATION_LEVEL:.0%} interval [{low:.3f}, "
                f"{high:.3f}] (estimated {estimate.value:.3f}): the scores no longer say how "
                "often frauds occur, and the estimates of newer rows are off too"
            )
    return reasons, [], judged
