"""One monitoring run over the prediction log: the window, the served rows, the verdict."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..calibration import load_maps
from ..log_record import SHADOW
from ..prediction_sink import PredictionSink
from ..registry import CHAMPION, Registry
from .drift import DriftRule, MonitorResult, judge
from .estimation import JUDGED, Estimation, estimation_of, expect
from .live import Tally, metrics_by_variant
from .maturity import Horizon
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
    registry: Registry,
    sink: PredictionSink,
    rule: DriftRule,
    start: datetime,
    end: datetime,
    maturity: timedelta,
) -> Monitoring:
    """Judge the champion as of `end` on the rows that happened in [start, end] against its
    reference, with labels maturing after `maturity`, from counts the sink aggregates
    (memory does not grow with the window)."""
    manifest = registry.manifest(CHAMPION)
    version = str(manifest["version"])
    reference = json.loads(registry.read_file(version, "reference.json"))
    horizon = Horizon(end, maturity)
    counts, variants = count_log(sink, start, reference, version, horizon)
    result = judge(counts, reference, manifest, rule, period=(start, end), horizon=horizon)
    estimation = estimate_window(
        registry, sink, result, variants, (start, end), counts.settled_variants
    )
    by_variant = metrics_by_variant(variants, counts.settled_variants)
    return Monitoring(result.with_estimation(estimation), by_variant)


def estimate_window(
    registry: Registry,
    sink: PredictionSink,
    result: MonitorResult,
    variants: Mapping[tuple[str, str], Tally],
    period: tuple[datetime, datetime],
    settled_variants: Mapping[tuple[str, str], Tally] | None = None,
) -> Estimation:
    """The window's figures estimated from calibrated scores, each served version's rows
    through its own map; judged as of a moment, the mature window's too (`settled_variants`:
    its tallies), beside the figures measured on its rows."""
    served = _served_rows(variants)
    versions = set(served) | set(_served_rows(settled_variants or {}))
    maps, missing = load_maps(registry, sorted(versions, key=lambda v: (len(v), v)))
    knots = {version: cal.x for version, cal in maps.items()}
    rule, settled = result.rule, result.settled
    mature = measured = None
    if settled is not None and result.horizon is not None:
        mature = expect(sink.score_sums(settled.start, settled.end, knots), maps)
        measured = {
            name: (result.figures[name].measured, settled.tally.rows)
            for name in JUDGED
            if name in result.figures
        }
    return estimation_of(
        expect(sink.score_sums(*period, knots), maps),
        served,
        missing,
        baselines={"f1": rule.baseline_f1, "recall": rule.baseline_recall},
        alert_threshold=rule.alert_threshold,
        mature=mature,
        measured=measured,
    )


def _served_rows(variants: Mapping[tuple[str, str], Tally]) -> dict[str, int]:
    """Rows per model version of every variant but shadow."""
    served: dict[str, int] = {}
    for (variant, version), tally in variants.items():
        if variant != SHADOW:
            served[version] = served.get(version, 0) + tally.rows
    return served
