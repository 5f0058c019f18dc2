"""Live performance and drift of the champion over a window of logged predictions.

`live` measures quality on labelled rows, `window` counts a window of the log (in the
database, so memory stays flat), `drift` holds PSI and the drift rule (pure maths),
`report` writes the Markdown, `run` judges the champion on a window of the prediction log, and
`push` is the one side effect: gauges to a Pushgateway.
"""

from .drift import DriftRule, MonitorResult, evaluate, judge, psi, psi_of_counts
from .live import Tally, live_metrics, metrics_by_variant, metrics_of, variant_metrics
from .push import JOB, push_gauges
from .report import format_report, format_variants
from .run import Monitoring, monitor_champion
from .window import WindowCounts, count_frame, count_log

__all__ = [
    "JOB",
    "DriftRule",
    "MonitorResult",
    "Monitoring",
    "Tally",
    "WindowCounts",
    "count_frame",
    "count_log",
    "evaluate",
    "format_report",
    "format_variants",
    "judge",
    "live_metrics",
    "metrics_by_variant",
    "metrics_of",
    "monitor_champion",
    "psi",
    "psi_of_counts",
    "push_gauges",
    "variant_metrics",
]
