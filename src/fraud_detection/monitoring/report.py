"""The Markdown report of a monitoring run."""

from collections.abc import Mapping
from typing import Any

from .drift import MonitorResult
from .status import Estimate, Figure, Status


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def _with_ci(m: Mapping[str, Any], key: str) -> str:
    """The figure and, when there is one, its 95% interval."""
    bounds = m.get("ci", {}).get(key)
    if m[key] is None or not bounds:
        return _fmt(m[key])
    return f"{_fmt(m[key])} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


FIGURE_NAMES = {
    "alert_precision": "alert precision (reviewed alerts that were fraud)",
    "review_coverage": "review coverage (alerts reviewed)",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "fpr": "false positive rate",
    "fnr": "false negative rate",
    "predicted_fraud_rate": "predicted fraud rate",
    "label_completeness": "label completeness (rows whose class is known)",
    "expected_frauds": "expected frauds",
}


def _figure_value(figure: Figure) -> str:
    if figure.value is None:
        return "—"
    spec = ".5f" if figure.value and abs(figure.value) < 0.01 else ".3f"
    text = format(figure.value, spec)
    if figure.interval:
        text += f" [{figure.interval[0]:{spec}}, {figure.interval[1]:{spec}}]"
    return ("≈ " if figure.status is Status.ESTIMATED else "") + text


def _figure_note(figure: Figure) -> str:
    parts = [figure.basis] if figure.status is not Status.UNKNOWN else []
    if figure.reason:
        parts.append(figure.reason)
    if figure.estimate is not None and figure.status is Status.MEASURED:
        e = figure.estimate
        bounds = f" [{e.interval[0]:.3f}, {e.interval[1]:.3f}]" if e.interval else ""
        parts.append(f"estimated {e.value:.3f}{bounds} ({e.basis})")
    return "; ".join(part for part in parts if part)


