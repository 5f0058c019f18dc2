"""The service's gunicorn worker (BufferingWorker: requests read in the event loop before a
thread takes them) against plain gthread, in one run on one machine: /predict throughput, and
how liveness and readiness probes answer while 200 sockets hold a stalled head or body.

Both run the service's own config (src/fraud_detection/gunicorn_conf.py: 2 workers, 8
threads); gthread through GUNICORN_CMD_ARGS=--worker-class gthread. Rounds interleave the two.
Usage: python benchmarks/worker_bench.py [--data PATH] [--seconds 10] [--connections 8]
       [--rounds 3]
"""

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
from serve_bench import DEFAULT_DATA, free_port, single, start, worker_pids, wrk

from fraud_detection.schema import FEATURES
from results import write_section
from train_bench import run_fraud_train

WORKERS = {
    "BufferingWorker (the service's)": {},
    "gthread": {"GUNICORN_CMD_ARGS": "--worker-class gthread"},
}
STALLED = {
    "head": b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    "body": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100000\r\n\r\n{",
}
SOCKETS = 200
PROBE_TIMEOUT = 3.0


def probes(port: int, rounds: int = 20) -> dict[str, float]:
    """Median and worst milliseconds of `rounds` liveness and readiness probes each, and how
    many did not answer 200 within the kubelet's 3 s."""
    spent: list[float] = []
    failed = 0
    for _ in range(rounds):
        for probe in ("live", "ready"):
            started = time.perf_counter()
            try:
                url = f"http://127.0.0.1:{port}/v2/health/{probe}"
                with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
                    failed += response.status != 200
            except (OSError, urllib.error.URLError):
                failed += 1
            spent.append((time.perf_counter() - started) * 1000)
        time.sleep(0.1)
    return {"median": statistics.median(spent), "max": max(spent), "failed": failed}


def workers_cpu_seconds(master: int) -> float:
    """User plus system CPU seconds the master's workers have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in worker_pids(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def stalled_probes(port: int, sent: bytes) -> dict[str, float]:
    """Probes while SOCKETS connections have sent `sent` and nothing more."""
    with ExitStack() as stack:
        for _ in range(SOCKETS):
            client = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            client.sendall(sent)
        time.sleep(1)
        return probes(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="worker-bench-"))
    store = tmp / "store"
    run_fraud_train(args.data, store)
    legit = pd.read_csv(args.data, nrows=2000).query("Class == 0").iloc[0]
    body = json.dumps({name: float(legit[name]) for name in FEATURES})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in WORKERS}
    for round_ in range(args.rounds):
        order = list(WORKERS) if round_ % 2 == 0 else list(reversed(WORKERS))
        for name in order:
            port = free_port()
            env = {
                **WORKERS[name],
                "FRAUD_MODEL_STORE": str(store),
                "DATABASE_URL": f"sqlite:///{tmp / f'log-{round_}-{port}.db'}",
                "FRAUD_SERVING_CACHE": str(tmp / f"cache-{port}"),
                "FRAUD_LOG_SPOOL_DIR": str(tmp / f"spool-{port}"),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{port}"),
            }
            proc = start("app:app", env, port, body)
            try:
                wrk(port, single(body), 2, args.connections)  # warm-up
                cpu = workers_cpu_seconds(proc.pid)
                run = wrk(port, single(body), args.seconds, args.connections)
                cpu = workers_cpu_seconds(proc.pid) - cpu
                run["cpu ms"] = 1000 * cpu / run["answered"]
                for kind, sent in STALLED.items():
                    run |= {f"{kind} {k}": v for k, v in stalled_probes(port, sent).items()}
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            print(round_, name, run, flush=True)
            runs[name].append(run)
    ours, plain = (runs[name] for name in WORKERS)
    ratios = [a["rps"] / b["rps"] for a, b in zip(ours, plain, strict=True)]
    cpu_ratios = [a["cpu ms"] / b["cpu ms"] for a, b in zip(ours, plain, strict=True)]

    def cell(values: list[dict[str, float]], key: str, fmt: str) -> str:
        return " / ".join(format(v[key], fmt) for v in values)

    rows = [
        f"| {name} | {cell(v, 'rps', ',.0f')} | {cell(v, 'p99', '.1f')} | "
        f"{cell(v, 'cpu ms', '.2f')} | "
        f"{cell(v, 'head median', '.0f')} ({cell(v, 'head failed', '.0f')}) | "
        f"{cell(v, 'body median', '.0f')} ({cell(v, 'body failed', '.0f')}) |"
        for name, v in runs.items()
    ]
    body_md = "\n".join(
        [
            f"gunicorn: the service's config, 2 workers x 8 threads; wrk: 1 thread, "
            f"{args.connections} connections, {args.seconds} s after a 2 s warm-up, one real "
            "legitimate transaction per request (model: `fraud train` on the real data). Then "
            f"{SOCKETS} sockets send a request head up to `X-Slow: ` (head), or a head "
            "announcing a 100,000-byte body and 1 byte of it (body), and stall; meanwhile 20 "
            "rounds of `/v2/health/live` and `/v2/health/ready` probes (3 s timeout, as the "
            "kubelet's). Client and server share the same 2 cores; each cell lists the "
            f"{args.rounds} interleaved rounds.",
            "",
            "| worker | /predict requests/s | p99 ms | worker CPU ms per request | probe "
            "median ms, stalled heads (probes failed of 40) | the same, stalled bodies |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "BufferingWorker / gthread requests/s, per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f" (median {statistics.median(ratios):.2f}); workers' CPU per request: "
            + ", ".join(f"{r:.2f}" for r in cpu_ratios)
            + f" (median {statistics.median(cpu_ratios):.2f}). Requests/s moves with whatever "
            "else runs on the machine; CPU per request much less so.",
        ]
    )
    write_section("gunicorn worker", "python benchmarks/worker_bench.py", body_md)
    print(body_md)


if __name__ == "__main__":
    main()
