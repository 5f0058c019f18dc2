"""The one side effect of monitoring: its gauges, pushed to a Prometheus Pushgateway."""

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from .drift import MonitorResult
from .status import Status

JOB = "fraud-monitor"
"""The Pushgateway job; one group per model name under it."""
ESTIMATE_GAUGES = {
    "precision": "model_estimated_precision",
    "recall": "model_estimated_recall",
    "f1": "model_estimated_f1_score",
    "fpr": "model_estimated_false_positive_rate",
    "expected_frauds": "model_estimated_frauds",
}
"""Each estimated figure's gauge; `_lower` and `_upper` beside it carry its 95% interval."""


def push_gauges(
    result: MonitorResult, gateway: str, model_name: str, *, last_trained: float | None
) -> None:
    """Push the run's gauges to the Pushgateway (job fraud-monitor, grouped by model).

    The push replaces the whole group, so a gauge left out (undefined this run) disappears
    instead of showing a stale value. A figure's value is pushed only when measured, so no
    alert ever reads an unknown one (estimates go under their own names);
    `fraud_monitor_figure_status{figure, status}` is 1 for each figure's status and 0 for the
    others. Skipped features are never pushed: alerts watch `fraud_feature_psi > 0.2` and
    Time's PSI is always huge.
    """
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float | None) -> None:
        if value is not None:
            Gauge(name, doc, registry=registry).set(value)

    m, known = result.metrics, {name: f.measured for name, f in result.figures.items()}
    gauge("model_current_f1_score", "F1 on rows whose class is known", known["f1"])
    gauge("model_current_precision", "Precision on rows whose class is known", known["precision"])
    gauge("model_current_recall", "Recall on rows whose class is known", known["recall"])
    gauge("model_false_positive_rate", "False positive rate on settled rows", known["fpr"])
    gauge("model_false_negative_rate", "False negative rate on settled rows", known["fnr"])
    gauge(
        "model_alert_precision",
        "Share of reviewed alerts that were fraud",
        known["alert_precision"],
    )
    gauge(
        "model_review_coverage", "Share of the window's alerts reviewed", known["review_coverage"]
    )
    gauge(
        "model_label_completeness",
        "Share of the window's rows whose class is known",
        known["label_completeness"],
    )
    gauge(
        "model_alerts", "Alerts (flagged served rows) in the window", float(result.reviews.alerts)
    )
    gauge("model_reviewed_alerts", "Reviewed alerts in the window", float(result.reviews.reviewed))
    gauge(
        "model_settled_predictions",
        "Rows the rates are measured on (mature, or labelled)",
        float(sum(m["confusion_matrix"].values())),
    )
    gauge("model_drift_detected", "1 when the drift rule fired", float(result.drift_detected))
    gauge("fraud_score_psi", "PSI of the champion's fraud score vs reference", result.score_psi)
    gauge(
        "model_predicted_fraud_rate",
        "Share of predictions flagged as fraud",
        m["predicted_fraud_rate"],
    )
    gauge("model_labelled_predictions", "Labelled predictions in the window", m["labelled"])
    gauge(
        "fraud_model_last_trained_timestamp_seconds",
        "When the newest model version was registered",
        last_trained,
    )
    gauge("model_monitor_last_run_timestamp_seconds", "When fraud monitor last ran", time.time())
    status = Gauge(
        "fraud_monitor_figure_status",
        "1 for how each figure is known this run (measured, estimated, unknown), 0 otherwise",
        ["figure", "status"],
        registry=registry,
    )
    for name, figure in result.figures.items():
        for each in Status:
            status.labels(figure=name, status=str(each)).set(float(figure.status is each))
    gauge(
        "model_baseline_f1_score",
        "The champion's test F1 the rule compares to",
        result.rule.baseline_f1,
    )
    gauge("model_baseline_recall", "The champion's test recall", result.rule.baseline_recall)
    estimation = result.estimation
    for name, estimate in (estimation.window if estimation else {}).items():
        if name not in ESTIMATE_GAUGES:
            continue  # FNR is 1 - recall
        what = f"{name} estimated from calibrated scores"
        gauge(ESTIMATE_GAUGES[name], what, estimate.value)
        low, high = estimate.interval or (None, None)
        gauge(f"{ESTIMATE_GAUGES[name]}_lower", f"Lower end of the 95% interval of {what}", low)
        gauge(f"{ESTIMATE_GAUGES[name]}_upper", f"Upper end of the 95% interval of {what}", high)
    if estimation is not None and estimation.window:
        # Verdicts, as model_drift_detected: pushed with the estimates, never without them.
        gauge(
            "model_estimated_quality_low",
            "1 when estimated F1 or recall fell below baseline - alert threshold, its interval "
            "excluding the baseline",
            float(estimation.quality_low),
        )
        gauge(
            "model_calibration_drift_detected",
            "1 when a figure measured on mature rows left its estimate's 99% interval "
            "(0: held, or not judged)",
            float(bool(estimation.calibration_drift)),
        )
    defined = {name: v for name, v in result.feature_psi.items() if v is not None}
    if defined:
        feature_psi = Gauge(
            "fraud_feature_psi", "PSI of a feature vs reference", ["feature"], registry=registry
        )
        for name, value in defined.items():
            feature_psi.labels(feature=name).set(value)
    push_to_gateway(gateway, job=JOB, registry=registry, grouping_key={"model": model_name})
