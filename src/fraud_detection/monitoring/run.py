"""One monitoring run over the prediction log: the window, the served rows, the verdict."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..prediction_sink import PredictionSink
from ..registry import CHAMPION, Registry
from .drift import DriftRule, MonitorResult, judge
from .live import metrics_by_variant
from .report import format_report, format_variants
from .window import count_log


@dataclass(frozen=True)
class Monitoring:
    """The champion's verdict on the window, and each variant's metrics beside it."""

    result: MonitorResult
    variants: dict[str, dict[str, Any]]

    def report(self) -> str:
        """Markdown: the verdict, then the variants side by side when more than one scored."""
        text = format_report(self.result)
        if len(self.variants) > 1:
            text += "\n" + format_variants(self.variants)
        return text

    def to_json(self) -> dict[str, Any]:
        return {**self.result.to_json(), "variants": self.variants}


def monitor_champion(
    registry: Registry, sink: PredictionSink, rule: DriftRule, start: datetime, end: datetime
) -> Monitoring:
    """Judge the champion on the rows logged in [start, end] against its reference, from
    counts the sink aggregates (memory does not grow with the window)."""
    manifest = registry.manifest(CHAMPION)
    version = str(manifest["version"])
    reference = json.loads(registry.read_file(version, "reference.json"))
    counts, variants = count_log(sink, start, reference, version)
    result = judge(counts, reference, manifest, rule, period=(start, end))
    return Monitoring(result, metrics_by_variant(variants))
