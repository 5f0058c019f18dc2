"""HTTP and in-process scoring speed: our /predict against its floor and the common approach.

One run, one machine, the same gunicorn settings (src/fraud_detection/gunicorn_conf.py)
for: (a) Flask that only parses JSON, (b) our service scoring a legitimate transaction and
logging to SQLite, (b') the same logging to PostgreSQL (when one answers at --postgres),
(d) every request a flagged transaction (a card-testing burst), (e) one request in 500 flagged
(about the real fraud rate), (c) Flask + pandas + scikit-learn predict_proba on the same
forest, (f) the least /predict can cost with the same duties (lean_app.py: plain WSGI, no
routing policy or reload, each duty in the fewest Python steps): how much of the distance to
the floor is the duties themselves, and how much our structure. Load comes from wrk (Debian
package `wrk`), in interleaved rounds: the machine may be shared, so ratios are measured side
by side and the load average is reported. Then (b) once more with one worker killed (SIGKILL)
in the middle of the load: the prediction log's accounting after it. With --baseline REV, (b)
also runs as it was at git revision REV, in the same rounds, so a change's cost is a ratio
measured in one run.
Usage: python benchmarks/serve_bench.py [--data PATH] [--seconds 15] [--connections 8]
       [--rounds 3] [--baseline REV]
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from pathlib import Path

import numpy as np

from results import write_section
from train_bench import run_fraud_train

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONF = REPO / "src" / "fraud_detection" / "gunicorn_conf.py"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "creditcard.csv.gz"
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""
MIX_LUA = """local headers = {{["Content-Type"] = "application/json"}}
local sent = 0
request = function()
  sent = sent + 1
  local body = sent % {every} == 0 and [[{flagged}]] or [[{legit}]]
  return wrk.format("POST", "/predict", headers, body)
