"""The one side effect of monitoring: its gauges, pushed to a Prometheus Pushgateway."""

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from .drift import MonitorResult

JOB = "fraud-monitor"
"""The Pushgateway job; one group per model name under it."""


def push_gauges(
    result: MonitorResult, gateway: str, model_name: str, *, last_trained: float | None
) -> None:
    """Push the run's gauges to the Pushgateway (job fraud-monitor, grouped by model).

    The push replaces the whole group, so a gauge left out (undefined this run) disappears
    instead of showing a stale value. Skipped features are never pushed: alerts watch
    `fraud_feature_psi > 0.2` and Time's PSI is always huge.
    """
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float | None) -> None:
        if value is not None:
            Gauge(name, doc, registry=registry).set(value)

    m = result.metrics
    gauge("model_current_f1_score", "F1 on labelled predictions in the window", m["f1"])
    gauge("model_current_precision", "Precision on labelled predictions", m["precision"])
    gauge("model_current_recall", "Recall on labelled predictions", m["recall"])
    gauge("model_false_positive_rate", "False positive rate on labelled predictions", m["fpr"])
    gauge("model_false_negative_rate", "False negative rate on labelled predictions", m["fnr"])
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
    defined = {name: v for name, v in result.feature_psi.items() if v is not None}
    if defined:
        feature_psi = Gauge(
            "fraud_feature_psi", "PSI of a feature vs reference", ["feature"], registry=registry
        )
        for name, value in defined.items():
            feature_psi.labels(feature=name).set(value)
    push_to_gateway(gateway, job=JOB, registry=registry, grouping_key={"model": model_name})
