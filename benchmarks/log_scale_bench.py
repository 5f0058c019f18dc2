"""Monitoring, retraining and pruning on a big prediction log (SQLite and PostgreSQL).

Fills the log with real feature rows of the dataset (new transaction ids, scored by a champion
trained on the dataset, timestamps spread over the last 6.9 days, 30% labelled), then runs
`fraud monitor --lookback-days 7` and `fraud retrain --lookback-days 7 --dry-run` as child
processes under /usr/bin/time -v (wall time, peak RSS), and `fraud log prune` on the largest
log. The first block of rows is written from Python (executemany in big transactions for
SQLite, COPY for PostgreSQL); larger logs copy that block inside the database with new ids and
new timestamps, so a 10M log takes minutes to fill. Results go to benchmarks/RESULTS.md after
every measurement, so an interrupted run keeps what it measured.
Usage: nice -n 10 python benchmarks/log_scale_bench.py [--sizes 1000000,5000000,10000000]
       [--dbs sqlite,postgresql] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import create_engine, text

from fraud_detection.data import load_dataset
from fraud_detection.inference import onnx_fraud_probability, onnx_session
from fraud_detection.prediction_log import (
    LOG_COLUMNS,
    SQLITE_TIME,
    ensure_schema,
    open_engine,
    utc_now,
)
from fraud_detection.registry import CHAMPION, Registry
from fraud_detection.schema import FEATURES, LABEL
from fraud_detection.store import open_store
from results import write_section
from train_bench import DEFAULT_DATA, run_fraud_train

SPAN_SECONDS = int(6.9 * 86_400)
"""Timestamps stay inside `--lookback-days 7` while the benchmark runs."""
LABELLED = 0.3
CHUNK = 100_000
NAME = "Prediction log at scale"
"""One section per database, so both may run at once."""


@dataclass
class Champion:
    store: Path
    version: str
    threshold: float


@dataclass
class Run:
    database: str
    rows: int
    command: str
    wall_s: float
    peak_mb: float
    size_mb: float

    def line(self) -> str:
        rate = self.rows / self.wall_s if self.wall_s else 0.0
        per_m = self.wall_s / (self.rows / 1e6)
        return (
            f"| {self.database} | {self.rows:,} | {self.command} | {self.wall_s:.1f} s | "
            f"{per_m:.1f} s | {rate:,.0f} | {self.peak_mb / 1024:.2f} GB | "
            f"{self.size_mb:,.0f} MB |"
        )


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one `fraud` child under /usr/bin/time -v."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "fraud_detection", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fraud {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    assert rss and wall, done.stderr[-2000:]
    hours, minutes, seconds = wall.groups()
    total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    return total, int(rss.group(1)) / 1024, done.stdout


def train_champion(data: Path, workdir: Path) -> Champion:
    """The champion of `workdir/store`, trained on the dataset unless an earlier run did."""
    store = workdir / "store"
    registry = Registry(open_store(str(store)), "fraud-detector")
    if CHAMPION not in registry.aliases():
        run_fraud_train(data, store)
    manifest = registry.manifest(CHAMPION)
    return Champion(store, str(manifest["version"]), float(manifest["threshold"]))


def block_rows(
    data: pd.DataFrame, champion: Champion, block: int
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[str, int]]]]:
    """The first `block` log rows in chunks: (prediction rows in LOG_COLUMNS order, labels)."""
    registry = Registry(open_store(str(champion.store)), "fraud-detector")
    session = onnx_session(registry.read_file(champion.version, "model.onnx"), threads=0)
    x = data.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    scores = onnx_fraud_probability(session, x).astype(np.float64)
    labels = data[LABEL].to_numpy()
    rng = np.random.default_rng(0)
    now = utc_now()
    for start in range(0, block, CHUNK):
        n = min(CHUNK, block - start)
        index = np.arange(start, start + n)
        source = rng.integers(0, len(data), n)
        ages = rng.integers(0, SPAN_SECONDS, n)
        features = x[source].tolist()
        predictions = []
        for i, row, src, age in zip(index, features, source, ages, strict=True):
            values = {
                "transaction_id": f"b{i}",
                "created_at": now - timedelta(seconds=int(age)),
                "endpoint": "predict",
                "variant": "champion",
                "model_version": champion.version,
                **dict(zip(FEATURES, row, strict=True)),
                "probability": scores[src],
                "is_fraud": bool(scores[src] >= champion.threshold),
                "threshold": champion.threshold,
                "latency_ms": 1.0,
                "explanation": None,
                "event_time": None,
            }
            predictions.append(tuple(values[c] for c in LOG_COLUMNS))
        chosen = rng.random(n) < LABELLED
        yield (
            predictions,
            [(f"b{i}", int(labels[s])) for i, s in zip(index[chosen], source[chosen], strict=True)],
        )


def fill_sqlite(
    path: Path, data: pd.DataFrame, champion: Champion, rows: int, have: int, block: int
) -> None:
    """Grow the SQLite log to `rows`: the Python block first, then copies of it."""
    ensure_schema(open_engine(f"sqlite:///{path}"))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    names = ", ".join(f'"{c}"' for c in LOG_COLUMNS)
    marks = ", ".join("?" * len(LOG_COLUMNS))
    if have == 0:
        for predictions, labels in block_rows(data, champion, block):
            stamped = [(r[0], r[1].strftime(SQLITE_TIME), *r[2:]) for r in predictions]
            with conn:
                conn.executemany(f"INSERT INTO predictions ({names}) VALUES ({marks})", stamped)
                conn.executemany(
                    "INSERT INTO feedback (transaction_id, label, received_at) "
                    "VALUES (?, ?, datetime('now'))",
                    labels,
                )
        have = block
    rest = ", ".join(f'"{c}"' for c in LOG_COLUMNS[2:])
    while have < rows:
        copy = have // block
        with conn:
            conn.execute(
                f"INSERT INTO predictions ({names}) SELECT transaction_id || '-{copy}', "
                f"strftime('%Y-%m-%d %H:%M:%S', 'now', '-' || (abs(random()) % {SPAN_SECONDS}) "
                f"|| ' seconds') || '.000000', {rest} FROM predictions WHERE id <= {block}"
            )
            conn.execute(
                "INSERT INTO feedback (transaction_id, label, received_at) "
                f"SELECT transaction_id || '-{copy}', label, received_at "
                "FROM feedback WHERE transaction_id NOT LIKE '%-%'"
            )
        have += block
    # One INSERT of a million rows leaves a WAL of gigabytes, which every read then searches;
    # the service's small transactions keep it near SQLite's 1,000-page auto-checkpoint.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def fill_postgres(
    url: str, data: pd.DataFrame, champion: Champion, rows: int, have: int, block: int
) -> None:
    """Grow the PostgreSQL log to `rows`: the block by COPY, then copies of it."""
    ensure_schema(open_engine(url))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        names = ", ".join(f'"{c}"' for c in LOG_COLUMNS)
        if have == 0:
            for predictions, labels in block_rows(data, champion, block):
                with conn.cursor() as cur:
                    with cur.copy(f"COPY predictions ({names}) FROM STDIN") as copy:
                        for row in predictions:
                            copy.write_row(row)
                    with cur.copy(
                        "COPY feedback (transaction_id, label, received_at) FROM STDIN"
                    ) as copy:
                        for tid, label in labels:
                            copy.write_row((tid, label, utc_now()))
                conn.commit()
            have = block
        rest = ", ".join(f'"{c}"' for c in LOG_COLUMNS[2:])
        while have < rows:
            copy_no = have // block
            conn.execute(
                f"INSERT INTO predictions ({names}) SELECT transaction_id || '-{copy_no}', "
                f"(now() at time zone 'utc') - random() * interval '{SPAN_SECONDS} seconds', "
                f"{rest} FROM predictions WHERE id <= {block}"
            )
            conn.execute(
                "INSERT INTO feedback (transaction_id, label, received_at) "
                f"SELECT transaction_id || '-{copy_no}', label, received_at "
                "FROM feedback WHERE transaction_id NOT LIKE '%-%'"
            )
            conn.commit()
            have += block
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE predictions")
        conn.execute("VACUUM ANALYZE feedback")


def size_mb(database: str, target: str) -> float:
    if database == "sqlite":
        return (
            sum(p.stat().st_size for p in Path(target).parent.glob(Path(target).name + "*")) / 2**20
        )
    engine = create_engine(target)
    with engine.connect() as conn:
        return (
            float(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
            / 2**20
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="1000000,5000000,10000000")
    parser.add_argument("--dbs", default="sqlite,postgresql")
    parser.add_argument(
        "--block", type=int, default=1_000_000, help="Rows written from Python, then copied."
    )
    parser.add_argument(
        "--have",
        type=int,
        default=0,
        help="SQLite only: --workdir's log.db already holds this many rows of an earlier run.",
    )
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "log_scale_bench"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(str(args.data))
    champion = train_champion(args.data, args.workdir)
    command = "nice -n 10 python benchmarks/log_scale_bench.py " + " ".join(sys.argv[1:])
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    for database in args.dbs.split(","):
        if database == "sqlite":
            path = args.workdir / "log.db"
            for leftover in args.workdir.glob("log.db*") if not args.have else []:
                leftover.unlink()
            url = target = f"sqlite:///{path}"
            target = str(path)
        else:
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS fraud_log_bench"))
                conn.execute(text("CREATE DATABASE fraud_log_bench"))
            url = target = args.postgres.rsplit("/", 1)[0] + "/fraud_log_bench"
        env = {**os.environ, "DATABASE_URL": url}
        runs: list[Run] = []
        notes: list[str] = []
        have = args.have if database == "sqlite" else 0
        try:
            for rows in sizes:
                started = time.perf_counter()
                if database == "sqlite":
                    fill_sqlite(Path(target), data, champion, rows, have, args.block)
                else:
                    fill_postgres(url, data, champion, rows, have, args.block)
                notes.append(
                    f"{database}: filled to {rows:,} rows in {time.perf_counter() - started:.0f} s"
                )
                have = rows
                size = size_mb(database, target)
                store = ["--store", str(champion.store)]
                wall, peak, out = timed(["monitor", "--lookback-days", "7", "--json", *store], env)
                judged = json.loads(out)["metrics"]["rows"]
                assert judged == rows, (judged, rows)
                runs.append(Run(database, rows, "monitor", wall, peak, size))
                write(runs, notes, command, database)
                wall, peak, _ = timed(
                    [
                        "retrain",
                        "--lookback-days",
                        "7",
                        "--dry-run",
                        "--data",
                        str(args.data),
                        *store,
                    ],
                    env,
                )
                runs.append(Run(database, rows, "retrain --dry-run", wall, peak, size))
                write(runs, notes, command, database)
            wall, peak, out = timed(["log", "prune", "--older-than", "3.45"], env)
            runs.append(
                Run(database, have, "log prune (half)", wall, peak, size_mb(database, target))
            )
            notes.append(f"{database} prune: {out.strip()}")
            write(runs, notes, command, database)
        finally:
            if database == "sqlite":
                for leftover in args.workdir.glob("log.db*"):
                    leftover.unlink()
            else:
                with admin.connect() as conn:
                    conn.execute(text("DROP DATABASE IF EXISTS fraud_log_bench WITH (FORCE)"))


def write(runs: list[Run], notes: list[str], command: str, database: str) -> None:
    header = (
        "| log | rows | command | wall | per 1M rows | rows/s | peak RSS | size on disk |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|"
    )
    body = "\n".join([header, *(run.line() for run in runs), "", *(f"- {n}" for n in notes)])
    write_section(f"{NAME} ({database})", command, body)


if __name__ == "__main__":
    main()
