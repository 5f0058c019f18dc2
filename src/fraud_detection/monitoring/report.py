"""The Markdown report of a monitoring run."""

from collections.abc import Mapping
from typing import Any

from .drift import MonitorResult


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def _with_ci(m: Mapping[str, Any], key: str) -> str:
    """The figure and, when there is one, its 95% interval."""
    bounds = m.get("ci", {}).get(key)
    if m[key] is None or not bounds:
        return _fmt(m[key])
    return f"{_fmt(m[key])} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


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
    few_frauds = " (too few labels)" if m["labelled_frauds"] < rule.min_labelled_frauds else ""
    few_rows = " (too few labels)" if m["labelled"] < rule.min_labelled else ""
    band = f"{_fmt(rule.fraud_rate_low, '.4%')} to {_fmt(rule.fraud_rate_high, '.4%')}"
    cm, score = m["confusion_matrix"], result.score_psi
    lines = [
        f"# Fraud model monitoring — champion version {result.model_version}",
        "",
        f"Window: {when}. Predictions: {m['rows']:,}; labelled: {m['labelled']:,} "
        f"({m['labelled_frauds']:,} frauds).",
        "",
        "**Drift detected:**" if result.drift_detected else "**No drift detected.**",
        *(f"- {reason}" for reason in result.reasons),
        "",
        "## Live performance",
        "",
        "Ratios are over labelled rows only; — means undefined (nothing to divide by); "
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
