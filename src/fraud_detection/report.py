"""The training report: Markdown with a PR curve and a confusion-matrix plot."""

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from . import bootstrap
from .bootstrap import PRECISION_TARGET, with_interval
from .evaluation import pr_curve

SYNTHETIC_BANNER = (
    "> **SYNTHETIC DATA.** This model was trained and evaluated on generated data "
    "(`--synthetic`), not on real transactions. Its numbers say nothing about real fraud."
)


def _png(fig: Figure) -> bytes:
    # A bare Figure needs no pyplot backend: no global state, safe on servers and in notebooks.
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_pr_curves(
    curves: Mapping[str, tuple[NDArray[Any], NDArray[Any], float]], title: str
) -> bytes:
    """PNG of precision-recall curves, one per label: (y_true, scores, pr_auc)."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for label, (y, s, pr_auc) in curves.items():
        precision, recall = pr_curve(y, s)
        ax.step(recall, precision, where="post", label=f"{label} (PR-AUC {pr_auc:.3f})")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1.01), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _png(fig)


def plot_confusion(matrix: Mapping[str, int], title: str) -> bytes:
    """PNG of a 2x2 confusion matrix with counts."""
    cells = np.array([[matrix["tn"], matrix["fp"]], [matrix["fn"], matrix["tp"]]])
    fig = Figure(figsize=(4.2, 3.6))
    ax = fig.subplots()
    ax.imshow(np.log1p(cells), cmap="Blues")
    for (i, j), count in np.ndenumerate(cells):
        ax.text(j, i, f"{count:,}", ha="center", va="center", fontsize=12)
    ax.set_xticks([0, 1], ["legit", "fraud"])
    ax.set_yticks([0, 1], ["legit", "fraud"])
    ax.set(xlabel="Predicted", ylabel="Actual", title=title)
    return _png(fig)


METRIC_NAMES = (
    ("pr_auc", "PR-AUC (average precision)"),
    ("roc_auc", "ROC-AUC"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1"),
    ("fpr", "False-positive rate"),
    ("fnr", "False-negative rate"),
    ("recall_at_budget", "Recall at the alert budget"),
    ("recall_at_precision", f"Recall at precision >= {PRECISION_TARGET:g} (on the PR curve)"),
    ("expected_cost", "Expected cost"),
)
SLICES = ("validation", "test")


def _metric_rows(metrics: Mapping[str, Mapping[str, Any]], level: float) -> list[str]:
    slices = [s for s in SLICES if s in metrics]
    rows = [
        "| metric | " + " | ".join(f"{s} [{level:.0%} interval]" for s in slices) + " |",
        "|---|" + "---:|" * len(slices),
    ]
    for key, label in METRIC_NAMES:
        cells = [
            with_interval(metrics[s].get(key), metrics.get(f"{s}_ci", {}).get(key)) for s in slices
        ]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    rates = [_pct(metrics[s].get(f"{s}_fraud_rate")) for s in slices]
    rows.append("| Fraud rate of the slice | " + " | ".join(rates) + " |")
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3f}%"


def _calibration_lines(calibration: Mapping[str, Any] | None) -> list[str]:
    """The calibration map's method, why, and its quality on test beside the served score's."""
    if not calibration:
        return []
    test, ci = calibration["test"], calibration.get("test_ci", {})
    fitted = calibration["fitted"]
    return [
        "## Calibration (for performance estimation; the served score is unchanged)",
        "",
        f"- Map: {calibration['method']} ({fitted['why']}), fitted on the validation part only "
        f"({fitted['rows']:,} rows), {calibration['knots']} knots, stored as "
        f"`{calibration['file']}`",
        "",
        "| on test | calibrated [95% interval] | served score [95% interval] |",
        "|---|---:|---:|",
        *(
            f"| {label} | {with_interval(test[key], ci.get(key), 6)} | "
            f"{with_interval(test['uncalibrated_' + key], ci.get('uncalibrated_' + key), 6)} |"
            for key, label in (("brier", "Brier score"), ("ece", "Expected calibration error"))
        ),
        "",
        "ECE bins: the reference's score bins (edges "
        + ", ".join(f"{e:g}" for e in calibration["ece_bins"])
        + ").",
        "",
    ]


def training_report(manifest: Mapping[str, Any]) -> str:
    """The Markdown report of one trained version, from its manifest."""
    metrics = manifest["metrics"]
    data = manifest["data"]
    cm = metrics["test"]["confusion_matrix"]
    boot = manifest.get("bootstrap", bootstrap.settings())
    lines = [f"# Fraud model {manifest['model_name']} — training report", ""]
    if data.get("synthetic"):
        lines += [SYNTHETIC_BANNER, ""]
    lines += [
        f"- Data: `{data['source']}` — {data['rows']:,} rows, {data['frauds']:,} frauds, "
        f"sha256 `{data['sha256'][:16]}…`",
        f"- Time-ordered split: train {data['train_rows']:,} rows → validation "
        f"{data['validation_rows']:,} rows (threshold chosen here) → test "
        f"{data['test_rows']:,} rows ({metrics['test']['frauds']} frauds, scored once)",
        f"- Algorithm: {manifest['algorithm']} (family `{manifest.get('family', 'rf')}`) "
        f"with `{manifest['params']}`",
        f"- Decision threshold: **{manifest['threshold']:.4f}** "
        f"(rule: {manifest['threshold_rule']}, on validation)",
        f"- ONNX parity: max |ONNX - fitted model| = {manifest['onnx_parity_max_abs_diff']:.1e}",
        f"- Training time: {manifest['training_seconds']:.1f} s",
        "",
        "## Metrics",
        "",
        *_metric_rows(metrics, boot["level"]),
        "",
        f"Intervals: {boot['resamples']:,} bootstrap resamples of each slice, stratified by "
        f"class (seed {boot['seed']}). Alert budget: "
        f"{metrics['test'].get('alert_budget_per_10k', 0):g} alerts per 10,000 transactions.",
        "",
        f"Confusion matrix on test: TN {cm['tn']:,}, FP {cm['fp']:,}, FN {cm['fn']:,}, "
        f"TP {cm['tp']:,}.",
        "",
        *_calibration_lines(manifest.get("calibration")),
        "![Precision-recall curves](pr_curve.png)",
        "",
        "![Confusion matrix on test](confusion_matrix.png)",
        "",
    ]
    return "\n".join(lines)
