"""One monitoring run over the prediction log: the window, the served rows, the verdict."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from ..prediction_log import read_window
from ..registry import CHAMPION, Registry
from .drift import DriftRule, MonitorResult, evaluate
from .live import variant_metrics
from .report import format_report, format_variants


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
    registry: Registry, engine: Engine, rule: DriftRule, start: datetime, end: datetime
) -> Monitoring:
    """Judge the champion on the rows logged in [start, end] against its reference."""
    manifest = registry.manifest(CHAMPION)
    reference = json.loads(registry.read_file(str(manifest["version"]), "reference.json"))
    window = read_window(engine, start)
    # Shadow scores were never acted on; the served decisions are what analysts judge.
    served = window[window["variant"] != "shadow"]
    result = evaluate(served, reference, manifest, rule, period=(start, end))
    return Monitoring(result, variant_metrics(window))