def format_figures(result: MonitorResult) -> list[str]:
    """The table of every figure with its status, and the cohorts when judged as of a moment."""
    lines = [
        "## What is known",
        "",
        "measured: counted from reviewed alerts or from rows whose class is known; estimated: "
        "from calibrated scores, with its interval; unknown: the log cannot say yet (why beside).",
        "",
        "| figure | value | status | on what, or why not |",
        "|---|---:|---|---|",
    ]
    for name, figure in result.figures.items():
        label = FIGURE_NAMES.get(name, name)
        lines.append(
            f"| {label} | {_figure_value(figure)} | {figure.status} | {_figure_note(figure)} |"
        )
    if result.horizon is None:
        return lines
    lines += [
        "",
        "## Cohorts by event day",
        "",
        "Rows by the day they happened, from the mature window on: alerts, the alerts reviewed, "
        "chargebacks known so far, and the share of rows whose class is known (labelled, or "
        f"older than the {result.horizon.days:g}-day horizon and presumed legitimate).",
        "",
        "| day | rows | alerts | reviewed | chargebacks so far | label completeness |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in result.cohorts:
        lines.append(
            f"| {c.day:%Y-%m-%d} | {c.rows:,} | {c.alerts:,} | {c.reviewed:,} | "
            f"{c.chargebacks:,} | {_fmt(c.completeness, '.1%')} |"
        )
    return lines


def format_estimation(result: MonitorResult) -> list[str]:
    """The window's estimated figures against their limits, and beside the figures measured on
    the mature window, with the difference and whether calibration holds."""
    e, rule = result.estimation, result.rule
    if e is None:
        return []
    lines = ["## Estimated from calibrated scores", ""]
    if e.unavailable:
        return [*lines, f"{e.unavailable[0].upper()}{e.unavailable[1:]}.", ""]
    basis = next(iter(e.window.values())).basis
    limits = {"f1": rule.baseline_f1, "recall": rule.baseline_recall}
    lines += [
        f"What the window's figures are if its scores are calibrated, known before any label "
        f"arrives: {basis}.",
        "",
        "| figure | estimated [95% interval] | limit |",
        "|---|---:|---|",
    ]
    for name, estimate in e.window.items():
        baseline = limits.get(name)
        limit = (
            f"≥ {baseline - rule.alert_threshold:.3f} (baseline {baseline:.3f} "
            f"- {rule.alert_threshold:g}), judged when the interval excludes the baseline"
            if baseline is not None
            else ""
        )
        lines.append(f"| {FIGURE_NAMES.get(name, name)} | {_estimate(estimate)} | {limit} |")
    if e.mature and result.settled is not None:
        lines += [
            "",
            f"On the mature window's {result.settled.tally.rows:,} rows, where the rates are "
            "measured:",
            "",
            "| figure | measured | estimated [95% interval] | measured - estimated |",
            "|---|---:|---:|---:|",
        ]
        for name, estimate in e.mature.items():
            figure = result.figures.get(name)
            value = figure.measured if figure else None
            gap = e.gaps.get(name)
            lines.append(
                f"| {FIGURE_NAMES.get(name, name)} | {_fmt(value)} | {_estimate(estimate)} | "
                f"{'—' if gap is None else f'{gap:+.3f}'} |"
            )
    verdict = {
        None: "not judged (no figure measured on mature rows beside an estimate)",
        False: "holds (the measured recall and F1 lie inside the estimates' 99% intervals)",
        True: "**drifted** (see the reasons above)",
    }[e.calibration_drift]
    return [*lines, "", f"Calibration: {verdict}.", ""]


def _estimate(estimate: Estimate) -> str:
    spec = ".1f" if estimate.value >= 1 else ".5f" if estimate.value < 0.01 else ".3f"
    low, high = estimate.interval or (estimate.value, estimate.value)
    return f"≈ {estimate.value:{spec}} [{low:{spec}}, {high:{spec}}]"


def _psi_flag(value: float | None, threshold: float) -> str:
    if value is None:
        return "too few rows"
    return "**DRIFT**" if value > threshold else "ok"


def format_report(result: MonitorResult) -> str:
    """The run as Markdown: window, metrics against their limits, PSI table, decision."""
    m, rule = result.metrics, result.rule
    when = (
        f"{result.start:%Y-%m-%d %H:%M} → {result.end:%Y-%m-%d %H:%M} UTC"
        if result.start and result.end
        else "no predictions logged"
    )
    f1_limit = (
        f"≥ {rule.baseline_f1 - rule.alert_threshold:.3f} (baseline {rule.baseline_f1:.3f} "
        f"- {rule.alert_threshold:g})"
        if rule.baseline_f1 is not None
        else "no baseline"
    )
    # A limit that needs more labels than the window has is marked, so the reader knows the
    # value beside it decided nothing.
    cm = m["confusion_matrix"]
    evidence_frauds, evidence_rows = cm["tp"] + cm["fn"], sum(cm.values())
    few_frauds = " (too few labels)" if evidence_frauds < rule.min_labelled_frauds else ""
    few_rows = " (too few labels)" if evidence_rows < rule.min_labelled else ""
    band = f"{_fmt(rule.fraud_rate_low, '.4%')} to {_fmt(rule.fraud_rate_high, '.4%')}"
    score = result.score_psi
    over = (
        "Ratios are over labelled rows only"
        if result.settled is None or result.horizon is None
        else (
            f"Rates are over the mature window {result.settled.start:%Y-%m-%d %H:%M} → "
            f"{result.settled.end:%Y-%m-%d %H:%M} UTC ({result.settled.tally.rows:,} rows older "
            f"than the {result.horizon.days:g}-day label horizon: "
            f"{result.settled.labelled:,} labelled, {result.settled.presumed:,} unlabelled and "
            "presumed legitimate)"
        )
    )
    as_of = f" Judged as of {result.horizon.as_of:%Y-%m-%d %H:%M} UTC." if result.horizon else ""
    lines = [
        f"# Fraud model monitoring — champion version {result.model_version}",
        "",
        f"Window: {when}. Predictions: {m['rows']:,}; labelled: {m['labelled']:,} "
        f"({m['labelled_frauds']:,} frauds).{as_of}",
        "",
        "**Drift detected:**" if result.drift_detected else "**No drift detected.**",
        *(f"- {reason}" for reason in result.reasons),
        "",
        "## Live performance",
        "",
        f"{over}; — means unknown or undefined (see below); "
        "[95% bootstrap interval, stratified by class].",
        "",
        "| metric | value | limit |",
        "|---|---:|---|",
        f"| F1 | {_with_ci(m, 'f1')} | {f1_limit}{few_frauds} |",
        f"| precision | {_with_ci(m, 'precision')} | |",
        f"| recall | {_with_ci(m, 'recall')} | |",
        f"| false positive rate | {_fmt(m['fpr'], '.5f')} | ≤ {rule.max_fpr:g}{few_rows} |",
        f"| false negative rate | {_fmt(m['fnr'])} | ≤ {rule.max_fnr:g}{few_frauds} |",
        f"| predicted fraud rate (all rows) | {_fmt(m['predicted_fraud_rate'], '.4%')} | "
        f"{band} (reference {result.reference_fraud_rate:.4%}) |",
        "",
        "| | predicted legit | predicted fraud |",
        "|---|---:|---:|",
        f"| actual legit | {cm['tn']:,} | {cm['fp']:,} |",
        f"| actual fraud | {cm['fn']:,} | {cm['tp']:,} |",
        "",
        *format_figures(result),
        "",
        *format_estimation(result),
        f"## Population stability (PSI against the reference, limit {rule.psi_threshold:g})",
        "",
        f"Score PSI over the {result.score_rows:,} rows scored by version {result.model_version}.",
        "",
        "| feature | PSI | flag |",
        "|---|---:|---|",
    ]
    lines.append(f"| *score* | {_fmt(score)} | {_psi_flag(score, rule.psi_threshold)} |")
    for name, value in sorted(result.feature_psi.items(), key=lambda kv: -(kv[1] or 0.0)):
        lines.append(f"| {name} | {_fmt(value)} | {_psi_flag(value, rule.psi_threshold)} |")
    for name, why in result.skipped_features.items():
        lines.append(f"| {name} | {_fmt(result.skipped_psi.get(name))} | not judged: {why} |")
    if result.notes:
        lines += ["", "## Not judged on this window", "", *(f"- {note}" for note in result.notes)]
    return "\n".join(lines) + "\n"


def format_variants(by_variant: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of `variant_metrics`, for the report when more than one model scored."""
    lines = [
        "## By variant",
        "",
        "Shadow rows were scored but never answered; each variant's labels are its own rows.",
        "",
        "| variant | rows | labelled | frauds | precision | recall | F1 | FPR | fraud rate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in by_variant.items():
        lines.append(
            f"| {name} | {m['rows']:,} | {m['labelled']:,} | {m['labelled_frauds']:,} | "
            f"{_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} | "
            f"{_fmt(m['fpr'], '.5f')} | {_fmt(m['predicted_fraud_rate'], '.4%')} |"
        )
    return "\n".join(lines) + "\n"
