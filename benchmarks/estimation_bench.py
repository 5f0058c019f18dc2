"""Performance estimation on the real data: how far precision, recall and F1 estimated from
calibrated scores alone land from the realised ones, chunk by chunk of the test slice.

Trains the production RandomForest with `fraud train` (a child process, as a user runs it),
reads the champion's model.onnx and calibration.json back from the store, and scores the test
slice (the last 20% by time, never seen in training nor in calibration) with ONNX as the service
does. The slice is cut into 5 and into 10 consecutive chunks; per chunk the realised precision,
recall and F1 come from the labels, the estimates from the scores alone through the monitor's
own code (score sums per map segment, expected counts, figures and intervals), and the table
says whether each interval covered the realised value. Then frauds are made to look legitimate
(their strongest features moved toward the legitimate rows') and the estimate must fall. Last,
isotonic against Platt as the validation part holds fewer frauds: the measurement behind
`calibration.MIN_ISOTONIC_FRAUDS`.
Usage: python benchmarks/estimation_bench.py [--data PATH]
"""

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection.calibration import (
    FILE,
    MIN_ISOTONIC_FRAUDS,
    CalibrationMap,
    fit_map,
    load_map,
)
from fraud_detection.data import load_dataset, time_split
from fraud_detection.inference import onnx_fraud_probability, onnx_session
from fraud_detection.monitoring.drift import DriftRule
from fraud_detection.monitoring.estimation import (
    Expected,
    estimates,
    estimation_of,
    expect,
    score_sums_of_frame,
)
from fraud_detection.registry import Registry
from fraud_detection.schema import LABEL
from fraud_detection.simulate.traffic import apply_shifts, parse_shift
from fraud_detection.store import open_store
from fraud_detection.training import features_and_label, split_history
from results import write_section
from train_bench import DEFAULT_DATA, run_fraud_train

FIGURES = ("precision", "recall", "f1")
SHIFTS = ("V14+3", "V14+3,V12+3,V10+3")
"""Applied to the fraud rows only: the three features that separate frauds best, moved toward
the legitimate rows' values (frauds that look legitimate)."""
ALL_ROWS_SHIFT = "V14+3"
"""The label-delay benchmark's week-5 degradation, on every row: shown for what it is."""
VALIDATION_FRAUDS = (5, 10, 15, 20, 30, 40, 50)


def realised(labels: Any, flagged: Any) -> dict[str, float]:
    """Precision, recall and F1 of a chunk from its labels (NaN where nothing divides)."""
    y, f = np.asarray(labels, bool), np.asarray(flagged, bool)
    tp, fp, fn = np.sum(y & f), np.sum(~y & f), np.sum(y & ~f)
    return {
        "precision": tp / (tp + fp) if tp + fp else np.nan,
        "recall": tp / (tp + fn) if tp + fn else np.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan,
        "frauds": float(np.sum(y)),
    }


def expected(cal: CalibrationMap, scores: Any, threshold: float) -> Expected:
    """The monitor's expected counts of rows scored `scores`."""
    frame = pd.DataFrame(
        {"model_version": "1", "probability": scores, "is_fraud": scores >= threshold}
    )
    return expect(score_sums_of_frame(frame, {"1": cal.x}), {"1": cal})


def estimated(cal: CalibrationMap, scores: Any, threshold: float) -> dict[str, Any]:
    """The monitor's estimate of rows scored `scores`: each figure's Estimate."""
    return estimates(expected(cal, scores, threshold))


