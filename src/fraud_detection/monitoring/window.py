"""A window of the prediction log as the counts monitoring judges: the served rows' tally,
their rows per reference bin of each feature and of the champion's score, and a tally per
variant. From a DataFrame (the plain definition) or from the log in SQL, in bounded memory."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.exc import SQLAlchemyError

from ..errors import PredictionLogError
from ..prediction_log import error_reason, feedback, is_logging, predictions
from ..reference import bin_counts
from ..schema import FEATURES
from .live import Tally, tally

SHADOW = "shadow"
"""Shadow scores were never acted on; the served decisions are what analysts judge."""


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
    engine: Engine, since: datetime, reference: Mapping[str, Any], version: str
) -> tuple[WindowCounts, dict[tuple[str, str], Tally]]:
    """The counts of the rows logged since `since` (served rows judged, shadow rows apart)
    and the tally of every (variant, version), aggregated in the database: two scans, and
    only a few hundred numbers come back whatever the window holds."""
    profiles = reference["features"]
    names = reference_features(reference)
    score_edges = reference["score"]["edges"]
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                empty = {name: [0] * (len(profiles[name]["edges"]) + 1) for name in names}
                return WindowCounts(Tally(), empty, [0] * (len(score_edges) + 1)), {}
            in_window = _logged_since(engine, since)
            variants = _variant_tallies(conn.execute(_variant_query(in_window)).all())
            champion = predictions.c.model_version == version
            row = conn.execute(
                select(
                    func.count(),
                    *(
                        total
                        for name in names
                        for total in _at_or_above(predictions.c[name], profiles[name]["edges"])
                    ),
                    _count_if(champion),
                    *_at_or_above(predictions.c.probability, score_edges, champion),
                ).where(in_window, predictions.c.variant != SHADOW)
            ).one()
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc
    totals = [int(v or 0) for v in row]
    feature_counts = {}
    at = 1
    for name in names:
        width = len(profiles[name]["edges"])
        feature_counts[name] = _from_cumulative(totals[0], totals[at : at + width])
        at += width
    score_counts = _from_cumulative(totals[at], totals[at + 1 :])
    served = sum((t for (variant, _), t in variants.items() if variant != SHADOW), Tally())
    return WindowCounts(served, feature_counts, score_counts), variants


def _logged_since(engine: Engine, since: datetime) -> ColumnElement[bool]:
    """created_at >= since, read by a full scan on SQLite: its planner walks the created_at
    index, visiting rows in time order (random on disk), which took over 100 s where a scan
    of the same 5M rows took 4 s. PostgreSQL's statistics choose well on their own."""
    if engine.dialect.name == "sqlite":
        # A unary + keeps SQLite from using an index for the comparison.
        return type_coerce(literal_column("+predictions.created_at"), DateTime()) >= since
    return predictions.c.created_at >= since


def _variant_query(in_window: ColumnElement[bool]) -> Any:
    keys = (predictions.c.variant, predictions.c.model_version, predictions.c.is_fraud)
    return (
        select(*keys, feedback.c.label, func.count())
        .select_from(
            predictions.outerjoin(
                feedback, feedback.c.transaction_id == predictions.c.transaction_id
            )
        )
        .where(in_window)
        .group_by(*keys, feedback.c.label)
    )


def _variant_tallies(groups: Sequence[Any]) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = {}
    for variant, version, is_fraud, label, n in groups:
        flagged, n = bool(is_fraud), int(n)
        cell = {} if label is None else {CELLS[flagged, float(label) == 1.0]: n}
        add = Tally(rows=n, flagged=n if flagged else 0, **cell)
        key = (str(variant), str(version))
        tallies[key] = tallies.get(key, Tally()) + add
    return tallies


def _count_if(condition: ColumnElement[bool]) -> Any:
    # COUNT(*) FILTER (WHERE ...): SQLite 3.30+ and PostgreSQL; a third faster than SUM(CASE).
    return func.count().filter(condition)


def _at_or_above(
    column: Any, edges: Sequence[float], where: ColumnElement[bool] | None = None
) -> list[Any]:
    """Rows at or above each edge: cumulative counts whose differences are the bins."""
    return [
        _count_if(column >= float(edge) if where is None else where & (column >= float(edge)))
        for edge in edges
    ]


def _from_cumulative(rows: int, at_or_above: Sequence[int]) -> list[int]:
    """Bin counts from the rows at or above each edge: bin k is edges[k-1] <= v < edges[k],
    exactly as `reference.bin_counts` (searchsorted, side right) puts them."""
    bounds = [rows, *at_or_above, 0]
    return [bounds[k] - bounds[k + 1] for k in range(len(bounds) - 1)]
