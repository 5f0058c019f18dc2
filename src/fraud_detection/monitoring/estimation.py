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
from dataclasses import dataclass, field
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
    point = rates(*(np.array([v]) for v in (e.tp, e.fp, e.fn, e.tn)))
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
