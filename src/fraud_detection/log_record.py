"""One scoring call as the prediction log records it: plain values, no model, no transport.

The data plane builds a `LoggedBatch`, the log writer expands it into rows off the request
path, the spool serialises it and a sink stores the rows. All of them import this module; it
imports none of theirs (only the feature list), so the log never leads back to the server.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from .schema import FEATURES

Row = tuple[Any, ...]
"""One logged prediction: its values in LOG_COLUMNS order."""

LOG_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "created_at",
    "endpoint",
    "variant",
    "model_version",
    *FEATURES,
    "probability",
    "is_fraud",
    "threshold",
    "latency_ms",
    # New columns go last: rows spooled by an older version replay with them empty.
    "explanation",
    # When the transaction happened, as its sender said (None: when it was received).
    "event_time",
)
"""The order of a row's values, as every sink takes them."""

Explanation = Mapping[str, Any]
"""A row's TreeSHAP reasons as the API answers them (JSON-ready)."""

LABEL_SOURCES = ("review", "chargeback", "other")
"""Where a label came from: an analyst's review of an alert, a cardholder's dispute, or
anything else (labels stored before sources existed read as other)."""


@dataclass(frozen=True)
class LabelRecord:
    """One label as the log stores it: 1 fraud, 0 legitimate, and where it came from."""

    transaction_id: str
    label: int
    source: str = "other"
    observed_at: datetime | None = None
    """When it was learnt (naive UTC); None: when it was received."""
    reviewer: str | None = None


Labels = Mapping[str, int] | Sequence[LabelRecord]
"""Labels to store: {transaction id: label} (source other), or records with provenance."""


def label_records(labels: Labels) -> list[LabelRecord]:
    """`labels` as records; the last label of a transaction wins."""
    records = (
        [LabelRecord(tid, label) for tid, label in labels.items()]
        if isinstance(labels, Mapping)
        else list(labels)
    )
    return list({record.transaction_id: record for record in records}.values())


SHADOW = "shadow"
"""The variant of rows scored in the shadow of the champion: logged, never answered."""


def utc_now() -> datetime:
    """Now, as the naive UTC time the log stores (SQLite has no time zones, and one
    convention beats two)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class LoggedBatch:
    """Rows one model scored in one call, as the request saw them; expanded into rows off
    the request path. `explanations` holds the explained rows by position (None where the
    model could not explain)."""

    ids: list[str]
    features: NDArray[np.float32]
    probabilities: NDArray[np.float32]
    is_fraud: NDArray[np.bool_]
    threshold: float
    version: str
    variant: str
    endpoint: str
    created_at: datetime
    latency_ms: float
    explanations: Mapping[int, Explanation | None] = field(default_factory=dict)
    event_times: Sequence[datetime | None] = ()
    """Each row's event time (naive UTC); empty when no row carried one."""

    def rows(self) -> list[Row]:
        """The batch as rows, values in LOG_COLUMNS order."""
        return log_rows(
            self.ids,
            (self.created_at, self.endpoint, self.variant, self.version),
            self.features.astype(np.float64).tolist(),
            self.probabilities.tolist(),
            self.is_fraud.tolist(),
            (self.threshold, self.latency_ms),
            explanation_texts(self.explanations, len(self.ids)),
            self.event_times,
        )


def log_rows(
    ids: Sequence[str],
    head: Sequence[Any],
    features: Sequence[Sequence[float]],
    probabilities: Sequence[float],
    flags: Sequence[bool],
    tail: Sequence[Any],
    explanations: Sequence[str | None],
    event_times: Sequence[datetime | None] = (),
) -> list[Row]:
    """Rows in LOG_COLUMNS order: id, the batch's head, features, probability, flag, tail,
    explanation, event time (None for every row when `event_times` is empty)."""
    happened = event_times or [None] * len(ids)
    return [
        (tid, *head, *values, p, flag, *tail, e, at)
        for tid, values, p, flag, e, at in zip(
            ids, features, probabilities, flags, explanations, happened, strict=True
        )
    ]


def explanation_texts(
    explanations: Mapping[int, Explanation | None], rows: int
) -> list[str | None]:
    """Each row's explanation as the JSON text the log stores (None where there is none)."""
    texts: list[str | None] = [None] * rows
    for row, explanation in explanations.items():
        if explanation is not None:
            texts[row] = orjson.dumps(explanation).decode()
    return texts
