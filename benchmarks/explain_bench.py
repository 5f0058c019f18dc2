"""What explanations cost: TreeSHAP per row for each family, and /predict throughput with them.

Part 1 fits each family with its defaults on the first 80% of the real data (by time), exports
it with its cover, and times explaining the test slice's frauds one row at a time (one thread,
best of 5). Part 2 serves a `fraud train` champion under gunicorn and drives /predict with wrk,
one fraud the model flags in every 500 requests (0.2%), three ways in interleaved rounds:
explanations off, the default (flagged rows explained), and `"explain": true` on every row.
Usage: PYTHONPATH=benchmarks python benchmarks/explain_bench.py [--data PATH] [--seconds 15]
       [--rounds 3]
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from serve_bench import DEFAULT_DATA, free_port, start

from results import write_section
from train_bench import run_fraud_train

EVERY = 500  # one flagged request in 500: 0.2% of rows
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local legit = [[{legit}]]
local fraud = [[{fraud}]]
local n = 0
request = function()
  n = n + 1
  if n % {every} == 0 then return wrk.format(nil, nil, nil, fraud) end
  return wrk.format(nil, nil, nil, legit)
end
"""


def family_costs(data: Path) -> list[str]:
    """Per family: its leaves, the single-row and batch cost (ms), the additivity gap."""
    from fraud_detection.data import load_dataset, time_split
    from fraud_detection.explain import build_explainer
    from fraud_detection.export import export_onnx
    from fraud_detection.families import ALGORITHMS, FAMILIES
    from fraud_detection.schema import FEATURES
    from fraud_detection.training import MODEL_FEATURES, features_and_label, fit_model
    from fraud_detection.tree_arrays import read_tree_arrays, route, with_cover

    history, test = time_split(load_dataset(str(data)))
    x, y = features_and_label(history)
    x_test, y_test = features_and_label(test)
    frauds = x_test[y_test == 1]
    lines = [
        "| family | trees | leaves | leaves with a score | build ms | one row ms | "
        "100 rows, ms per row | max additivity gap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for algorithm in ALGORITHMS:
        model = fit_model(x, y, FAMILIES[algorithm].params(), MODEL_FEATURES, algorithm=algorithm)
        onnx_bytes = with_cover(export_onnx(model), x)
        started = time.perf_counter()
        explainer = build_explainer(onnx_bytes, list(FEATURES), x[:50])
        build_ms = (time.perf_counter() - started) * 1000
        trees = read_tree_arrays(onnx_bytes)
        one = []
        for _ in range(5):
            started = time.perf_counter()
            for row in frauds[:50]:
                explainer.contributions(row[None])
            one.append((time.perf_counter() - started) / 50 * 1000)
        started = time.perf_counter()
        batch = explainer.contributions(frauds[:100])
        per_row_batch = (time.perf_counter() - started) / len(batch) * 1000
        raw, _ = route(trees, frauds[:100])
        gap = float(np.max(np.abs(explainer.expected_value + batch.sum(axis=1) - raw)))
        scored = sum(len(b.value) for b in explainer.buckets)
        lines.append(
            f"| {algorithm} | {len(trees.roots)} | {int((trees.mode == 0).sum()):,} | "
            f"{scored:,} | {build_ms:.0f} | {min(one):.2f} | {per_row_batch:.2f} | {gap:.1e} |"
        )
        print(lines[-1], flush=True)
    return lines


def top_features(store: Path, data: Path) -> list[str]:
    """The champion's top three features for the first five frauds of the test slice."""
    from fraud_detection.data import load_dataset, time_split
    from fraud_detection.explain import build_explainer
    from fraud_detection.inference import onnx_fraud_probability, onnx_session
    from fraud_detection.schema import FEATURES
    from fraud_detection.training import features_and_label

    folder = next(store.glob("models/*/versions/1"))
    onnx_bytes = (folder / "model.onnx").read_bytes()
    explainer = build_explainer(onnx_bytes, list(FEATURES), np.zeros((1, len(FEATURES))))
    _, test = time_split(load_dataset(str(data)))
    x_test, y_test = features_and_label(test)
    frauds = x_test[y_test == 1][:5]
    p = onnx_fraud_probability(onnx_session(onnx_bytes), frauds)
    lines = ["| test fraud | probability | top three features (contribution to the probability) |"]
    lines.append("|---:|---:|---|")
    for i, (explained, prob) in enumerate(zip(explainer.explain(frauds, 3), p, strict=True)):
        tops = ", ".join(
            f"{f['feature']} = {f['value']:.2f} ({f['contribution']:+.3f})"
            for f in explained["top_features"]
        )
        lines.append(f"| {i + 1} | {prob:.3f} | {tops} |")
    return lines


def bodies(store: Path, data: Path) -> tuple[str, str]:
    """A legitimate test transaction the champion does not flag, and a fraud it flags."""
    from fraud_detection.data import load_dataset, time_split
    from fraud_detection.inference import onnx_fraud_probability, onnx_session
    from fraud_detection.schema import FEATURES
    from fraud_detection.training import features_and_label

    folder = next(store.glob("models/*/versions/1"))
    threshold = json.loads((folder / "manifest.json").read_text())["threshold"]
    session = onnx_session((folder / "model.onnx").read_bytes())
    _, test = time_split(load_dataset(str(data)))
    x_test, y_test = features_and_label(test)
    p = onnx_fraud_probability(session, x_test)
    legit = x_test[(y_test == 0) & (p < threshold)][0]
    fraud = x_test[(y_test == 1) & (p >= threshold)][0]

    def body(row: np.ndarray, tid: str) -> str:
        return json.dumps({"transaction_id": tid, **dict(zip(FEATURES, row.tolist(), strict=True))})

    return body(legit, "legit"), body(fraud, "fraud")


def wrk_mixed(port: int, legit: str, fraud: str, seconds: int, query: str = "") -> float:
    """Requests/s of a wrk run sending `fraud` once in EVERY requests."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA.format(legit=legit, fraud=fraud, every=EVERY))
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c4",
            f"-d{seconds}s",
            "-s",
            f.name,
            f"http://127.0.0.1:{port}/predict{query}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(f.name)
    if "Non-2xx" in done.stdout:
        raise RuntimeError(done.stdout)
    return float(done.stdout.split("Requests/sec:")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    costs = family_costs(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    store = tmp / "store"
    run_fraud_train(args.data, store)
    tops = top_features(store, args.data)
    legit, fraud = bodies(store, args.data)
    arms: dict[str, tuple[dict[str, str], str, str]] = {
        "explanations off (FRAUD_EXPLAIN_FLAGGED=0)": ({"FRAUD_EXPLAIN_FLAGGED": "0"}, "", fraud),
        "default: flagged rows explained (0.2% of rows)": ({}, "", fraud),
        "every row explained (?explain=true)": ({}, "?explain=true", fraud),
    }
    runs: dict[str, list[float]] = {name: [] for name in arms}
    for round_ in range(args.rounds):
        for name, (extra, query, fraud_body) in arms.items():
            port = free_port()
            env = {
                "FRAUD_MODEL_STORE": str(store),
                "FRAUD_SERVING_CACHE": str(tmp / "cache"),
                "DATABASE_URL": f"sqlite:///{tmp / f'log-{round_}-{name[:5]}.db'}",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{round_}-{name[:5]}"),
                "FRAUD_LOG_SPOOL_DIR": str(tmp / "spool"),
                **extra,
            }
            proc = start("app:app", env, port, legit)
            try:
                wrk_mixed(port, legit, fraud_body, 2, query)
                rps = wrk_mixed(port, legit, fraud_body, args.seconds, query)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            runs[name].append(rps)
            print(name, round(rps), flush=True)
    # Each round's ratio to the same round's "off" run: rounds drift on a shared machine.
    off = np.array(runs[next(iter(arms))])
    serving = [
        "| /predict, 2 gunicorn workers, wrk 4 connections | requests/s per round | "
        "ratio to off, per round | median ratio |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {', '.join(f'{r:,.0f}' for r in rps)} | "
            f"{', '.join(f'{r:.2f}' for r in np.array(rps) / off)} | "
            f"{np.median(np.array(rps) / off):.2f} |"
            for name, rps in runs.items()
        ),
    ]
    body = "\n".join(
        [
            "Exact path-dependent TreeSHAP from the ONNX tree arrays (src/fraud_detection/"
            "explain.py), each family fitted with its defaults on the first 80% of the real "
            "data; one row = the test slice's frauds explained one at a time, one thread. "
            "Leaves whose score is 0 (a forest's pure legitimate leaves) are skipped.",
            "",
            *costs,
            "",
            "Top features of the first five test frauds, production forest (`fraud train`):",
            "",
            *tops,
            "",
            f"Throughput: one request in {EVERY} is a fraud the champion flags (0.2% of rows); "
            f"{args.rounds} interleaved rounds of {args.seconds} s, client and server on the "
            "same 2 cores.",
            "",
            *serving,
        ]
    )
    write_section(
        "Explanations",
        f"PYTHONPATH=benchmarks python benchmarks/explain_bench.py --rounds {args.rounds} "
        f"--seconds {args.seconds}",
        body,
    )
    print(body)


if __name__ == "__main__":
    main()