end
"""
FLAGGED_EVERY = 500  # (e): 0.2% of requests, about the real fraud rate
# wrk's 8 keep-alive connections stay with the worker that accepted them: now and then one
# worker takes all 8 and the other idles, and the round measures that race, not the app (seen
# for every app, at 1,000-1,900 requests/s). Such a round is run again, up to ATTEMPTS times.
BALANCED = 0.5  # the least busy worker's CPU over the busiest's
ATTEMPTS = 3


def single(body: str) -> str:
    """The wrk script that posts `body` on every request."""
    return WRK_LUA.format(body=body)


def mixed(legit: str, flagged: str, every: int = FLAGGED_EVERY) -> str:
    """The wrk script that posts `flagged` on every `every`-th request, `legit` otherwise."""
    return MIX_LUA.format(legit=legit, flagged=flagged, every=every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    app: str, env: dict[str, str], port: int, body: str, tree: Path = REPO
) -> subprocess.Popen[bytes]:
    """gunicorn with the service's config, serving `app` from the source `tree`, ready when it
    scores `body`."""
    env = {
        **os.environ,
        **env,
        "FRAUD_PORT": str(port),
        "FRAUD_WORKERS": "2",
        "PYTHONPATH": f"{HERE}:{tree}:{tree / 'src'}",
    }
    conf = CONF if tree == REPO else tree / "gunicorn.conf.py"
    if "PROMETHEUS_MULTIPROC_DIR" in env:
        # Made up front, as a deployment does: a baseline from before the gunicorn-config fix
        # wrote its metric files in the master before its own hook made the folder.
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(conf), app],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def wrk(
    port: int, script: str, seconds: int, connections: int, *, killed: bool = False
) -> dict[str, float]:
    """Requests/s and p50/p99 latency (ms) of a wrk run of `script` against /predict; with
    `killed`, a run in which a worker is killed, so its connections may fail (counted, not an
    error)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            f.name,
            f"http://127.0.0.1:{port}/predict",
        ],
        capture_output=True,
        text=True,
    )
    os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout} {done.stderr}")
    out = done.stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed requests:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and not killed:
        raise RuntimeError(f"socket errors:\n{out}")
    answered = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def ms(q: str) -> float:
        found = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)$", out, re.M)
        if found is None:  # no request completed (a warm-up of a slow app on a busy machine)
            return float("nan")
        value, unit = found.groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failed = sum(int(n) for n in errors.groups()) if errors else 0
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "answered": answered, "failed": failed}


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers of a master process."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def worker_cpus(master: int) -> dict[int, float]:
    """CPU seconds (user + system) each worker of a master has used so far."""
    used = {}
    for pid in worker_pids(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) the workers of a master have used so far."""
    return sum(worker_cpus(master).values())


def balance(before: dict[int, float], after: dict[int, float]) -> float:
    """The least busy worker's CPU over the busiest's during a run (1: even; 0: one worker
    took every connection)."""
    used = [after[pid] - before.get(pid, 0.0) for pid in after]
    return min(used) / max(used) if len(used) > 1 and max(used) > 0 else 1.0


def kill_run(env: dict[str, str], body: str, seconds: int, connections: int) -> dict[str, float]:
    """(b) under load with one worker killed halfway; the log's accounting afterwards."""
    port = free_port()
    proc = start("app:app", env, port, body)
    try:
        victim = worker_pids(proc.pid)[0]
        killer = threading.Timer(seconds / 2, os.kill, (victim, signal.SIGKILL))
        killer.start()
        run = wrk(port, single(body), seconds, connections, killed=True)
        killer.join()
        run |= log_accounting(port, timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    run["lost"] = run["scored"] - run["written"] - run["dropped"]
    return run


def log_accounting(port: int, timeout: float = 30.0) -> dict[str, float]:
    """Scored transactions and prediction-log rows written and dropped, once the writers have
    caught up (written + dropped == scored) or `timeout` has passed."""

    def total(text: str, name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        counts = {
            "scored": total(text, "fraud_predictions_total"),
            "written": total(text, "fraud_prediction_log_written_total"),
            "dropped": total(text, "fraud_prediction_log_dropped_total"),
        }
        if counts["written"] + counts["dropped"] >= counts["scored"] or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def scratch_postgres_database(admin_url: str) -> str | None:
    """A fresh database on the local PostgreSQL server for the log, or None if there is none."""
    import uuid

    import psycopg

    name = "serve_bench_" + uuid.uuid4().hex[:8]
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        print(f"no PostgreSQL at {admin_url}: {exc}; skipping that row", flush=True)
        return None
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def in_process(store: Path, cache: Path, x_test: np.ndarray) -> dict[str, float]:
    """Single-row latency (µs) and 1000-row batch throughput, onnxruntime vs scikit-learn."""
    import joblib

    from fraud_detection.inference import onnx_fraud_probability, onnx_session
    from fraud_detection.registry import Registry
    from fraud_detection.store import open_store

    folder = Registry(open_store(str(store)), "fraud-detector").download("champion", cache)
    session = onnx_session((folder / "model.onnx").read_bytes())
    model = joblib.load(folder / "model.joblib")
    model.set_params(forest__n_jobs=1)
    row, batch = x_test[:1].astype(np.float32), x_test[:1000].astype(np.float32)

    def best(fn: object, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number  # type: ignore[arg-type]

    return {
        "onnx_row_us": best(lambda: onnx_fraud_probability(session, row), 2000) * 1e6,
        "sklearn_row_us": best(lambda: model.predict_proba(row), 50) * 1e6,
        "onnx_batch_rows_s": 1000 / best(lambda: onnx_fraud_probability(session, batch), 50),
        "sklearn_batch_rows_s": 1000 / best(lambda: model.predict_proba(batch), 10),
    }


def explained_rows(database: Path) -> tuple[int, int]:
    """Flagged rows in a SQLite prediction log, and how many of them the writer explained."""
    import sqlite3

    with sqlite3.connect(database) as conn:
        flagged, explained = conn.execute(
            "SELECT count(*), count(explanation) FROM predictions WHERE is_fraud"
        ).fetchone()
    return int(flagged), int(explained)


def bodies(store: Path, cache: Path, x_test: np.ndarray) -> tuple[str, str]:
    """A legitimate and a flagged transaction of the test period, as /predict bodies."""
    from fraud_detection.inference import onnx_fraud_probability, onnx_session
    from fraud_detection.registry import Registry
    from fraud_detection.schema import FEATURES
    from fraud_detection.store import open_store

    registry = Registry(open_store(str(store)), "fraud-detector")
    folder = registry.download("champion", cache)
    threshold = float(registry.manifest("champion")["threshold"])
    session = onnx_session((folder / "model.onnx").read_bytes())
    scores = onnx_fraud_probability(session, x_test.astype(np.float32))
    legit = int(np.flatnonzero(scores < threshold)[0])
    flagged = int(np.flatnonzero(scores >= threshold)[0])
    legit_body, flagged_body = (
        json.dumps({"transaction_id": f"bench-{kind}", **dict(zip(FEATURES, row, strict=True))})
        for kind, row in (("legit", x_test[legit].tolist()), ("flagged", x_test[flagged].tolist()))
    )
    return legit_body, flagged_body


def per_round(env: dict[str, str], round_: int) -> dict[str, str]:
    """An app's settings for one round: its own log, spool and metric files, so each run's
    counts are its own (a multiprocess metrics folder keeps the counters of workers gone)."""
    fresh = {
        name: f"{env[name]}-r{round_}"
        for name in ("PROMETHEUS_MULTIPROC_DIR", "FRAUD_LOG_SPOOL_DIR")
        if name in env
    }
    if env.get("DATABASE_URL", "").startswith("sqlite:///"):
        fresh["DATABASE_URL"] = env["DATABASE_URL"].replace(".db", f"-r{round_}.db")
    return {**env, **fresh}


FLOOR = "(a) Flask floor: parse JSON, return a constant"
OURS = "(b) our /predict, legitimate transaction (validation, ONNX, metrics, SQLite log)"
POSTGRES = "(b') the same, PostgreSQL prediction log"
FLAGGED = "(d) our /predict, every transaction flagged (a card-testing burst)"
MIX = f"(e) our /predict, 1 request in {FLAGGED_EVERY} flagged (0.2%, about the fraud rate)"
COMMON = "(c) common: pandas DataFrame + scikit-learn"
LEAN = "(f) the same duties in plain WSGI, in the fewest steps (benchmarks/lean_app.py)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="A PostgreSQL server for the prediction-log row (a scratch database is made).",
    )
    parser.add_argument("--baseline", help="Also run (b) as it was at this git revision.")
    args = parser.parse_args()

    from fraud_detection.data import load_dataset, time_split
    from fraud_detection.schema import FEATURES

    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    store = tmp / "store"
    run_fraud_train(args.data, store)
    _, test = time_split(load_dataset(str(args.data)))
    x_test = test.loc[:, list(FEATURES)].to_numpy()
    body, flagged_body = bodies(store, tmp / "cache-bodies", x_test)

    def ours(tag: str, **env: str) -> dict[str, str]:
        """Our service's settings for one app of the run: its own cache, log and metrics."""
        return {
            "FRAUD_MODEL_STORE": str(store),
            "FRAUD_SERVING_CACHE": str(tmp / f"cache-{tag}"),
            "DATABASE_URL": f"sqlite:///{tmp / f'predictions-{tag}.db'}",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{tag}"),
            "FRAUD_LOG_SPOOL_DIR": str(tmp / f"spool-{tag}"),
            **env,
        }

    # name: (app, env, source tree, wrk script)
    apps: dict[str, tuple[str, dict[str, str], Path, str]] = {
        FLOOR: ("floor_app:app", {}, REPO, single(body)),
        OURS: ("app:app", ours("b"), REPO, single(body)),
    }
    baseline_name = f"(b0) (b) at {args.baseline}"
    flagged_baseline = f"(d0) (d) at {args.baseline}"
    if args.baseline:
        baseline_tree = tmp / "baseline"
        subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "worktree",
                "add",
                "--detach",
                str(baseline_tree),
                args.baseline,
            ],
            check=True,
            capture_output=True,
        )
        apps[baseline_name] = ("app:app", ours("b0"), baseline_tree, single(body))
    postgres = scratch_postgres_database(args.postgres)
    if postgres:
        # Right after (b), so the two logs run under the most similar conditions.
        apps[POSTGRES] = ("app:app", ours("b2", DATABASE_URL=postgres), REPO, single(body))
    apps[FLAGGED] = ("app:app", ours("d"), REPO, single(flagged_body))
    if args.baseline:
        apps[flagged_baseline] = ("app:app", ours("d0"), baseline_tree, single(flagged_body))
    apps[MIX] = ("app:app", ours("e"), REPO, mixed(body, flagged_body))
    apps[COMMON] = (
        "sklearn_app:app",
        {"BENCH_STORE": str(store), "BENCH_CACHE": str(tmp / "cache-c")},
        REPO,
        single(body),
    )
    (tmp / "spool-f").mkdir()
    apps[LEAN] = (
        "lean_app:app",
        {
            "BENCH_STORE": str(store),
            "BENCH_CACHE": str(tmp / "cache-f"),
            "BENCH_DB": str(tmp / "predictions-f.db"),
            "BENCH_SPOOL": str(tmp / "spool-f"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom-f"),
        },
        REPO,
        single(body),
    )
    http: dict[str, dict[str, float]] = {}
    loads: list[float] = []
    # Interleaved rounds, best of each: a noisy neighbour then hurts no app alone.
    repeated = 0
    for round_ in range(args.rounds):
        for name, (app, shared, tree, script) in apps.items():
            for attempt in range(ATTEMPTS):
                env = per_round(shared, round_ * ATTEMPTS + attempt)
                port = free_port()
                proc = start(app, env, port, body, tree)
                try:
                    wrk(port, script, 2, args.connections)  # warm-up
                    loads.append(os.getloadavg()[0])
                    cpu = worker_cpus(proc.pid)
                    run = wrk(port, script, args.seconds, args.connections)
                    used = worker_cpus(proc.pid)
                    run["cpu_us"] = (sum(used.values()) - sum(cpu.values())) / run["answered"]
                    run["cpu_us"] *= 1e6
                    run["balance"] = balance(cpu, used)
                    if app == "app:app":
                        run |= log_accounting(port)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                if run["balance"] >= BALANCED or attempt == ATTEMPTS - 1:
                    break
                repeated += 1
                print(name, "unbalanced, run again:", run, flush=True)
            database = env.get("DATABASE_URL", "")
            if tree == REPO and database.startswith("sqlite:///"):
                run["flagged"], run["explained"] = explained_rows(Path(database[10:]))
            if name not in http or run["rps"] > http[name]["rps"]:
                http[name] = run
            print(name, run, flush=True)
    if postgres:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {postgres.rsplit('/', 1)[1]} WITH (FORCE)")  # type: ignore[arg-type]
    if args.baseline:
        # Its own name: the loop above rebinds `tree`, and removing that removed REPO itself
        # when the benchmark ran from a worktree.
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline_tree)]
        )
    killed = kill_run(ours("killed"), body, args.seconds, args.connections)
    print("kill -9", killed, flush=True)
    inproc = in_process(store, tmp / "cache-i", x_test)
    print(inproc)

    a, b, c = http[FLOOR], http[OURS], http[COMMON]
    rows = [
        f"| {k} | {v['rps']:,.0f} | {v['rps'] / a['rps']:.2f} | {v['p50']:.2f} | "
        f"{v['p99']:.2f} | {v['cpu_us']:,.0f} |"
        for k, v in http.items()
    ]
    checks = {
        "(b) >= 0.75 x (a) requests/s": (b["rps"] / a["rps"], b["rps"] / a["rps"] >= 0.75),
        "p99 of (b) < 10 ms": (b["p99"], b["p99"] < 10),
        "(d) >= 0.5 x (a) requests/s": (
            http[FLAGGED]["rps"] / a["rps"],
            http[FLAGGED]["rps"] / a["rps"] >= 0.5,
        ),
        "(b) >= 10 x (c) requests/s": (b["rps"] / c["rps"], b["rps"] / c["rps"] >= 10),
    }
    # Not targets: whether the duties alone reach (b)'s target, and how far (b) is from them.
    notes = {
        "(f) / (a) requests/s: the duties alone": http[LEAN]["rps"] / a["rps"],
        "(b) / (f) requests/s: our structure": b["rps"] / http[LEAN]["rps"],
    }
    if args.baseline:
        ratio = b["rps"] / http[baseline_name]["rps"]
        checks[f"(b) >= 0.95 x (b0) requests/s (no slower than {args.baseline})"] = (
            ratio,
            ratio >= 0.95,
        )
        ratio = http[FLAGGED]["rps"] / http[flagged_baseline]["rps"]
        checks[f"(d) >= 0.95 x (d0) requests/s (flagged: no slower than {args.baseline})"] = (
            ratio,
            ratio >= 0.95,
        )
    logged = [v for v in http.values() if "scored" in v]
    if postgres:
        ratio = http[POSTGRES]["rps"] / b["rps"]
        checks["(b') >= 0.9 x (b) requests/s"] = (ratio, ratio >= 0.9)
    checks["(b), (b'), (d), (e): rows written / scored"] = (
        min(v["written"] / v["scored"] for v in logged),
        all(v["written"] == v["scored"] for v in logged),
    )
    checks["kill -9: rows lost <= requests never answered"] = (
        killed["lost"],
        killed["lost"] <= killed["failed"],
    )
    body_md = "\n".join(
        [
            "gunicorn: 2 workers, each revision's own config (today the service's worker: "
            "gthread with 8 threads a worker, whose event loop answers a scoring request of "
            "at most 4 KiB itself, the floor's included); wrk: 1 thread, "
            f"{args.connections} connections, {args.seconds} s after a "
            "2 s warm-up, one real transaction of the test period per request (legitimate, "
            "or flagged by the model); the model is `fraud train` on the real data (100 "
            f"trees). Client and server share the same {os.cpu_count()} cores; "
            f"{args.rounds} interleaved rounds, the best of each is shown; a run in which "
            f"one worker used less than {BALANCED:.0%} of the other's CPU (wrk's keep-alive "
            "connections had gone mostly to one worker) was run again, up to "
            f"{ATTEMPTS} times ({repeated} runs again in all). The machine was "
            f"shared: 1-minute load average {min(loads):.1f} to {max(loads):.1f} (mean "
            f"{sum(loads) / len(loads):.1f}) at the start of the runs. CPU is the workers' "
            "user + system time per request, explanations and log writing included.",
            "",
            "| app | requests/s | x (a) | p50 ms | p99 ms | worker CPU µs/request |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Prediction log after each of our runs (rows the writers had not written 30 s after "
            "the load are neither written nor dropped yet); flagged rows the writer explained "
            "(within a fiftieth of a core per worker; the others are counted as unexplained):",
            "",
            "| app | transactions scored | rows written | rows dropped | flagged rows explained |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {k} | {v['scored']:,.0f} | {v['written']:,.0f} | {v['dropped']:,.0f} | "
                + (f"{v['explained']:,} of {v['flagged']:,} |" if "flagged" in v else "- |")
                for k, v in http.items()
                if "scored" in v
            ),
            "",
            f"(b) again, one of the two workers killed with SIGKILL {args.seconds / 2:.0f} s into "
            f"a {args.seconds} s load (no warm-up); gunicorn starts a new worker, which writes "
            "the rows the killed one had spooled. Lost = scored - written - dropped: "
            "transactions scored but neither written nor counted (requests in flight in the "
            "killed worker were scored but never answered; they are the failed requests).",
            "",
            "| answered | failed requests | transactions scored | rows written | rows dropped | "
            "lost |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {killed['answered']:,.0f} | {killed['failed']:,.0f} | {killed['scored']:,.0f} | "
            f"{killed['written']:,.0f} | {killed['dropped']:,.0f} | {killed['lost']:,.0f} |",
            "",
            "| target | measured | met |",
            "|---|---:|---|",
            *(f"| {k} | {v:.2f} | {'yes' if ok else '**no**'} |" for k, (v, ok) in checks.items()),
            *(f"| {k} | {v:.2f} | (not a target) |" for k, v in notes.items()),
            "",
            "In-process scoring of the same forest (best of 5 repeats):",
            "",
            "| | onnxruntime | scikit-learn | ratio |",
            "|---|---:|---:|---:|",
            f"| one row, µs | {inproc['onnx_row_us']:.0f} | {inproc['sklearn_row_us']:.0f} | "
            f"{inproc['sklearn_row_us'] / inproc['onnx_row_us']:.0f}x faster |",
            f"| 1000-row batch, rows/s | {inproc['onnx_batch_rows_s']:,.0f} | "
            f"{inproc['sklearn_batch_rows_s']:,.0f} | "
            f"{inproc['onnx_batch_rows_s'] / inproc['sklearn_batch_rows_s']:.1f}x |",
        ]
    )
    command = "python benchmarks/serve_bench.py" + (
        f" --baseline {args.baseline}" if args.baseline else ""
    )
    write_section("Serving speed", command, body_md)
    print(body_md)


if __name__ == "__main__":
    main()