def chunk_rows(
    cal: CalibrationMap, scores: Any, labels: Any, threshold: float, chunks: int
) -> list[dict[str, Any]]:
    """Per consecutive chunk: realised and estimated figures, intervals, coverage."""
    out = []
    for index in np.array_split(np.arange(len(scores)), chunks):
        truth = realised(labels[index], scores[index] >= threshold)
        guess = estimated(cal, scores[index], threshold)
        row: dict[str, Any] = {"rows": len(index), "frauds": int(truth["frauds"])}
        for name in FIGURES:
            e = guess.get(name)
            row[name] = truth[name]
            row[f"{name}_estimate"] = e.value if e else np.nan
            row[f"{name}_interval"] = e.interval if e else None
            row[f"{name}_covered"] = bool(
                e and e.interval and e.interval[0] <= truth[name] <= e.interval[1]
            )
        row["expected_frauds"] = guess["expected_frauds"].value
        out.append(row)
    return out


def mae(rows: list[dict[str, Any]], name: str) -> float:
    gaps = [abs(r[name] - r[f"{name}_estimate"]) for r in rows]
    return float(np.nanmean(gaps))


def covered(rows: list[dict[str, Any]], name: str) -> int:
    return sum(r[f"{name}_covered"] for r in rows)


def chunk_table(rows: list[dict[str, Any]]) -> list[str]:
    head = "| chunk | rows | frauds | expected frauds | " + " | ".join(
        f"{n} realised | {n} estimated [95%] | covered" for n in FIGURES
    )
    lines = [head + " |", "|---:" * (4 + 3 * len(FIGURES)) + "|"]
    for i, r in enumerate(rows, 1):
        cells = [str(i), f"{r['rows']:,}", str(r["frauds"]), f"{r['expected_frauds']:.1f}"]
        for name in FIGURES:
            low, high = r[f"{name}_interval"] or (np.nan, np.nan)
            cells += [
                _num(r[name]),
                f"{_num(r[f'{name}_estimate'])} [{_num(low)}, {_num(high)}]",
                "yes" if r[f"{name}_covered"] else "**no**",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "| MAE / covered | | | | "
        + " | ".join(f"| {mae(rows, n):.3f} | {covered(rows, n)}/{len(rows)}" for n in FIGURES)
        + " |"
    )
    return lines


def _num(value: float) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.3f}"


def shifted(test: pd.DataFrame, expression: str, frauds_only: bool) -> pd.DataFrame:
    shifts = [parse_shift(part) for part in expression.split(",")]
    if not frauds_only:
        return apply_shifts(test, shifts)
    out = test.copy()
    frauds = out[LABEL] == 1
    out.loc[frauds] = apply_shifts(out.loc[frauds], shifts)
    return out


