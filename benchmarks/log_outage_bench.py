"""A long PostgreSQL outage under steady load through the live service (issue 19): no row lost.

`fraud serve` (2 workers) logs to a PostgreSQL server of its own (tests/postgres_helpers.py);
clients send --rate rows a second (batches of 10) for a minute, the server is stopped for
--outage seconds while the load goes on, started again, and the load runs one more minute.
Reported: rows scored, written and dropped, the most rows waiting and the oldest wait seen
(the service's own gauges), the spools' peak size on disk, and how long the log took to catch
up once the database was back.
Usage: python benchmarks/log_outage_bench.py [--data PATH] [--rate 500] [--outage 600]
"""

import argparse
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from serve_bench import DEFAULT_DATA, REPO

from results import write_section
from train_bench import run_fraud_train

sys.path.insert(0, str(REPO / "tests"))

from postgres_helpers import PrivatePostgres
from serving_helpers import serve, transaction

BATCH = 10


def metrics(url: str) -> dict[str, float]:
    """The log's counters and gauges, summed over the workers."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()

    def total(name: str, pick: str = "sum") -> float:
        values = [float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
        return (max(values, default=0.0)) if pick == "max" else sum(values)

    return {
        "scored": total("fraud_predictions_total"),
        "written": total("fraud_prediction_log_written_total"),
        "dropped": total("fraud_prediction_log_dropped_total"),
        "pending": total("fraud_prediction_log_pending_rows"),
        "age": total("fraud_prediction_log_pending_age_seconds", "max"),
    }


class PacedLoad:
    """Batches of BATCH transactions at `rate` rows a second, from two client threads."""

    def __init__(self, url: str, rate: float) -> None:
        self.url = url
        self.interval = 2 * BATCH / rate  # each thread sends every other batch
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(2)]
        for thread in self._threads:
            thread.start()

    def _run(self, n: int) -> None:
        import requests

        session = requests.Session()
        due = time.monotonic() + n * self.interval / 2
        batch = 0
        while not self._stop.is_set():
            self._stop.wait(max(0.0, due - time.monotonic()))
            due += self.interval
            ids = [f"o{n}-{batch}-{j}" for j in range(BATCH)]
            body = {"instances": [transaction(transaction_id=tid) for tid in ids]}
            ok = session.post(f"{self.url}/predict", json=body, timeout=10).status_code == 200
            with self._lock:
                self.sent += BATCH if ok else 0
                self.failed += 0 if ok else 1
            batch += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def spool_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.spool"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rate", type=float, default=500.0, help="rows a second")
    parser.add_argument("--outage", type=float, default=600.0, help="seconds")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="log-outage-bench-"))
    run_fraud_train(args.data, tmp / "store")
    server = PrivatePostgres()
    server.start()
    peak = {"pending": 0.0, "age": 0.0, "spool": 0}
    try:
        with server.database() as url, serve(tmp / "store", tmp, DATABASE_URL=url) as service:
            load = PacedLoad(service, args.rate)
            time.sleep(60)
            server.stop()
            stopped = time.monotonic()
            scored_before = load.sent
            while time.monotonic() - stopped < args.outage:
                time.sleep(5)
                now = metrics(service)
                peak["pending"] = max(peak["pending"], now["pending"])
                peak["age"] = max(peak["age"], now["age"])
                peak["spool"] = max(peak["spool"], spool_bytes(tmp / "log-spool"))
                print(f"{time.monotonic() - stopped:6.0f} s down: {now}", flush=True)
            during = load.sent - scored_before
            dropped_in_outage = metrics(service)["dropped"]
            server.start()
            back = time.monotonic()
            caught_up = None
            while time.monotonic() - back < 120:
                now = metrics(service)
                if caught_up is None and now["age"] < 5:
                    caught_up = time.monotonic() - back
                time.sleep(1)
            load.stop()
            deadline = time.monotonic() + 120
            while True:
                final = metrics(service)
                done = final["written"] + final["dropped"] >= final["scored"]
                if done or time.monotonic() > deadline:
                    break
                time.sleep(1)
    finally:
        server.remove()

    rate = during / args.outage
    body = "\n".join(
        [
            f"`fraud serve` (2 workers, the default FRAUD_LOG_SPOOL_MAX_MB of 256 and "
            f"FRAUD_LOG_CAPACITY of 10,000 a worker) logging to a PostgreSQL server of its own; "
            f"clients sent batches of {BATCH} transactions at {args.rate:.0f} rows/s for a "
            f"minute, the server was stopped (pg_ctl -m immediate) for {args.outage:.0f} s under "
            f"the same load ({rate:.0f} rows/s were scored meanwhile), then started again.",
            "",
            "| | value |",
            "|---|---:|",
            f"| transactions scored | {final['scored']:,.0f} |",
            f"| of them during the outage | {during:,} |",
            f"| requests that failed | {load.failed:,} |",
            f"| rows written | {final['written']:,.0f} |",
            f"| rows dropped (any reason) during the outage | {dropped_in_outage:,.0f} |",
            f"| rows dropped in all | {final['dropped']:,.0f} |",
            f"| most rows waiting (fraud_prediction_log_pending_rows) | {peak['pending']:,.0f} |",
            f"| oldest wait seen (fraud_prediction_log_pending_age_seconds) | "
            f"{peak['age']:,.0f} s |",
            f"| spools' peak size on disk, both workers | {peak['spool'] / 2**20:,.1f} MB |",
            "| time to catch up once the database was back (oldest wait under 5 s) | "
            + (f"{caught_up:.0f} s |" if caught_up is not None else "more than 120 s |"),
        ]
    )
    command = "python benchmarks/log_outage_bench.py" + (
        f" --rate {args.rate:g} --outage {args.outage:g}"
        if (args.rate, args.outage) != (500.0, 600.0)
        else ""
    )
    write_section("Prediction log through a database outage", command, body)
    print(body)


if __name__ == "__main__":
    main()
