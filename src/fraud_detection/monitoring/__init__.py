"""Live performance and drift of the champion over a window of logged predictions.

`live` measures quality on labelled rows, `drift` holds PSI and the drift rule (pure maths),
`report` writes the Markdown, `run` judges the champion on a window of the prediction log, and
`push` is the one side effect: gauges to a Pushgateway.
"""

from .drift import DriftRule, MonitorResult, evaluate, psi
from .live import live_metrics, variant_metrics
from .push import JOB, push_gauges
from .report import format_report, format_variants
from .run import Monitoring, monitor_champion

__all__ = [
    "JOB",
    "DriftRule",
    "MonitorResult",
    "Monitoring",
    "evaluate",
    "format_report",
    "format_variants",
    "live_metrics",
    "monitor_champion",
    "psi",
    "push_gauges",
    "variant_metrics",
]
