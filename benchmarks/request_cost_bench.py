"""Instructions a /predict request costs, stage by stage, counted by callgrind.

Requests/s on this shared machine move by 10-20% between runs of the same code; the instructions
callgrind counts moved by 4% (threads, the collector and hash seeds still vary). Each stage
serves the same legitimate transaction of the test period in one process (no gunicorn, no
network), through the Flask app with everything on (metrics in multiprocess mode, the SQLite
log and its spool, the log writer's thread), and stops after its stage with a constant answer:

  floor     benchmarks/floor_app.py: parse the JSON, answer a constant
  flask     our app (its hooks and routing), parsing the JSON the same way
  decode    + reading, validating and converting the body (codecs.decode_predict)
  onnx      + the champion's onnxruntime session on the row
  route     + routing, the decision and the scoring metrics (DataPlane._route)
  unlogged  + the rest of DataPlane.predict with the log call a no-op (latency metric, answer)
  predict   + the log: the spool record on the request path, the writer's thread off it
  full      + encoding the answer (the real /predict)

Instructions are not time: memory stalls (onnxruntime's trees once Python has evicted them
from the caches) and the kernel (sockets, the spool's write) are not counted. Per request =
(a run of 1,200 requests - a run of 200) / 1,000, so start-up cancels out.
Usage: python benchmarks/request_cost_bench.py [--data PATH]
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "creditcard.csv.gz"
STAGES = ("floor", "flask", "decode", "onnx", "route", "unlogged", "predict", "full")
FEW, MANY = 200, 1_200


def staged_app(stage: str) -> Any:
    """The WSGI app whose /predict stops after `stage` (settings from the environment)."""
    if stage == "floor":
        from floor_app import app

        return app
    from flask import jsonify

    from fraud_detection.config import get_settings
    from fraud_detection.serving import create_app
    from fraud_detection.serving.codecs import decode_predict, encode_predict
    from fraud_detection.serving.context import current_request, metric_label

    app = create_app(get_settings())
    plane = app.extensions["fraud"]
    # The writer writes every 200 rows, as in a busy worker: its 0.1 s flush would come every
    # few requests under callgrind, which runs the process about fifty times slower.
    plane.prediction_log._flush_interval = 3600.0
    if stage == "unlogged":
        plane.prediction_log.log = lambda batch: None
    constant = {"fraud_probability": 0.0, "is_fraud": False}

    def predict() -> Any:
        started = time.perf_counter()
        req = current_request()
        if stage == "flask":
            req.get_json()
            return jsonify(constant)
        body = decode_predict(req, plane.settings.max_batch)
        if stage == "decode":
            return jsonify(constant)
        if stage == "onnx":
            plane.champion().score(body.x)
            return jsonify(constant)
        if stage == "route":
            plane._route(body.x, body.ids, plane.champion())
            return jsonify(constant)
        prediction = plane.predict(
            body.x, body.ids, metric_label(req), started, body.explain, body.event_times
        )
        if stage in ("unlogged", "predict"):
            return jsonify(constant)
        return encode_predict(prediction, body.batch)

    app.view_functions["predict.predict"] = predict
    return app


def child(stage: str, requests: int, body: bytes) -> None:
    """Serve `requests` requests of `body` in this process, then stop the app (the log writer
    writes what it holds, inside the count)."""
    from werkzeug.test import EnvironBuilder

    app = staged_app(stage)
    environ = EnvironBuilder(
        path="/predict", method="POST", data=body, content_type="application/json"
    ).get_environ()
    status: list[str] = []
    for _ in range(requests):
        env = {**environ, "wsgi.input": io.BytesIO(body)}
        b"".join(app(env, lambda s, h, e=None: status.append(s)))
        if not status[-1].startswith("200"):
            raise SystemExit(f"{stage}: {status[-1]}")
    if stage != "floor":
        from fraud_detection.serving import close_app

        close_app(app)
    os._exit(0)  # skip interpreter teardown: it is not a request's cost


def instructions(stage: str, requests: int, body_file: Path, store: Path, tmp: Path) -> int:
    """Instructions callgrind counted for a child serving `requests` requests at `stage`."""
    folder = Path(tempfile.mkdtemp(prefix=f"{stage}-{requests}-", dir=tmp))
    (folder / "prom").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}:{REPO / 'src'}",
        "FRAUD_MODEL_STORE": str(store),
        "FRAUD_SERVING_CACHE": str(folder / "cache"),
        "DATABASE_URL": f"sqlite:///{folder / 'predictions.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "prom"),
        "FRAUD_LOG_SPOOL_DIR": str(folder / "spool"),
        # No reload poll inside the count: the run is fifty times slower under callgrind.
        "FRAUD_RELOAD_INTERVAL": "3600",
    }
    out = folder / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    command += [__file__, "--child", stage, str(requests), str(body_file)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, requests, body_file = args.child
        child(stage, int(requests), Path(body_file).read_bytes())
        return

    from serve_bench import bodies

    from fraud_detection.data import load_dataset, time_split
    from fraud_detection.schema import FEATURES
    from results import write_section
    from train_bench import run_fraud_train

    tmp = Path(tempfile.mkdtemp(prefix="request-cost-"))
    store = tmp / "store"
    run_fraud_train(args.data, store)
    _, test = time_split(load_dataset(str(args.data)))
    legit, _ = bodies(store, tmp / "cache-bodies", test.loc[:, list(FEATURES)].to_numpy())
    body_file = tmp / "body.json"
    body_file.write_text(legit)
    runs = [(stage, n) for stage in STAGES for n in (FEW, MANY)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = pool.map(lambda run: instructions(*run, body_file, store, tmp), runs)
        counts = dict(zip(runs, found, strict=True))
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout
    per = {stage: (counts[stage, MANY] - counts[stage, FEW]) / (MANY - FEW) for stage in STAGES}
    rows = []
    previous = None
    for stage in STAGES:
        added = "" if previous is None or stage == "flask" else f"{per[stage] - per[previous]:,.0f}"
        rows.append(f"| {stage} | {per[stage]:,.0f} | {added} | {per[stage] / per['floor']:.2f} |")
        previous = stage
    print("\n".join(rows))
    table = "\n".join(
        [
            f"Transaction `{json.loads(legit)['transaction_id']}` (legitimate), the model "
            "`fraud train` makes of the real data; instructions per request = (1,200 requests "
            "- 200) / 1,000 under `valgrind --tool=callgrind`, every thread of the process "
            "counted (the log writer's included, writing 200 rows at a time). Each stage "
            "includes those above it, and answers a constant with Flask's `jsonify` as the "
            "floor does; `flask` replaces `floor` (our app, parsing the JSON as the floor "
            "does); `full` answers with our encoder. Counts are not exactly repeatable: "
            "threads, the collector and hash seeds move them, by up to 20,000 a stage and 4% "
            "in all between two runs of the same code (where requests/s moved 10-20%).",
            "",
            "| stage | instructions/request | added by the stage | x floor |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"Counted by {valgrind.strip()}.",
        ]
    )
    write_section(
        "Serving cost in instructions",
        "python benchmarks/request_cost_bench.py",
        table,
    )


if __name__ == "__main__":
    main()
