"""Every metric the service exports (SPEC section 7), declared once, with closed label sets.

A label value never comes straight from a request: methods, paths and statuses fold into the
closed sets below (`other` for the rest), so no client can add series.
"""

from http import HTTPStatus

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as mp

from .model import LoadedModel

LATENCY = Histogram(
    "fraud_prediction_latency_seconds",
    "Time to validate, score and answer one request; model_version is the version that "
    "answered it (the champion when a request's rows went to more than one).",
    ["endpoint", "model_version"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
PREDICTIONS = Counter(
    "fraud_predictions_total",
    "Transactions scored.",
    ["model_version", "variant", "decision"],
)
ERRORS = Counter(
    "fraud_request_errors_total",
    "Requests answered with an error.",
    ["endpoint", "reason"],
)
SCORING_ERRORS = Counter(
    "fraud_scoring_errors_total",
    "Rows a model failed to score (the request answered 500), by version and variant: a "
    "rollout's error rate per variant.",
    ["model_version", "variant"],
)
MODEL_INFO = Gauge(
    "fraud_model_info",
    "1 for each model version served, by alias.",
    ["model_version", "alias"],
    multiprocess_mode="livemax",
)
MODEL_RELOADS = Counter("fraud_model_reloads_total", "Model reload attempts.", ["result"])
SCORE = Histogram(
    "fraud_score",
    "Fraud probabilities returned.",
    ["model_version"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0),
)

LOG_WRITTEN = Counter(
    "fraud_prediction_log_written_total", "Prediction-log rows written to the database."
)
LOG_DROPPED = Counter(
    "fraud_prediction_log_dropped_total",
    "Prediction-log rows not written, by reason: buffer_full and unavailable (memory and spool "
    "full; unavailable while the database fails), rejected (the database refused the row's "
    "values), shutdown (only in memory when the worker stopped).",
    ["reason"],
)
# Every reason is exported from the start (as 0), so dashboards and alerts see the series.
for _reason in ("buffer_full", "unavailable", "rejected", "shutdown"):
    LOG_DROPPED.labels(_reason)
LOG_PENDING = Gauge(
    "fraud_prediction_log_pending_rows",
    "Prediction-log rows waiting in the workers' buffers and spools or being written.",
    multiprocess_mode="livesum",
)
LOG_PENDING_AGE = Gauge(
    "fraud_prediction_log_pending_age_seconds",
    "How long the oldest prediction-log row waiting in a worker's buffer or spool has waited "
    "(0 when none waits): how far behind the log is.",
    multiprocess_mode="livemax",
)
LOG_UNEXPLAINED = Counter(
    "fraud_prediction_log_unexplained_total",
    "Flagged rows logged without an explanation, by reason: budget (the log writer's share of "
    "a core for explanations was spent, in a burst of alerts), unexplainable (the model "
    "cannot explain).",
    ["reason"],
)
for _reason in ("budget", "unexplainable"):
    LOG_UNEXPLAINED.labels(_reason)
FEEDBACK = Counter("fraud_feedback_total", "Analyst labels stored.", ["label"])

# HTTP metrics of the routes without their own latency metric (endpoints.Endpoint.http_metrics);
# url_rule is the route's path rule from the endpoint table.
HTTP_LATENCY = Histogram(
    "flask_http_request_duration_seconds",
    "HTTP request duration in seconds.",
    ["method", "url_rule", "status"],
)
HTTP_REQUESTS = Counter("flask_http_request_total", "HTTP requests.", ["method", "status"])
OTHER = "other"
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
HTTP_STATUSES = {int(s): str(int(s)) for s in HTTPStatus}


def method_label(method: str) -> str:
    """A request method as a label: a standard one, else `other`."""
    return method if method in HTTP_METHODS else OTHER


def status_label(status: int) -> str:
    """A response status as a label: a registered one, else `other`."""
    return HTTP_STATUSES.get(status, OTHER)


_shown: set[tuple[str, str]] = set()


def set_model_info(
    champion: LoadedModel | None, challenger: LoadedModel | None, canary: LoadedModel | None
) -> None:
    """Point fraud_model_info at the versions served now (0 for those no longer served)."""
    aliases = (("champion", champion), ("challenger", challenger), ("canary", canary))
    served = {(m.version, alias) for alias, m in aliases if m}
    # Multiprocess files keep every label set ever written, so old ones are zeroed, not removed.
    for version, alias in _shown | served:
        MODEL_INFO.labels(model_version=version, alias=alias).set(
            1 if (version, alias) in served else 0
        )
    _shown.update(served)


def exposition(multiprocess: bool) -> tuple[bytes, str]:
    """The /metrics body: every worker's samples in `multiprocess` mode (gunicorn sets
    PROMETHEUS_MULTIPROC_DIR), else this process's."""
    if multiprocess:
        # Every registry's values live in the shared files; one collector reads them all.
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
