"""The log writer, monitoring and retraining know only the PredictionSink protocol: they run
the same against a sink that keeps its rows in memory as against the SQL one."""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY
from test_monitor_window import logged_rows
from test_prediction_log_writer import batch

from fraud_detection.log_record import (
    LOG_COLUMNS,
    SHADOW,
    LabelRecord,
    Labels,
    Row,
    label_records,
    utc_now,
)
from fraud_detection.monitoring import count_log
from fraud_detection.monitoring.estimation import score_sums_of_frame
from fraud_detection.monitoring.window import happened, label_aggregate
from fraud_detection.prediction_sink import (
    PRESUMED,
    AsOf,
    LabelAggregate,
    RefusedRows,
    ScoreSum,
    WindowAggregate,
)
from fraud_detection.reference import bin_counts, build_reference
from fraud_detection.retraining import mature_production_rows
from fraud_detection.schema import FEATURES, LABEL
from fraud_detection.serving.log_writer import PredictionLogWriter
from fraud_detection.sql_sink import open_sink
from waiting import wait_for


class MemorySink:
    """A PredictionSink in a list, refusing the rows of the ids in `refuse` as a database
    refuses bad values."""

    destination = "memory://test"

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.rows: list[Row] = []
        self.labels: dict[str, LabelRecord] = {}
        self.refuse = refuse
        self.closed = False

    def write(self, rows: Sequence[Row]) -> None:
        if any(row[0] in self.refuse for row in rows):
            raise RefusedRows("an id this sink refuses")
        self.rows.extend(rows)

    def store_labels(self, labels: Labels) -> None:
        now = utc_now()
        for record in label_records(labels):
            self.labels[record.transaction_id] = replace(
                record, observed_at=record.observed_at or now
            )

    def read_window(self, since: datetime) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=list(LOG_COLUMNS)).drop(columns="latency_ms")
        frame = pd.DataFrame(frame[happened(frame) >= since].reset_index(drop=True))
        known = [self.labels.get(tid) for tid in frame["transaction_id"]]
        frame["label"] = pd.Series([r and r.label for r in known], dtype="float64")
        frame["source"] = [r and r.source for r in known]
        frame["label_observed_at"] = pd.Series(
            [r and r.observed_at for r in known], dtype="datetime64[ns]"
        )
        return frame

    def aggregate_labels(self, span: AsOf) -> LabelAggregate:
        return label_aggregate(self.read_window(span.mature_since), span)

    def aggregate_window(
        self,
        since: datetime,
        feature_edges: Mapping[str, Sequence[float]],
        score_edges: Sequence[float],
        version: str,
        as_of: datetime | None = None,
    ) -> WindowAggregate:
        window = self.read_window(since)
        if as_of is not None:
            window = window[happened(window) <= as_of]
            late = window["label_observed_at"] > as_of
            window = window.assign(label=window["label"].mask(late))
        served = window[window["variant"] != SHADOW]
        scored = served.loc[served["model_version"] == version, "probability"]

        def bins(values: pd.Series, edges: Sequence[float]) -> list[int]:
            return bin_counts(values.to_numpy(np.float64), np.asarray(edges)).tolist()

        keys = ["variant", "model_version", "is_fraud", "label"]
        groups = window.groupby(keys, dropna=False).size()
        return WindowAggregate(
            [
                (v, m, bool(f), None if np.isnan(label) else int(label), int(n))
                for (v, m, f, label), n in groups.items()
            ],
            {name: bins(served[name], edges) for name, edges in feature_edges.items()},
            bins(scored, score_edges),
        )

    def score_sums(
        self, start: datetime, end: datetime, knots: Mapping[str, Sequence[float]]
    ) -> list[ScoreSum]:
        window = self.read_window(start)
        served = window[(happened(window) <= end) & (window["variant"] != SHADOW)]
        return score_sums_of_frame(served, knots)

    def labelled_chunks(
        self, since: datetime, chunk_rows: int = 50_000, until: datetime | None = None
    ) -> Iterator[pd.DataFrame]:
        window = self.read_window(since)
        if until is None:
            window = window.dropna(subset=["label"])
            columns = [*FEATURES, "label"]
        else:
            window = window[happened(window) <= until]
            presumed = window["label"].isna()
            window = window.assign(
                label=window["label"].fillna(0.0), source=window["source"].mask(presumed, PRESUMED)
            )
            columns = [*FEATURES, "label", "source"]
        latest = window.drop_duplicates("transaction_id", keep="last")
        rows = latest[columns].rename(columns={"label": LABEL})
        for start in range(0, len(rows), chunk_rows):
            yield rows.iloc[start : start + chunk_rows].astype({LABEL: "int64"})

    def close(self) -> None:
        self.closed = True


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_writer_writes_to_any_sink_in_order_bisecting_refused_rows(tmp_path: Path) -> None:
    sink = MemorySink(refuse=frozenset({"bad-1", "bad-2"}))
    writer = PredictionLogWriter(sink, spool_dir=tmp_path / "spool")
    writer.start()
    written = sample("fraud_prediction_log_written_total")
    rejected = sample("fraud_prediction_log_dropped_total", reason="rejected")
    ids = [f"r{i}" for i in range(300)]
    ids[40], ids[250] = "bad-1", "bad-2"

    for start in range(0, 300, 30):
        writer.log(batch(ids[start : start + 30]))

    wait_for(lambda: sample("fraud_prediction_log_written_total") - written == 298)
    assert [row[0] for row in sink.rows] == [tid for tid in ids if not tid.startswith("bad")]
    assert sample("fraud_prediction_log_dropped_total", reason="rejected") - rejected == 2
    assert [row[-1] for row in sink.rows[:2]] == [None, None]
    writer.close()
    assert sink.closed
    assert not list((tmp_path / "spool").rglob("*.spool"))  # every row written or counted


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[tuple[MemorySink, Any]]:
    """The same rows and labels in memory and in SQLite."""
    memory, sql = MemorySink(), open_sink(f"sqlite:///{tmp_path / 'log.db'}")
    rows = logged_rows(600, seed=5)
    labels = {f"t{i}": int(i % 7 == 0) for i in range(0, 590, 3)}
    for sink in (memory, sql):
        sink.write(rows)
        sink.store_labels(labels)
    yield memory, sql
    sql.close()


