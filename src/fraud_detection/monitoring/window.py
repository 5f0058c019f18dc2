"""A window of the prediction log as the counts monitoring judges: the served rows' tally,
their rows per reference bin of each feature and of the champion's score, and a tally per
variant. From a DataFrame (the plain definition) or from the aggregates a prediction sink
computes (in the database for SQL), in bounded memory."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..log_record import SHADOW
from ..prediction_sink import PredictionSink
from ..reference import bin_counts
from ..schema import FEATURES
from .live import Tally, tally

CELLS = {(True, True): "tp", (True, False): "fp", (False, True): "fn", (False, False): "tn"}
"""The confusion cell of a labelled row: (flagged, labelled fraud)."""


@dataclass(frozen=True)
class WindowCounts:
    """What the drift rule needs of the judged rows, and nothing that grows with them."""

    served: Tally
    feature_counts: dict[str, list[int]]
    """Rows per reference bin of each feature the reference profiles."""
    score_counts: list[int]
    """Rows the champion's version scored, per reference score bin."""

    @property
    def scored(self) -> int:
        return sum(self.score_counts)


def reference_features(reference: Mapping[str, Any]) -> list[str]:
    """The features the reference profiles, in schema order."""
    return [name for name in FEATURES if name in reference["features"]]


def count_frame(frame: pd.DataFrame, reference: Mapping[str, Any], version: str) -> WindowCounts:
    """The counts of rows already in memory, every one of them judged."""
    profiles = reference["features"]
    scored = frame.loc[frame["model_version"].astype(str) == version, "probability"]
    return WindowCounts(
        served=tally(frame),
        feature_counts={
            name: _counts(frame[name], profiles[name]["edges"])
            for name in reference_features(reference)
        },
        score_counts=_counts(scored, reference["score"]["edges"]),
    )


def _counts(values: pd.Series, edges: Sequence[float]) -> list[int]:
    counts = bin_counts(values.to_numpy(dtype=np.float64), np.asarray(edges, dtype=np.float64))
    return [int(c) for c in counts]


def count_log(
    sink: PredictionSink, since: datetime, reference: Mapping[str, Any], version: str
) -> tuple[WindowCounts, dict[tuple[str, str], Tally]]:
    """The counts of the rows logged since `since` (served rows judged, shadow rows apart)
    and the tally of every (variant, version), aggregated by the sink: only a few hundred
    numbers come back whatever the window holds."""
    profiles = reference["features"]
    edges = {name: profiles[name]["edges"] for name in reference_features(reference)}
    window = sink.aggregate_window(since, edges, reference["score"]["edges"], version)
    variants = _variant_tallies(window.groups)
    served = sum((t for (variant, _), t in variants.items() if variant != SHADOW), Tally())
    return WindowCounts(served, window.feature_bins, window.score_bins), variants


def _variant_tallies(
    groups: Sequence[tuple[str, str, bool, int | None, int]],
) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = {}
    for variant, version, flagged, label, n in groups:
        cell = {} if label is None else {CELLS[flagged, label == 1]: n}
        add = Tally(rows=n, flagged=n if flagged else 0, **cell)
        tallies[variant, version] = tallies.get((variant, version), Tally()) + add
    return tallies
