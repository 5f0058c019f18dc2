"""Explanations of flagged rows, computed by the log writer off the request path and stored
in the log's explanation column for the analysts' review queue.

TreeSHAP costs about a millisecond a row in Python: on the request path, a burst of flagged
transactions (card testing) cut the service to a fifth of its capacity. The writer explains
instead, within a share of one core: in a burst the rows past that budget are logged without
an explanation (counted in fraud_prediction_log_unexplained_total), and scoring keeps its pace.
"""

import time
from collections.abc import Callable

import numpy as np
import orjson

from ..explain import Explainer
from ..log_record import LOG_COLUMNS, SHADOW, Row
from ..schema import FEATURES, N_FEATURES
from . import metrics

FLAG, VARIANT, VERSION, EXPLANATION = (
    LOG_COLUMNS.index(name) for name in ("is_fraud", "variant", "model_version", "explanation")
)
FEATURES_AT = LOG_COLUMNS.index(FEATURES[0])
EXPLAIN_SHARE = 0.02
"""Of one core, per worker, at most: about 20 rows a second at 1 ms a row, five times the
flagged rows of a worker at full speed at the usual fraud rate (and far more than analysts
review: the review queue takes the highest scores, about 100 a day)."""
BURST_SECONDS = 5.0
"""The budget saved up while quiet, in seconds of wall time: a short burst (about 100 rows)
is explained whole, and the first seconds of a long one cost no more than the rest."""
CHUNK_ROWS = 8
"""Rows explained per call: the writer holds the interpreter for milliseconds at a time, not
for a whole batch, so requests keep their pace while it explains."""


class RowExplainer:
    """Adds explanations to the flagged, answered rows that have none, within the budget."""

    def __init__(
        self,
        explainer_for: Callable[[str], Explainer | None],
        top: int,
        share: float = EXPLAIN_SHARE,
    ) -> None:
        self._explainer_for = explainer_for
        self._top = top
        self._share = share
        self._credit = share * BURST_SECONDS  # CPU seconds it may spend now
        self._refilled = time.monotonic()

    def __call__(self, rows: list[Row | None]) -> list[Row | None]:
        """`rows` with the explanations added (rows that cannot be built stay None)."""
        wanted: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            if row is None or not row[FLAG] or row[VARIANT] == SHADOW:
                continue  # a shadow model's flags reach no one
            if row[EXPLANATION] is None:
                wanted.setdefault(row[VERSION], []).append(i)
        if not wanted:
            return rows
        explained = list(rows)
        for version, positions in wanted.items():
            explainer = self._explainer_for(version)
            if explainer is None:
                metrics.LOG_UNEXPLAINED.labels("unexplainable").inc(len(positions))
                continue
            for start in range(0, len(positions), CHUNK_ROWS):
                chunk = positions[start : start + CHUNK_ROWS]
                if not self._afford():
                    metrics.LOG_UNEXPLAINED.labels("budget").inc(len(positions) - start)
                    break
                self._explain(explainer, rows, chunk, explained)
        return explained

    def _explain(
        self,
        explainer: Explainer,
        rows: list[Row | None],
        positions: list[int],
        explained: list[Row | None],
    ) -> None:
        started = time.thread_time()
        x = np.array(
            [rows[i][FEATURES_AT : FEATURES_AT + N_FEATURES] for i in positions],  # type: ignore[index]
            dtype=np.float32,
        )
        for i, explanation in zip(positions, explainer.explain(x, self._top), strict=True):
            row = rows[i]
            assert row is not None
            text = orjson.dumps(explanation).decode()
            explained[i] = (*row[:EXPLANATION], text, *row[EXPLANATION + 1 :])
        self._credit -= time.thread_time() - started

    def _afford(self) -> bool:
        now = time.monotonic()
        self._credit = min(
            self._credit + (now - self._refilled) * self._share, self._share * BURST_SECONDS
        )
        self._refilled = now
        return self._credit > 0
