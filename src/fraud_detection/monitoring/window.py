"""A window of the prediction log as the counts monitoring judges: the served rows' tally,
their rows per reference bin of each feature and of the champion's score, and a tally per
variant; judged as of a moment, also the reviews of the window's alerts, the mature window's
settled rows, and a cohort per event day. From a DataFrame (the plain definition) or from the
aggregates a prediction sink computes (in the database for SQL), in bounded memory."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..log_record import SHADOW
from ..prediction_sink import PredictionSink
from ..reference import bin_counts
from ..schema import FEATURES
from .live import Tally, tally, tally_variants
from .maturity import Cohort, Horizon, Reviews, Settled

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
    settled: Settled | None = None
    """Judged as of a moment: the mature window, whose rates are measured. None: the labels of
    `served` are the rows' final classes (a labelled frame, judged whole)."""
    reviews: Reviews = field(default_factory=Reviews)
    """The served alerts of the window and what review said of them."""
    known: int | None = None
    """Rows of the window whose class is known (labelled, or mature); None: the labelled ones."""
    cohorts: tuple[Cohort, ...] = ()
    """Per event day from the mature window's start on."""

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


def count_frame_as_of(
    frame: pd.DataFrame,
    reference: Mapping[str, Any],
    version: str,
    since: datetime,
    horizon: Horizon,
) -> tuple[WindowCounts, dict[tuple[str, str], Tally], dict[tuple[str, str], Tally]]:
    """The counts of rows in memory judged as of `horizon.as_of`: the plain definition of
    what `count_log` computes in SQL. `frame` holds the rows from the mature window's start
    on, with `event_time`, `source` and `label_observed_at` beside the label.

    A row happens at its event time (its receive time when it has none); a label counts once
    observed by `as_of`. The window is `since`..`as_of`: its served rows, their bins, their
    labels as known and the reviews of its alerts. The mature window is the same span moved
    back by the horizon: there an unlabelled row is legitimate. Returns the counts, each
    (variant, version)'s tally of the window, and each one's tally of the mature window.
    """
    as_of = horizon.as_of
    at = happened(frame)
    observed = pd.to_datetime(frame["label_observed_at"])
    known = (frame["label"].notna() & (observed <= as_of)).to_numpy()
    label = np.where(known, frame["label"].to_numpy(dtype=np.float64), np.nan)
    source = frame["source"].to_numpy(dtype=object)
    served = (frame["variant"] != SHADOW).to_numpy()
    flagged = frame["is_fraud"].to_numpy(dtype=bool)
    review, chargeback = known & (source == "review"), known & (source == "chargeback")
    start, end = horizon.mature_window(since)
    recent = ((at >= since) & (at <= as_of)).to_numpy()
    mature = ((at >= start) & (at <= end)).to_numpy()
    settled_now = known | (at <= horizon.cut).to_numpy()
    judged = frame.assign(label=label)
    outcome = frame.assign(label=np.where(known, label, 0.0))

    counted = count_frame(judged[recent & served], reference, version)
    window = recent & served & flagged
    in_mature = mature & served
    span = served & ((at >= start) & (at <= as_of)).to_numpy()
    days = (
        pd.DataFrame(
            {
                "rows": 1,
                "alerts": flagged,
                "reviewed": flagged & review,
                "chargebacks": chargeback,
                "settled": settled_now,
            }
        )[span]
        .groupby(at[span].dt.date.to_numpy())
        .sum()
    )
    counts = WindowCounts(
        counted.served,
        counted.feature_counts,
        counted.score_counts,
        settled=Settled(
            start,
            end,
            tally(outcome[in_mature]),
            presumed=int((in_mature & ~known).sum()),
            reviewed=int((in_mature & review).sum()),
            chargebacks=int((in_mature & chargeback).sum()),
        ),
        reviews=Reviews(
            alerts=int(window.sum()),
            reviewed=int((window & review).sum()),
            confirmed=int((window & review & (label == 1.0)).sum()),
        ),
        known=int((recent & served & settled_now).sum()),
        cohorts=tuple(
            Cohort(day, *(int(v) for v in values))
            for day, values in zip(days.index, days.to_numpy(), strict=True)
        ),
    )
    return counts, tally_variants(judged[recent]), tally_variants(outcome[mature])


def happened(frame: pd.DataFrame) -> "pd.Series[Any]":
    """When each row happened: its event time, or its receive time when it has none."""
    created = pd.to_datetime(frame["created_at"])
    if "event_time" not in frame:
        return created
    return pd.to_datetime(frame["event_time"]).fillna(created)
