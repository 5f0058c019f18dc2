"""`fraud simulate` against a real HTTP server on loopback that answers like the service."""

import json
import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from fraud_detection.cli import cli
from fraud_detection.data import load_dataset, make_synthetic, time_split
from fraud_detection.schema import FEATURES
from fraud_detection.simulate import (
    LabelQueue,
    PendingLabel,
    ReplayOptions,
    Shift,
    ShiftError,
    Summary,
    apply_shifts,
    choose_labelled,
    due_time,
    parse_shift,
    replay,
    spread_rows,
)

TOLERANCE = 0.02
"""Seconds of clock slack between the server's record and the client's own timing."""


@dataclass
class Service:
    """What the fake service received, and how it should misbehave."""

    url: str = ""
    token: str | None = None
    predictions: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    labels: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    """(path, client port, body) of every POST, in arrival order."""
    failing: dict[str, int] = field(default_factory=dict)
    """transaction id -> status /predict answers for any request that holds it."""
    feedback_unavailable: int = 0
    """How many /feedback requests to answer 503 before storing labels."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transactions(self) -> list[dict[str, Any]]:
        return [body for _, body in self.predictions]

    def label_times(self) -> dict[str, float]:
        return {item["transaction_id"]: at for at, item in self.labels}


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn
        disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str) -> None:
            self._answer(status, {"error": {"code": code, "message": f"{code}!", "field": None}})

        def do_GET(self) -> None:
            if self.path == "/v2/health/ready":
                self._answer(200, {"ready": True})
            else:
                self._error(404, "not_found")

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            now = time.monotonic()
            with service.lock:
                service.requests.append((self.path, self.client_address[1], body))
            if service.token and self.headers.get("Authorization") != f"Bearer {service.token}":
                self._error(401, "unauthorized")
            elif self.path == "/predict":
                self._predict(body, now)
            elif self.path == "/feedback":
                self._feedback(body, now)
            else:
                self._error(404, "not_found")

        def _predict(self, body: dict[str, Any], now: float) -> None:
            items = body.get("instances", [body])
            for item in items:
                if item["transaction_id"] in service.failing:
                    self._error(service.failing[item["transaction_id"]], "injected")
                    return
            with service.lock:
                service.predictions.extend((now, item) for item in items)
            answers = [
                {
                    "transaction_id": item["transaction_id"],
                    "fraud_probability": 0.9 if item["V14"] < -2 else 0.1,
                    "is_fraud": item["V14"] < -2,
                    "threshold": 0.5,
                    "model_version": "1",
                }
                for item in items
            ]
            if "instances" in body:
                self._answer(200, {"predictions": answers, "model_version": "1"})
            else:
                self._answer(200, answers[0])

        def _feedback(self, body: dict[str, Any], now: float) -> None:
            with service.lock:
                if service.feedback_unavailable > 0:
                    service.feedback_unavailable -= 1
                    unavailable = True
                else:
                    unavailable = False
                    service.labels.extend((now, item) for item in body["labels"])
            if unavailable:
                self._error(503, "prediction_log_unavailable")
            else:
                self._answer(200, {"stored": len(body["labels"])})

    return Handler


@pytest.fixture
def service() -> Iterator[Service]:
    """The fake service on a free loopback port, in a thread."""
    state = Service()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def dataset(tmp_path: Path, rows: int = 500, fraud_rate: float = 0.05) -> tuple[str, pd.DataFrame]:
    """A small synthetic CSV (never the real data) and its new-data slice as loaded."""
    path = tmp_path / "transactions.csv"
    make_synthetic(rows=rows, fraud_rate=fraud_rate, seed=7).to_csv(path, index=False)
    return str(path), time_split(load_dataset(str(path)), 0.8)[1]


def run(service: Service, *args: str) -> Result:
    """`fraud simulate --url <service> ARGS --json`, fast by default."""
    base = ["--url", service.url, "--json", "--rate", "0", "--label-delay", "0"]
    return CliRunner().invoke(cli, ["simulate", *base, *args])


def summary(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_every_transaction_is_sent_once_with_its_id_and_all_30_features(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path)
    result = run(service, "--data", path, "--transaction-prefix", "run1")
    assert result.exit_code == 0, result.stderr
    sent = service.transactions()
    assert [t["transaction_id"] for t in sent] == [f"run1-{i}" for i in new.index]
    for transaction, (_, row) in zip(sent, new.iterrows(), strict=True):
        assert list(transaction) == ["transaction_id", *FEATURES]
        assert [transaction[f] for f in FEATURES] == row[list(FEATURES)].tolist()
    report = summary(result)
    assert report["sent"] == report["scored"] == len(new) == 100
    assert report["failed"] == 0 and report["ok"] is True
    assert report["frauds"] == int(new["Class"].sum()) > 0
    assert report["flagged"] == int((new["V14"] < -2).sum())
    assert report["labels_sent"] == len(new)
    # One keep-alive connection carries every request.
    assert len({port for _, port, _ in service.requests}) == 1


def test_batches_go_as_instances_of_at_most_batch_size(service: Service, tmp_path: Path) -> None:
    path, new = dataset(tmp_path, rows=150)
    result = run(service, "--data", path, "--batch-size", "7")
    assert result.exit_code == 0, result.stderr
    predicts = [body for p, _, body in service.requests if p == "/predict"]
    assert len(predicts) == math.ceil(len(new) / 7)
    assert all(len(body["instances"]) == 7 for body in predicts[:-1])
    assert len(service.transactions()) == len(new)


def test_shifts_are_applied_to_what_the_service_receives(service: Service, tmp_path: Path) -> None:
    path, new = dataset(tmp_path)
    result = run(service, "--data", path, "--shift", "Amount*3", "--shift", "V14+2")
    assert result.exit_code == 0, result.stderr
    sent = pd.DataFrame(service.transactions())
    np.testing.assert_allclose(sent["Amount"], new["Amount"] * 3)
    np.testing.assert_allclose(sent["V14"], new["V14"] + 2)
    np.testing.assert_array_equal(sent["V3"], new["V3"])
    assert summary(result)["shifts"] == ["Amount*3", "V14+2"]


def test_labels_arrive_only_after_the_delay_and_match_the_class(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path, rows=200)
    delay = 0.4
    result = run(service, "--data", path, "--label-delay", str(delay), "--transaction-prefix", "d")
    assert result.exit_code == 0, result.stderr
    scored_at = {body["transaction_id"]: at for at, body in service.predictions}
    labels = {item["transaction_id"]: item["label"] for _, item in service.labels}
    assert labels == {f"d-{i}": int(c) for i, c in new["Class"].items()}
    assert len(service.labels) == len(new)  # each once
    for tid, arrived in service.label_times().items():
        assert arrived - scored_at[tid] >= delay - TOLERANCE


def test_label_fraction_sends_a_seeded_uniform_sample(service: Service, tmp_path: Path) -> None:
    path, new = dataset(tmp_path)
    first = run(service, "--data", path, "--label-fraction", "0.25", "--transaction-prefix", "f")
    assert first.exit_code == 0, first.stderr
    chosen = set(service.label_times())
    assert len(chosen) == summary(first)["labels_sent"] == 25
    assert chosen < {f"f-{i}" for i in new.index}
    service.labels.clear()
    again = run(service, "--data", path, "--label-fraction", "0.25", "--transaction-prefix", "f")
    assert again.exit_code == 0 and set(service.label_times()) == chosen


def test_limit_spreads_over_the_whole_period_in_time_order(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path, rows=1000)
    result = run(service, "--data", path, "--limit", "20", "--transaction-prefix", "l")
    assert result.exit_code == 0, result.stderr
    sent = service.transactions()
    rows = [int(t["transaction_id"].removeprefix("l-")) for t in sent]
    assert len(rows) == 20 and rows == sorted(rows)
    assert rows[0] == new.index[0] and rows[-1] == new.index[-1]
    assert set(np.diff(rows)) <= {10, 11}  # every k-th row, k = 199 / 19
    times = [t["Time"] for t in sent]
    assert times == sorted(times)


def test_the_rate_is_held_on_average(service: Service, tmp_path: Path) -> None:
    path, _ = dataset(tmp_path, rows=250)  # 50 new rows
    started = time.monotonic()
    result = run(service, "--data", path, "--rate", "100")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    arrivals = [at for at, _ in service.predictions]
    assert len(arrivals) == 50
    assert arrivals[-1] - arrivals[0] >= 0.49 - TOLERANCE  # 49 gaps of 10 ms
    assert elapsed >= 0.45
    assert summary(result)["replay_seconds"] >= 0.45


def test_labels_refused_with_503_stay_queued_and_are_delivered(service: Service) -> None:
    rows = time_split(make_synthetic(rows=200, fraud_rate=0.05, seed=3), 0.8)[1]
    service.feedback_unavailable = 2
    options = ReplayOptions(
        url=service.url, rate=0, label_delay=0, feedback_backoff=0.01, flush_interval=0.01
    )
    result = replay(rows, options)
    assert result.ok, result.as_dict()
    assert result.labels_sent == len(rows) and result.labels_failed == 0
    feedbacks = [p for p, _, _ in service.requests if p == "/feedback"]
    assert len(feedbacks) >= 3
    assert sorted(service.label_times()) == sorted(f"sim-{i}" for i in rows.index)


def test_labels_are_given_up_after_the_feedback_deadline(service: Service) -> None:
    rows = time_split(make_synthetic(rows=50, fraud_rate=0.05, seed=3), 0.8)[1]
    service.feedback_unavailable = 10**9
    options = ReplayOptions(
        url=service.url,
        rate=0,
        label_delay=0,
        feedback_deadline=0.2,
        feedback_backoff=0.01,
        flush_interval=0.01,
    )
    result = replay(rows, options)
    assert not result.ok
    assert result.scored == len(rows) and result.labels_failed == len(rows)
    assert result.labels_sent == 0 and result.labels_unsent == 0
    assert "feedback HTTP 503 prediction_log_unavailable (gave up)" in result.errors


def test_a_failing_predict_is_retried_counted_and_the_replay_goes_on(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path, rows=100)
    bad = f"p-{new.index[3]}"
    service.failing[bad] = 500
    result = run(service, "--data", path, "--transaction-prefix", "p")
    assert result.exit_code == 1
    report = summary(result)
    assert report["failed"] == 1 and report["scored"] == len(new) - 1
    assert report["errors"] == {"predict HTTP 500 injected": 1}
    assert report["ok"] is False and "injected!" in report["last_error"]
    attempts = [b for p, _, b in service.requests if p == "/predict" and b["transaction_id"] == bad]
    assert len(attempts) == 3  # the first try and two retries
    assert bad not in service.label_times()
    assert len(service.label_times()) == len(new) - 1
    assert "last error" in result.stderr


def test_a_4xx_from_predict_is_counted_without_retry(service: Service, tmp_path: Path) -> None:
    path, new = dataset(tmp_path, rows=100)
    bad = f"q-{new.index[0]}"
    service.failing[bad] = 400
    result = run(service, "--data", path, "--transaction-prefix", "q")
    assert result.exit_code == 1
    assert summary(result)["errors"] == {"predict HTTP 400 injected": 1}
    attempts = [b for p, _, b in service.requests if p == "/predict" and b["transaction_id"] == bad]
    assert len(attempts) == 1


def test_an_unreachable_service_is_counted_not_a_crash(service: Service) -> None:
    rows = time_split(make_synthetic(rows=50, fraud_rate=0.05, seed=3), 0.8)[1]
    options = ReplayOptions(url="http://127.0.0.1:9", rate=0, backoff=0.001, timeout=1)
    result = replay(rows, options)
    assert result.sent == result.failed == len(rows) and result.scored == 0
    assert result.errors == {"predict connection error": len(rows)}
    assert result.labels_queued == 0 and not result.ok


def test_a_service_that_never_gets_ready_is_an_error(tmp_path: Path) -> None:
    path, _ = dataset(tmp_path, rows=100)
    result = CliRunner().invoke(
        cli, ["simulate", "--data", path, "--url", "http://127.0.0.1:9", "--wait-ready", "0.3"]
    )
    assert result.exit_code == 1
    assert "not ready after 0.3 s" in result.stderr and "Connection refused" in result.stderr


def test_the_token_is_sent_and_a_refused_one_stops_the_replay(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path, rows=100)
    service.token = "s3cret"
    good = run(service, "--data", path, "--token", "s3cret")
    assert good.exit_code == 0, good.stderr
    assert len(service.label_times()) == len(new)
    service.requests.clear()
    bad = CliRunner(env={"FRAUD_API_TOKEN": "wrong"}).invoke(
        cli, ["simulate", "--url", service.url, "--data", path, "--rate", "0", "--json"]
    )
    assert bad.exit_code == 1
    assert len(service.requests) == 1  # stopped at the first refusal, not 20 more
    assert "HTTP 401" in summary(bad)["stopped"] and "FRAUD_API_TOKEN" in bad.stderr


@pytest.mark.parametrize(
    "expression", ["Amount^3", "V99+1", "Amount*", "Amount*abc", "amount*3", "Class+1", "*3"]
)
def test_a_bad_shift_exits_2_with_a_message(service: Service, expression: str) -> None:
    result = run(service, "--synthetic", "--shift", expression)
    assert result.exit_code == 2
    assert "Invalid value for '--shift'" in result.stderr and expression in result.stderr
    assert service.requests == []


def test_synthetic_replay_says_so_on_every_output_line(service: Service) -> None:
    args = ["--url", service.url, "--synthetic", "--synthetic-rows", "2000", "--limit", "30"]
    result = CliRunner(env={"COLUMNS": "160"}).invoke(
        cli, ["simulate", *args, "--rate", "0", "--label-delay", "0"]
    )
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip("─ ")]
    assert lines and all("SYNTHETIC" in line for line in lines)
    assert all("SYNTHETIC" in line for line in result.stderr.splitlines() if line.strip())
    as_json = run(service, "--synthetic", "--synthetic-rows", "2000", "--limit", "30")
    assert summary(as_json)["synthetic"] is True


def test_ctrl_c_stops_cleanly_with_a_summary(service: Service) -> None:
    rows = time_split(make_synthetic(rows=500, fraud_rate=0.05, seed=3), 0.8)[1]
    interrupted: list[bool] = []

    def press_ctrl_c(progress: Summary) -> None:
        if progress.sent >= 10 and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt

    options = ReplayOptions(url=service.url, rate=0, label_delay=60)
    result = replay(rows, options, on_progress=press_ctrl_c)
    assert result.interrupted and not result.ok
    assert result.sent == result.scored == 10 == len(service.transactions())
    assert result.labels_unsent == 10 and result.labels_sent == 0


def test_sigint_stops_the_command_with_its_summary(service: Service, tmp_path: Path) -> None:
    path, _ = dataset(tmp_path, rows=2000)
    code = "from fraud_detection.cli import main; main()"
    args = [
        "simulate",
        "--url",
        service.url,
        "--data",
        path,
        "--rate",
        "50",
        "--label-delay",
        "60",
        "--json",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while len(service.predictions) < 5 and proc.poll() is None:
            assert time.monotonic() < deadline, "the replay never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["ok"] is False
    assert 5 <= report["sent"] < 400 and report["labels_unsent"] == report["scored"]
    assert b"Traceback" not in stderr


def issuer_run(service: Service, *args: str) -> Result:
    """`fraud simulate --labels issuer` in compressed time (no --label-delay: not its option)."""
    base = ["--url", service.url, "--json", "--labels", "issuer", "--start", "2026-03-01T00:00Z"]
    return CliRunner().invoke(cli, ["simulate", *base, *args])


def test_issuer_labels_follow_the_event_time_with_source_and_observed_at(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path, rows=2_000, fraud_rate=0.05)
    result = issuer_run(
        service, "--data", path, "--days", "14", "--speed", str(14 * 86_400 / 2),
        "--batch-size", "20", "--chargeback-rate", "1", "--chargeback-delay-days", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = service.transactions()
    times = [datetime.fromisoformat(t["event_time"]) for t in sent]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert times[0] == start and times[-1] == start + timedelta(days=14)
    assert times == sorted(times)
    prefix = summary(result)["transaction_prefix"]
    truth = {f"{prefix}-{i}": int(c) for i, c in new.Class.items()}
    flagged = {t["transaction_id"] for t in sent if t["V14"] < -2}
    at = dict(zip((t["transaction_id"] for t in sent), times, strict=True))
    labels = [item for _, item in service.labels]
    assert labels and len({x["transaction_id"] for x in labels}) == len(labels)
    for item in labels:
        tid = item["transaction_id"]
        assert item["label"] == truth[tid]
        assert item["source"] == ("review" if tid in flagged else "chargeback")
        assert datetime.fromisoformat(item["observed_at"]) >= at[tid]
        assert item["label"] == 1 or tid in flagged, "a legitimate row is labelled only by review"
    frauds = {tid for tid, c in truth.items() if c == 1}
    assert frauds <= {x["transaction_id"] for x in labels}, "every fraud, at chargeback rate 1"
    issuer = summary(result)["issuer"]
    assert issuer["reviews"] == len(flagged) and issuer["alerts_unreviewed"] == 0
    assert issuer["chargebacks"] == len(frauds - flagged)
    assert summary(result)["labels_sent"] == len(labels)


def test_issuer_and_uniform_options_do_not_mix(service: Service, tmp_path: Path) -> None:
    path, _ = dataset(tmp_path)
    mixed = CliRunner().invoke(
        cli, ["simulate", "--url", service.url, "--data", path, "--review-capacity", "5"]
    )
    assert mixed.exit_code == 2 and "--review-capacity needs --labels issuer" in mixed.output
    other = issuer_run(service, "--data", path, "--label-delay", "1")
    assert other.exit_code == 2 and "--label-delay is for --labels uniform" in other.output
    assert not service.requests


def test_real_new_data_replays_its_most_recent_fifth(service: Service, real_data: Path) -> None:
    result = run(service, "--data", str(real_data), "--limit", "200", "--transaction-prefix", "r")
    assert result.exit_code == 0, result.stderr
    rows = [int(t["transaction_id"].removeprefix("r-")) for t in service.transactions()]
    assert len(rows) == 200 and rows[0] == int(284_807 * 0.8) and rows[-1] == 284_806


# The pure parts.


def test_parse_shift_reads_feature_operator_and_number() -> None:
    assert parse_shift("Amount*3") == Shift("Amount", "*", 3.0)
    assert parse_shift(" V14 + 2 ") == Shift("V14", "+", 2.0)
    assert parse_shift("V3-1.5") == Shift("V3", "-", 1.5)
    assert parse_shift("V1*0.5") == Shift("V1", "*", 0.5)
    assert parse_shift("Time+-1e3") == Shift("Time", "+", -1000.0)
    assert str(parse_shift("V3-1.50")) == "V3-1.5"
    with pytest.raises(ShiftError, match="did you mean V14"):
        parse_shift("v14+1")


def test_shifts_apply_in_order_and_amount_stays_non_negative() -> None:
    rows = make_synthetic(rows=20, seed=2)
    shifted = apply_shifts(
        rows, [parse_shift("V1+1"), parse_shift("V1*2"), parse_shift("Amount-1e9")]
    )
    np.testing.assert_allclose(shifted["V1"], (rows["V1"] + 1) * 2)
    assert (shifted["Amount"] == 0).all()
    assert (rows["Amount"] > 0).all()  # the input is left as it was


def test_a_shift_from_a_day_on_changes_only_the_later_rows(
    service: Service, tmp_path: Path
) -> None:
    path, new = dataset(tmp_path)
    result = run(service, "--data", path, "--days", "10", "--shift", "V14+100",
                 "--shift-from", "5")  # fmt: skip
    assert result.exit_code == 0, result.output
    later = (new["Time"] - new["Time"].iloc[0]) / (
        new["Time"].iloc[-1] - new["Time"].iloc[0]
    ) >= 0.5
    sent = pd.DataFrame(service.transactions())
    np.testing.assert_allclose(sent["V14"], new["V14"] + np.where(later, 100.0, 0.0))
    assert 0 < later.sum() < len(new)


def test_spread_rows_keeps_first_and_last_and_every_kth() -> None:
    frame = pd.DataFrame({"x": range(100)}, index=range(1000, 1100))
    assert spread_rows(frame, 5).index.tolist() == [1000, 1024, 1049, 1074, 1099]
    assert spread_rows(frame, 1).index.tolist() == [1000]
    assert spread_rows(frame, None) is frame and spread_rows(frame, 500) is frame


def test_spread_rows_keeps_the_fraud_share_natural() -> None:
    frame = make_synthetic(rows=50_000, fraud_rate=0.01, seed=1)
    sample = spread_rows(frame, 10_000)
    assert sample["Class"].mean() == pytest.approx(frame["Class"].mean(), rel=0.25)


def test_choose_labelled_picks_an_exact_seeded_share() -> None:
    chosen = choose_labelled(1000, 0.3, seed=5)
    assert chosen.sum() == 300
    assert (choose_labelled(1000, 0.3, seed=5) == chosen).all()
    assert (choose_labelled(1000, 0.3, seed=6) != chosen).any()
    assert choose_labelled(10, 1.0, seed=0).all() and not choose_labelled(10, 0.0, seed=0).any()


def test_due_time_is_measured_from_the_start() -> None:
    assert due_time(10.0, 50, 100.0) == pytest.approx(10.5)
    assert due_time(10.0, 50, 0.0) == 10.0


def test_label_queue_hands_out_due_labels_earliest_first_in_batches() -> None:
    queue = LabelQueue()
    for i, due in enumerate([3.0, 1.0, 2.0, 5.0]):
        queue.add(PendingLabel(f"t{i}", 0, due))
    assert queue.next_at() == 1.0
    assert [p.transaction_id for p in queue.take(2.5)] == ["t1", "t2"]
    assert queue.take(2.5) == []
    retried = queue.take(3.0)
    queue.add(retried[0], at=4.0)  # refused: back in the queue for later
    assert [p.transaction_id for p in queue.take(10.0, limit=1)] == ["t0"]
    assert len(queue) == 1 and queue.drain()[0].transaction_id == "t3" and len(queue) == 0
