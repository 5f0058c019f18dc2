"""What the operations files say: the metric names they use, their rules, dashboard queries."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_CONFIG = REPO / "prometheus.yml"
HOST_PROMETHEUS_CONFIG = REPO / "prometheus-host.yml"
ALERTS = REPO / "alerts.yml"
ALERT_TESTS = REPO / "tests" / "promtool" / "alerts_test.yml"
RUNBOOKS = REPO / "docs" / "runbooks"
DASHBOARD = REPO / "grafana" / "dashboards" / "fraud-detection.json"
DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = REPO / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
COMPOSE = REPO / "docker-compose.yml"

# The metric names that exist (SPEC section 7 and `fraud monitor`'s pushed gauges): anything
# else in a query is a typo that would show an empty panel or an alert that never fires.
HISTOGRAMS = {
    "fraud_prediction_latency_seconds",
    "fraud_score",
    "flask_http_request_duration_seconds",
}
SERVICE_METRICS = {
    "fraud_predictions_total",
    "fraud_request_errors_total",
    "fraud_model_info",
    "fraud_model_reloads_total",
    "fraud_prediction_log_dropped_total",
    "fraud_prediction_log_written_total",
    "fraud_prediction_log_pending_rows",
    "fraud_prediction_log_pending_age_seconds",
    "fraud_feedback_total",
    "fraud_scoring_errors_total",
    "flask_http_request_total",
} | {f"{name}_{suffix}" for name in HISTOGRAMS for suffix in ("bucket", "count", "sum")}
MONITOR_METRICS = {
    "model_current_f1_score",
    "model_current_precision",
    "model_current_recall",
    "model_false_positive_rate",
    "model_false_negative_rate",
    "model_drift_detected",
    "fraud_feature_psi",
    "fraud_score_psi",
    "model_predicted_fraud_rate",
    "model_labelled_predictions",
    "fraud_model_last_trained_timestamp_seconds",
    "model_monitor_last_run_timestamp_seconds",
    *(
        f"model_estimated_{name}{bound}"
        for name in ("precision", "recall", "f1_score", "false_positive_rate", "frauds")
        for bound in ("", "_lower", "_upper")
    ),
    "model_estimated_quality_low",
    "model_calibration_drift_detected",
    "model_baseline_f1_score",
    "model_baseline_recall",
    "model_alert_precision",
    "model_review_coverage",
    "model_label_completeness",
    "model_alerts",
    "model_reviewed_alerts",
    "model_settled_predictions",
    "fraud_monitor_figure_status",
}
ROLLOUT_METRICS = {"fraud_rollout_step", "fraud_rollout_share"}  # pushed by `fraud rollout`
PROMETHEUS_METRICS = {"up", "push_time_seconds"}
KNOWN_METRICS = SERVICE_METRICS | MONITOR_METRICS | ROLLOUT_METRICS | PROMETHEUS_METRICS

# SPEC section 9's alerts, plus the two the monitoring loop needs to be trusted.
REQUIRED_ALERTS = {
    "FraudServiceDown",
    "FraudServerErrorRateHigh",
    "FraudLatencyP99OverBudget",
    "FraudModelDriftDetected",
    "FraudModelF1CriticallyLow",
    "FraudPredictedFraudRateAnomalous",
    "FraudModelStale",
    "FraudModelReloadFailing",
    "FraudPredictionLogDropping",
    "FraudMonitorNotReporting",
}

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring",
    "group_left", "group_right", "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects: not functions, keywords, labels, durations."""
    # Blank out what is not a series name but looks like one: quoted label values (they may
    # hold anything), matchers, windows, grouping label lists and offsets.
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    names = set()
    # The lookbehind keeps the exponent of `1e-3` from reading as a name.
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, is_call = match.group(1), match.group(2)
        if not is_call and name.lower() not in PROMQL_KEYWORDS:
            names.add(name)
    return names


def load_rules() -> list[dict[str, Any]]:
    """Every rule of alerts.yml, recording and alerting."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in load_rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}


def dashboard_panels(panels: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """Every panel of the dashboard that shows data, including those nested in rows."""
    if panels is None:
        panels = json.loads(DASHBOARD.read_text())["panels"]
    for panel in panels:
        if panel.get("type") == "row":
            yield from dashboard_panels(panel.get("panels", []))
        else:
            yield panel


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if "expr" in t]