def test_monitoring_counts_any_sink_alike(sinks: tuple[MemorySink, Any]) -> None:
    rng = np.random.default_rng(3)
    reference = build_reference(
        rng.normal(size=(2_000, len(FEATURES))), FEATURES, rng.beta(0.5, 20, size=2_000), 0.05
    )
    since = utc_now() - timedelta(hours=5)
    memory, sql = (count_log(sink, since, reference, "4") for sink in sinks)
    assert memory == sql
    assert 0 < memory[0].served.rows < 300


def test_estimation_sums_scores_of_any_sink_alike(sinks: tuple[MemorySink, Any]) -> None:
    start, end = utc_now() - timedelta(hours=5), utc_now() - timedelta(hours=1)
    knots = {"4": [0.0, 0.01, 0.05, 0.5], "3": [0.02]}
    memory, sql = (sorted(sink.score_sums(start, end, knots)) for sink in sinks)
    assert [s[:4] for s in memory] == [s[:4] for s in sql]
    assert [s.score_sum for s in memory] == pytest.approx([s.score_sum for s in sql])
    assert 0 < sum(s.rows for s in memory) < 300


def test_retraining_reads_labelled_rows_from_any_sink_alike(
    sinks: tuple[MemorySink, Any],
) -> None:
    memory, sql = (mature_production_rows(sink, 1, maturity_days=0) for sink in sinks)
    assert memory.labelled == sql.labelled > 150
    pd.testing.assert_frame_equal(memory.sample.rows, sql.sample.rows)
