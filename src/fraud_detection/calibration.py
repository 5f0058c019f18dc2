"""The calibration map of a version: from its served fraud score to the probability that the
transaction is fraud, fitted on the validation part only and stored as data beside the model.

Serving never uses it: the served probability, the threshold and every answer stay the raw
score's. It exists so `fraud monitor` can estimate precision, recall and F1 from scores alone
before labels arrive (confidence-based performance estimation), and a forest's scores are not
probabilities: on the real test slice rows scored in [0.001, 0.2) are fraud 4 to 18 times less
often than their score says.

Every map is a piecewise-linear function of the score through knots (x, y), constant outside
them, so a window's expected frauds follow from each segment's row count and score sum, which
the database adds up (`monitoring.estimation`). Isotonic regression gives its knots directly
(they interpolate as scikit-learn's `IsotonicRegression.predict` does); Platt's sigmoid is
stored as its two coefficients and tabulated onto a fine grid of knots when applied.
"""

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from . import bootstrap
from .errors import IntegrityError, StoreError
from .inference import onnx_fraud_probability, onnx_session
from .reference import SCORE_EDGES
from .registry import Registry

FILE = "calibration.json"
FORMAT = 1
Method = Literal["isotonic", "platt"]

MIN_ISOTONIC_FRAUDS = 50
"""Validation frauds isotonic regression needs; with fewer, Platt's two coefficients. Measured
on the real data (benchmarks/estimation_bench.py, validation cut to fewer frauds): isotonic's
steps then rest on a handful of frauds each and its estimate of recall and F1 errs more (F1
MAE 0.085 to 0.107 at 15 to 40 frauds, recall MAE 0.25 at 5), while Platt's holds."""
PLATT_STEP = 0.05
"""Platt's grid: the sigmoid's argument moves at most this much between two knots, so the
tabulated map is within about 1e-4 of the sigmoid (tested)."""
PLATT_KNOTS = (101, 4001)
"""Fewest and most knots of Platt's grid over scores 0..1."""


@dataclass(frozen=True)
class CalibrationMap:
    """score -> calibrated fraud probability; `knots` are the piecewise-linear form."""

    method: Method
    x: tuple[float, ...]
    y: tuple[float, ...]
    fitted: Mapping[str, Any]
    """What it was fitted on: slice, rows, frauds, and why this method."""
    coefficients: tuple[float, float] | None = None
    """Platt's (a, b): p = 1 / (1 + exp(a * score + b)); None for isotonic."""

    def apply(self, scores: NDArray[Any]) -> NDArray[np.float64]:
        """Calibrated probability of each score."""
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    def to_json(self) -> bytes:
        """The stored file: data only, never a pickle (isotonic knots, or Platt's two numbers)."""
        body: dict[str, Any] = {"format": FORMAT, "method": self.method, "fitted": self.fitted}
        if self.coefficients is None:
            body |= {"x": list(self.x), "y": list(self.y)}
        else:
            body |= {"a": self.coefficients[0], "b": self.coefficients[1]}
        return json.dumps(body, indent=1).encode()


def load_maps(
    registry: Registry, versions: Iterable[str]
) -> tuple[dict[str, CalibrationMap], dict[str, str]]:
    """Each version's stored map, and why a version has none: trained before maps existed,
    or its file refused (a corrupt map leaves that version unestimated, never a failed run)."""
    maps: dict[str, CalibrationMap] = {}
    missing: dict[str, str] = {}
    for version in versions:
        try:
            if FILE not in registry.manifest(version)["files"]:
                missing[version] = "trained before calibration maps (`fraud retrain` adds one)"
                continue
            maps[version] = load_map(registry.read_file(version, FILE))
        except StoreError as exc:
            missing[version] = f"no usable calibration map ({exc})"
    return maps, missing


def platt_map(a: float, b: float, fitted: Mapping[str, Any]) -> CalibrationMap:
    """Platt's sigmoid tabulated on scores 0..1, finely enough for its slope."""
    lo, hi = PLATT_KNOTS
    knots = int(min(max(math.ceil(abs(a) / PLATT_STEP) + 1, lo), hi))
    x = np.linspace(0.0, 1.0, knots)
    y = _sigmoid(-(a * x + b))
    return CalibrationMap("platt", _floats(x), _floats(y), dict(fitted), (a, b))


