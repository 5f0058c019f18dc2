"""A window of the prediction log as the counts monitoring judges: the served rows' tally,
their rows per reference bin of each feature and of the champion's score, and a tally per
variant; judged as of a moment, also the reviews of the window's alerts, the mature window's
settled rows, and a cohort per event day. From a DataFrame (the plain definition) or from the
aggregates a prediction sink computes (in the database for SQL), in bounded memory."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from ..log_record import SHADOW
from ..prediction_sink import AsOf, LabelAggregate, PredictionSink
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
    settled_variants: Mapping[tuple[str, str], Tally] = field(default_factory=dict)
    """Each (variant, version)'s tally of the mature window."""

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
    sink: PredictionSink,
    since: datetime,
    reference: Mapping[str, Any],
    version: str,
    horizon: Horizon | None = None,
) -> tuple[WindowCounts, dict[tuple[str, str], Tally]]:
    """The counts of the rows that happened since `since` (served rows judged, shadow rows
    apart) and the tally of every (variant, version), aggregated by the sink: only a few
    hundred numbers come back whatever the window holds. Judged as of a moment (`horizon`),
    only what happened and was learnt by then counts, and the label side comes too."""
    profiles = reference["features"]
    edges = {name: profiles[name]["edges"] for name in reference_features(reference)}
    as_of = horizon.as_of if horizon else None
    window = sink.aggregate_window(since, edges, reference["score"]["edges"], version, as_of)
    variants = _variant_tallies(window.groups)
    served = sum((t for (variant, _), t in variants.items() if variant != SHADOW), Tally())
    counts = WindowCounts(served, window.feature_bins, window.score_bins)
    if horizon is None:
        return counts, variants
    span = horizon.span(since)
    return with_labels(counts, sink.aggregate_labels(span), span), variants


def _variant_tallies(
    groups: Sequence[tuple[str, str, bool, int | None, int]],
) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = {}
    for variant, version, flagged, label, n in groups:
        cell = {} if label is None else {CELLS[flagged, label == 1]: n}
        add = Tally(rows=n, flagged=n if flagged else 0, **cell)
        tallies[variant, version] = tallies.get((variant, version), Tally()) + add
    return tallies


def with_labels(counts: WindowCounts, labels: LabelAggregate, span: AsOf) -> WindowCounts:
    """`counts` with what the labels say as of a moment: the mature window's settled rows
    (an unlabelled one legitimate), per variant and served, the reviews and the cohorts."""
    settled = _variant_tallies(
        [
            (v, m, flag, 0 if label is None else label, n)
            for v, m, flag, label, _, n in labels.settled
        ]
    )
    served = [group for group in labels.settled if group[0] != SHADOW]
    alerts, reviewed, confirmed = labels.reviews
    return replace(
        counts,
        settled=Settled(
            span.mature_since,
            span.mature_until,
            sum((t for (variant, _), t in settled.items() if variant != SHADOW), Tally()),
            presumed=sum(n for *_, label, _, n in served if label is None),
            reviewed=sum(n for *_, source, n in served if source == "review"),
            chargebacks=sum(n for *_, source, n in served if source == "chargeback"),
        ),
        settled_variants=settled,
        reviews=Reviews(alerts, reviewed, confirmed),
        known=labels.known,
        cohorts=tuple(Cohort(*cohort) for cohort in labels.cohorts),
    )


def count_frame_as_of(
    frame: pd.DataFrame,
    reference: Mapping[str, Any],
    version: str,
    since: datetime,
    horizon: Horizon,
) -> tuple[WindowCounts, dict[tuple[str, str], Tally]]:
    """`count_log` of rows in memory: its plain definition. `frame` holds the rows from the
    mature window's start on, with `event_time`, `source` and `label_observed_at` beside the
    label (as `read_window` gives them)."""
    span = horizon.span(since)
    at = happened(frame)
    learnt = frame["label"].notna() & (pd.to_datetime(frame["label_observed_at"]) <= span.as_of)
    judged = frame.assign(label=frame["label"].where(learnt))[(at >= since) & (at <= span.as_of)]
    served = judged[judged["variant"] != SHADOW]
    counts = count_frame(served, reference, version)
    return with_labels(counts, label_aggregate(frame, span), span), tally_variants(judged)


def label_aggregate(frame: pd.DataFrame, span: AsOf) -> LabelAggregate:
    """What the labels of rows in memory say as of `span.as_of` (the plain definition of a
    sink's `aggregate_labels`)."""
    at = happened(frame)
    learnt = (
        frame["label"].notna() & (pd.to_datetime(frame["label_observed_at"]) <= span.as_of)
    ).to_numpy()
    label = frame["label"].to_numpy(dtype=np.float64)
    source = frame["source"].where(learnt).to_numpy(dtype=object)
    flagged = frame["is_fraud"].to_numpy(dtype=bool)
    alert = flagged & (frame["variant"] != SHADOW).to_numpy()
    review, chargeback = source == "review", source == "chargeback"
    known = learnt | (at <= span.mature_until).to_numpy()
    recent = (at >= span.since).to_numpy()
    in_mature = ((at >= span.mature_since) & (at <= span.mature_until)).to_numpy()
    marked = frame.assign(learnt=np.where(learnt, label, np.nan), source=source)
    keys = ["variant", "model_version", "is_fraud", "learnt", "source"]
    settled = []
    for key, n in marked[in_mature].groupby(keys, dropna=False).size().items():
        v, m, f, lab, src = cast(tuple[Any, ...], key)
        known_label = None if np.isnan(lab) else int(lab)
        settled.append(
            (str(v), str(m), bool(f), known_label, src if isinstance(src, str) else None, int(n))
        )
    cohort_rows = ((at >= span.mature_since) & (at <= span.as_of)).to_numpy() & (
        frame["variant"] != SHADOW
    ).to_numpy()
    days = (
        pd.DataFrame(
            {
                "rows": 1,
                "alerts": alert,
                "reviewed": alert & review,
                "chargebacks": chargeback,
                "settled": known,
            }
        )[cohort_rows]
        .groupby(at[cohort_rows].dt.date.to_numpy())
        .sum()
    )
    window = cohort_rows & recent
    return LabelAggregate(
        settled,
        (
            int((window & alert).sum()),
            int((window & alert & review).sum()),
            int((window & alert & review & (label == 1.0)).sum()),
        ),
        int((window & known).sum()),
        [
            (day, *(int(v) for v in values))
            for day, values in zip(days.index, days.to_numpy(), strict=True)
        ],
    )


def happened(frame: pd.DataFrame) -> "pd.Series[Any]":
    """When each row happened: its event time, or its receive time when it has none."""
    created = pd.to_datetime(frame["created_at"]).astype("datetime64[ns]")
    if "event_time" not in frame:
        return created
    return pd.to_datetime(frame["event_time"]).astype("datetime64[ns]").fillna(created)
