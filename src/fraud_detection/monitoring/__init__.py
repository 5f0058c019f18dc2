"""Live performance and drift of the champion over a window of logged predictions.

`live` measures quality on labelled rows, `drift` holds PSI and the drift rule (pure maths),
`report` writes the Markdown, and `push` is the one side effect: gauges to a Pushgateway.
"""

from .drift import DriftRule, MonitorResult, evaluate, psi
from .live import live_metrics, variant_metrics
from .push import JOB, push_gauges
from .report import format_report, format_variants

__all__ = [
    "JOB",
    "DriftRule",
    "MonitorResult",
    "evaluate",
    "format_report",
    "format_variants",
    "live_metrics",
    "psi",
    "push_gauges",
    "variant_metrics",
]