def load_map(data: bytes) -> CalibrationMap:
    """A stored map, checked: IntegrityError if it is not one this code can apply."""
    try:
        body = json.loads(data)
        fitted = dict(body["fitted"])
        if body["format"] != FORMAT:
            raise ValueError(f"format {body['format']!r}, expected {FORMAT}")
        if body["method"] == "platt":
            return platt_map(float(body["a"]), float(body["b"]), fitted)
        if body["method"] != "isotonic":
            raise ValueError(f"unknown method {body['method']!r}")
        x = np.asarray(body["x"], dtype=np.float64)
        y = np.asarray(body["y"], dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or not len(x):
            raise ValueError("x and y must be equally long, non-empty lists")
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
            raise ValueError("knots must be increasing in x and never decreasing in y")
        if not (np.all(np.isfinite(x)) and np.all((y >= 0) & (y <= 1))):
            raise ValueError("knots must be finite, with y in [0, 1]")
    except (ValueError, TypeError, KeyError) as exc:
        raise IntegrityError(f"{FILE} is not a calibration map: {exc}") from exc
    return CalibrationMap("isotonic", _floats(x), _floats(y), fitted)


def fit_map(
    scores: NDArray[Any], labels: NDArray[Any], min_isotonic_frauds: int = MIN_ISOTONIC_FRAUDS
) -> CalibrationMap:
    """Isotonic on `scores` (the validation part's served scores) when they hold at least
    `min_isotonic_frauds` frauds, else Platt; the map records which and why."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    frauds = int(y.sum())
    fitted: dict[str, Any] = {
        "slice": "validation",
        "rows": len(s),
        "frauds": frauds,
        "why": f"{frauds} validation frauds; isotonic needs at least {min_isotonic_frauds}",
    }
    if frauds >= min_isotonic_frauds:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        knots = _floats(iso.X_thresholds_), _floats(iso.y_thresholds_)
        return CalibrationMap("isotonic", *knots, fitted)
    return platt_map(*fit_platt(s, y), fitted)


def fit_platt(scores: NDArray[np.float64], labels: NDArray[np.float64]) -> tuple[float, float]:
    """Platt's (a, b) by maximum likelihood against his smoothed targets, which keep a slice
    without frauds (or without legitimate rows) from driving the sigmoid to a step."""
    positives = float(labels.sum())
    negatives = len(labels) - positives
    target = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(ab: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        z = ab[0] * scores + ab[1]  # p = sigmoid(-z)
        # -log p = log(1 + e^z), -log(1 - p) = log(1 + e^-z); both stable via logaddexp.
        value = float(np.sum(target * np.logaddexp(0, z) + (1 - target) * np.logaddexp(0, -z)))
        residual = target - _sigmoid(-z)  # d loss / dz
        return value, np.array([float(residual @ scores), float(residual.sum())])

    prior = math.log((negatives + 1) / (positives + 1))
    result = minimize(loss, np.array([0.0, prior]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def quality(
    cal: CalibrationMap, scores: NDArray[Any], labels: NDArray[Any], **options: Any
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Brier score and expected calibration error of the calibrated and of the served
    (uncalibrated) scores on a slice, and their bootstrap intervals (rows resampled within
    each class, as every interval of the product)."""
    y = np.asarray(labels, dtype=np.float64)
    served = np.asarray(scores, dtype=np.float64)
    probabilities = {"": cal.apply(served), "uncalibrated_": served}
    values: dict[str, Any] = {"rows": len(y), "frauds": int(y.sum())}
    for prefix, p in probabilities.items():
        values[f"{prefix}brier"] = float(np.mean((p - y) ** 2)) if len(y) else None
        values[f"{prefix}ece"] = expected_calibration_error(p, y) if len(y) else None
    if not 0 < y.sum() < len(y):
        return values, {}
    draws: dict[str, list[NDArray[np.float64]]] = {}
    for rows in bootstrap.stratified_rows(y, **options):
        for prefix, p in probabilities.items():
            for name, values_ in zip(("brier", "ece"), _brier_and_ece(p, y, rows), strict=True):
                draws.setdefault(prefix + name, []).append(values_)
    intervals = {key: bootstrap.interval(np.concatenate(d)) for key, d in draws.items()}
    return values, intervals


def expected_calibration_error(p: NDArray[Any], y: NDArray[Any]) -> float:
    """ECE of probabilities `p` against labels `y` (bins as `_brier_and_ece` says)."""
    every_row = np.arange(len(y), dtype=np.int32)[None, :]
    return float(
        _brier_and_ece(np.asarray(p, np.float64), np.asarray(y, np.float64), every_row)[1][0]
    )


def _brier_and_ece(
    p: NDArray[np.float64], y: NDArray[np.float64], rows: NDArray[np.int32]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Brier score and expected calibration error of each resample (a row of `rows`, indices
    into p and y). ECE: the sum over probability bins of |mean probability - fraud rate|
    weighted by the bin's share of rows; the bins are the reference's score bins, fine near
    zero where fraud probabilities live (equal-width bins would hold nearly every row in one)."""
    bins = len(SCORE_EDGES) + 1
    cell = np.searchsorted(np.asarray(SCORE_EDGES), p, side="right").astype(np.int32)
    k, n = rows.shape
    gap = (p - y)[rows]
    flat = (cell[rows] + (bins * np.arange(k, dtype=np.int32))[:, None]).ravel()
    per_bin = np.bincount(flat, gap.ravel(), minlength=bins * k).reshape(k, bins)
    return np.mean(gap**2, axis=1), np.abs(per_bin).sum(axis=1) / n


def calibrate(
    onnx_bytes: bytes,
    validation: tuple[NDArray[Any], NDArray[Any]],
    test: tuple[NDArray[Any], NDArray[Any]],
) -> tuple[bytes, dict[str, Any]]:
    """The training step: the served (ONNX) model's scores of the validation rows (x, y) fit
    the map, which alone ever sees them; the test rows judge it once. Returns the file to store
    and the manifest's `calibration` section. The model itself is untouched."""
    session = onnx_session(onnx_bytes, threads=0)
    (x_val, y_val), (x_test, y_test) = validation, test
    # Fitted on the scores the log will hold (float32 from ONNX), not the fitted model's
    # float64 ones, so a logged score sits on the same side of every knot as at fitting.
    cal = fit_map(onnx_fraud_probability(session, x_val), y_val)
    values, intervals = quality(cal, onnx_fraud_probability(session, x_test), y_test)
    return cal.to_json(), {
        "file": FILE,
        "method": cal.method,
        "fitted": dict(cal.fitted),
        "knots": len(cal.x),
        "test": values,
        "test_ci": intervals,
        "ece_bins": [float(e) for e in SCORE_EDGES],
    }


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.exp(-np.logaddexp(0, -z))


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64))