def method_rows(
    val_scores: Any, val_labels: Any, scores: Any, labels: Any, threshold: float
) -> list[str]:
    """Isotonic against Platt fitted on the newest part of validation holding k frauds."""
    lines = [
        "| validation frauds | validation rows | isotonic: MAE recall / F1 | "
        "Platt: MAE recall / F1 |",
        "|---:|---:|---:|---:|",
    ]
    platt_better = 0
    newest_first = np.cumsum(val_labels[::-1])
    total = int(val_labels.sum())
    for wanted in (*(k for k in VALIDATION_FRAUDS if k < total), total):
        rows = (
            int(np.flatnonzero(newest_first >= wanted)[0]) + 1
            if wanted < total
            else len(val_labels)
        )
        s, y = val_scores[-rows:], val_labels[-rows:]
        cells, errors = [], []
        for least in (0, 10**9):  # isotonic always, Platt always
            cal = fit_map(s, y, min_isotonic_frauds=least)
            five = chunk_rows(cal, scores, labels, threshold, 5)
            cells.append(f"{mae(five, 'recall'):.3f} / {mae(five, 'f1'):.3f}")
            errors.append(mae(five, "recall") + mae(five, "f1"))
        platt_better += errors[1] < errors[0]
        every = " (all: the trained map's)" if wanted == total else ""
        lines.append(f"| {wanted}{every} | {rows:,} | {cells[0]} | {cells[1]} |")
    sizes = len(lines) - 2
    return [
        *lines,
        "",
        f"Isotonic's error grows as validation holds fewer frauds (its steps then rest on a "
        f"handful of frauds each), which is why it needs {MIN_ISOTONIC_FRAUDS}. On this data "
        f"Platt's two coefficients erred less (recall + F1 MAE) in {platt_better} of the "
        f"{sizes} sizes, the full validation part included. That is one dataset and one split: "
        "the rule stays isotonic first (as NannyML's CBPE calibrates, and as measured in the "
        "targets above), and each manifest records which map its version got.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest, _, _ = run_fraud_train(args.data, Path(tmp) / "store")
        registry = Registry(open_store(str(Path(tmp) / "store")), "fraud-detector")
        session = onnx_session(registry.read_file("champion", "model.onnx"), threads=0)
        cal = load_map(registry.read_file("champion", FILE))
    threshold = float(manifest["threshold"])
    history, test = time_split(load_dataset(str(args.data)), manifest["data"]["history_fraction"])
    _, validation = split_history(history, 0.2)

    def served(frame: pd.DataFrame) -> tuple[Any, Any]:
        x, y = features_and_label(frame)
        return onnx_fraud_probability(session, x).astype(np.float64), y

    scores, labels = served(test)
    val_scores, val_labels = served(validation)
    by = {k: chunk_rows(cal, scores, labels, threshold, k) for k in (5, 10)}
    five = by[5]
    c = manifest["calibration"]
    targets = {
        "MAE of recall <= 0.07 over 5 chunks": (
            f"{mae(five, 'recall'):.3f}",
            mae(five, "recall") <= 0.07,
        ),
        "MAE of F1 <= 0.07 over 5 chunks": (f"{mae(five, 'f1'):.3f}", mae(five, "f1") <= 0.07),
        "recall intervals cover >= 4 of 5": (
            f"{covered(five, 'recall')}/5",
            covered(five, "recall") >= 4,
        ),
        "F1 intervals cover >= 4 of 5": (f"{covered(five, 'f1')}/5", covered(five, "f1") >= 4),
    }

    whole = estimated(cal, scores, threshold)
    shift_lines = [
        "| shift | rows shifted | realised recall | estimated recall [95%] | realised F1 | "
        "estimated F1 [95%] | expected frauds | alerts | estimate fell | drift rule on the "
        "estimate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    cases = [("none", "", False)] + [(s, s, True) for s in SHIFTS]
    cases.append((ALL_ROWS_SHIFT, ALL_ROWS_SHIFT, False))
    fell_per_chunk: dict[str, str] = {}
    fired: list[str] = []
    for label, expression, frauds_only in cases:
        s, y = served(shifted(test, expression, frauds_only)) if expression else (scores, labels)
        counts = expected(cal, s, threshold)
        truth, guess = realised(y, s >= threshold), estimates(counts)
        rule = DriftRule()
        baselines = {
            "f1": manifest["metrics"]["test"]["f1"],
            "recall": manifest["metrics"]["test"]["recall"],
        }
        judged = estimation_of(
            counts, {"1": len(s)}, {}, baselines=baselines, alert_threshold=rule.alert_threshold
        )
        verdict = (
            "fires"
            if judged.reasons
            else (
                "quiet (below the limit, interval reaches the baseline)"
                if judged.notes
                else "quiet"
            )
        )
        fell = all(guess[n].value < whole[n].value for n in ("recall", "f1"))
        r, f = guess["recall"], guess["f1"]
        shift_lines.append(
            f"| {label} | {'frauds' if frauds_only else 'all' if expression else '—'} | "
            f"{truth['recall']:.3f} | {r.value:.3f} [{r.interval[0]:.3f}, {r.interval[1]:.3f}] | "
            f"{truth['f1']:.3f} | {f.value:.3f} [{f.interval[0]:.3f}, {f.interval[1]:.3f}] | "
            f"{guess['expected_frauds'].value:.1f} | {int(np.sum(s >= threshold))} | "
            f"{'—' if not expression else 'yes' if fell else '**no**'} | {verdict} |"
        )
        if expression:
            per_chunk = chunk_rows(cal, s, y, threshold, 5)
            drops = sum(
                a["recall_estimate"] < b["recall_estimate"]
                for a, b in zip(per_chunk, five, strict=True)
            )
            fell_per_chunk[f"{label} ({'frauds' if frauds_only else 'all rows'})"] = (
                f"estimated recall fell in {drops}/5 chunks; MAE recall "
                f"{mae(per_chunk, 'recall'):.3f}, F1 {mae(per_chunk, 'f1'):.3f}; recall "
                f"intervals covered {covered(per_chunk, 'recall')}/5"
            )

    test_ci = c["test_ci"]
    body = "\n".join(
        [
            f"`fraud train` on the real data (production RandomForest, `{manifest['params']}`), "
            f"threshold {threshold:.4f}. Calibration map: **{c['method']}** "
            f"({c['fitted']['why']}), fitted on the validation part's {c['fitted']['rows']:,} "
            "rows. The test slice (last 20% by time, "
            f"{len(test):,} rows, {int(labels.sum())} frauds) is never seen by the map. "
            "Estimates come from the scores alone through the monitor's code; intervals: 95% of "
            "outcomes drawn from the calibrated probabilities (outcome sampling only).",
            "",
            f"Calibration on test: Brier {c['test']['brier']:.6f} "
            f"[{test_ci['brier'][0]:.6f}, {test_ci['brier'][1]:.6f}] (served score "
            f"{c['test']['uncalibrated_brier']:.6f}); expected calibration error "
            f"{c['test']['ece']:.6f} [{test_ci['ece'][0]:.6f}, {test_ci['ece'][1]:.6f}] "
            f"(served score {c['test']['uncalibrated_ece']:.6f}).",
            "",
            "| target | measured | met |",
            "|---|---:|---|",
            *(f"| {k} | {v} | {'yes' if met else '**no**'} |" for k, (v, met) in targets.items()),
            "",
            "### 5 consecutive chunks",
            "",
            *chunk_table(five),
            "",
            "### 10 consecutive chunks",
            "",
            *chunk_table(by[10]),
            "",
            "### Frauds made to look legitimate",
            "",
            "The shift is applied to the fraud rows only (the legitimate rows are as they were), "
            "then the whole slice is scored and estimated again; last, the label-delay "
            "benchmark's degradation on every row.",
            "",
            *shift_lines,
            "",
            *(f"- {label}: {text}." for label, text in fell_per_chunk.items()),
            "",
            "The estimate falls, but by less than the truth: a fraud that now scores like a "
            "legitimate row gets a legitimate row's calibrated probability, so it is counted "
            "as a likely legitimate row, not as a missed fraud. Its intervals then stop "
            "covering the realised figures: exactly the calibration drift the monitor flags "
            "once those rows mature. With the shift on every row, the estimated recall and F1 "
            "do not fall at all (the legitimate rows score lower too, and the expected missed "
            "frauds fall with the caught ones); only the expected frauds and the alerts fall. "
            "Scores alone cannot tell frauds that look legitimate from legitimate rows. The "
            "last column applies the monitor's rule to the whole slice (estimated F1 or recall "
            "below the champion's test value minus 0.1, with the 95% interval excluding the "
            "test value): "
            + (
                f"it fires for {', '.join(fired)}."
                if fired
                else "none of these shifts fires it, as the estimates fall by less than the "
                "truth; what falls clearly is the expected frauds and the alerts."
            ),
            "",
            "### Isotonic or Platt, by the frauds validation holds",
            "",
            "Each map fitted on the newest part of the validation slice holding that many "
            "frauds, judged over the same 5 chunks of the test slice.",
            "",
            *method_rows(val_scores, val_labels, scores, labels, threshold),
        ]
    )
    write_section("Performance estimation", "python benchmarks/estimation_bench.py", body)
    print(body)


if __name__ == "__main__":
    main()
