"""Hostile and unlucky requests get a clear 4xx naming what is wrong, never a 500 or a wrong
score: deep nesting, odd V2 tensors, values the model cannot represent, ids the log cannot
hold, bodies over the limit however they are sent; and, through the live gunicorn service,
broken framing (chunked or Content-Length), lone surrogates and integers past Python's
int-string limit, none of which is ever scored or logged."""

import contextlib
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from flask.testing import FlaskClient

from fraud_detection.schema import FEATURES
from serving_helpers import metric_sum, serve, transaction
from waiting import wait_for

INFER = "/v2/models/fraud-detector/infer"
JSON = {"Content-Type": "application/json"}


def _v2(
    data: object, datatype: object = "FP64", rows: int = 1, **extra: object
) -> dict[str, object]:
    tensor = {"name": "input", "datatype": datatype, "shape": [rows, len(FEATURES)], "data": data}
    return {"inputs": [tensor], **extra}


def _row(**overrides: float) -> list[float]:
    return [float(v) for k, v in transaction(**overrides).items() if k in FEATURES]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/predict", b"[" * 100_000),
        ("/predict", b'{"instances": ' + b"[" * 5_000),
        ("/feedback", b"{" * 100_000),
        (INFER, b'{"inputs": ' + b"[" * 100_000),
    ],
)
def test_json_nested_past_any_limit_is_a_400(client: FlaskClient, path: str, body: bytes) -> None:
    response = client.post(path, data=body, headers=JSON)
    assert response.status_code == 400
    assert "malformed JSON" in response.get_data(as_text=True)


@pytest.mark.parametrize("datatype", [{}, [], None, 3, "BOOL"])
def test_a_v2_datatype_that_is_not_fp32_or_fp64_is_a_400(
    client: FlaskClient, datatype: object
) -> None:
    response = client.post(INFER, json=_v2(_row(), datatype))
    assert response.status_code == 400
    assert "datatype" in response.get_data(as_text=True)


def test_a_v2_integer_beyond_float64_is_a_400(client: FlaskClient) -> None:
    body = '{"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 30], "data": [%s]}]}'
    values = ["1"] * 29 + ["1" + "0" * 400]
    response = client.post(INFER, data=body % ", ".join(values), headers=JSON)
    assert response.status_code == 400
    assert response.get_json()["error"]


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_a_v2_value_beyond_float32_is_a_400_not_scored_as_inf(
    client: FlaskClient, datatype: str
) -> None:
    response = client.post(INFER, json=_v2(_row(V1=1e39), datatype))
    assert response.status_code == 400
    assert "V1" in response.get_data(as_text=True)


def test_a_predict_value_beyond_float32_is_a_400_naming_the_field(client: FlaskClient) -> None:
    single = client.post("/predict", json=transaction(V1=1e39))
    assert single.status_code == 400
    assert single.get_json()["error"]["field"] == "V1"
    batch = client.post("/predict", json={"instances": [transaction(), transaction(V7=-1e300)]})
    assert batch.status_code == 400
    assert "instances[1].V7" in batch.get_json()["error"]["message"]


def test_v2_data_may_be_nested_per_row_but_not_ragged(client: FlaskClient) -> None:
    nested = client.post(INFER, json=_v2([_row(), _row()], rows=2))
    assert nested.status_code == 200
    flat = client.post(INFER, json=_v2(_row() + _row(), rows=2))
    assert nested.get_json()["outputs"] == flat.get_json()["outputs"]
    ragged = client.post(INFER, json=_v2([_row(), 1.0], rows=2))
    assert ragged.status_code == 400
    deep = client.post(INFER, json=_v2([[_row()]], rows=1))
    assert deep.status_code == 400


@pytest.mark.parametrize("tid", ["a\x00b", "tab\there", "x" * 129, ""])
def test_a_transaction_id_the_log_cannot_hold_is_a_400(client: FlaskClient, tid: str) -> None:
    for path, body in (
        ("/predict", transaction(transaction_id=tid)),
        ("/feedback", {"transaction_id": tid, "label": 1}),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 400, path
        assert response.get_json()["error"]["field"] == "transaction_id"


@pytest.mark.parametrize("request_id", ["r" * 125, "nul\x00", 7])
def test_a_v2_request_id_the_log_cannot_hold_is_a_400(
    client: FlaskClient, request_id: object
) -> None:
    response = client.post(INFER, json=_v2(_row(), id=request_id))
    assert response.status_code == 400
    # The longest accepted id still fits "<id>:<row>" in the log's 128 characters.
    assert client.post(INFER, json=_v2(_row(), id="r" * 124)).status_code == 200


@pytest.fixture(scope="module")
def service(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(trained_store, tmp_path_factory.mktemp("hostile"), workers=1) as url:
        yield url


def _post_chunked(url: str, path: str, chunks: Iterator[bytes]) -> tuple[int, bytes]:
    """POST with Transfer-Encoding: chunked over a raw socket; (status, response bytes).

    The answer is read while the body is still being sent: a server that refuses the body
    answers and closes before the client is done, as it should.
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    received = bytearray()

    def read() -> None:
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    with contextlib.suppress(OSError):
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
    reader.join(60)
    sock.close()
    status_line, _, rest = bytes(received).partition(b"\r\n")
    return int(status_line.split()[1]), rest


def _batch_of(megabytes: int) -> Iterator[bytes]:
    """A valid batch whose bytes run to `megabytes`, sent item by item."""
    item = orjson.dumps(transaction(transaction_id="t"))
    yield b'{"instances": ['
    for i in range(megabytes * 1024 * 1024 // len(item)):
        yield (b", " if i else b"") + item
    yield b"]}"


def _padded(megabytes: int) -> Iterator[bytes]:
    """One valid transaction, then whitespace: a prefix cut at the limit is valid JSON too."""
    yield orjson.dumps(transaction(transaction_id="padded"))
    for _ in range(megabytes):
        yield b" " * (1024 * 1024)


@pytest.mark.parametrize("body", [_padded(5), _batch_of(5), _batch_of(20)])
def test_a_chunked_body_over_the_limit_is_a_413_never_a_truncated_score(
    service: str, body: Iterator[bytes]
) -> None:
    status, answer = _post_chunked(service, "/predict", body)
    assert status == 413, answer[:300]


def test_v2_rows_of_the_wrong_width_are_refused_even_when_the_total_fits(
    client: FlaskClient,
) -> None:
    # 29 + 31 values make 60 = 2 x 30: flattened, every feature of row 1 would slide by one.
    row = _row()
    response = client.post(INFER, json=_v2([row[:29], [*row, 1.0]], rows=2))
    assert response.status_code == 400
    assert "30 numbers per row" in response.get_json()["error"]


def test_a_v2_shape_written_with_whole_floats_is_the_same_shape(client: FlaskClient) -> None:
    body = _v2(_row())
    body["inputs"][0]["shape"] = [1.0, 30.0]  # type: ignore[index]
    assert client.post(INFER, json=body).status_code == 200
    body["inputs"][0]["shape"] = [1.5, 30]  # type: ignore[index]
    assert client.post(INFER, json=body).status_code == 400


def test_a_v2_input_name_that_is_not_a_string_is_a_400(client: FlaskClient) -> None:
    body = _v2(_row())
    body["inputs"][0]["name"] = {}  # type: ignore[index]
    response = client.post(INFER, json=body)
    assert response.status_code == 400 and "name" in response.get_json()["error"]


@dataclass(frozen=True)
class Refusing:
    """A live service to send raw requests to, and the SQLite file of its prediction log."""

    url: str
    log: Path

    def send(self, request: bytes, half_close: bool = True) -> int:
        """Send raw bytes, then (with `half_close`) end the sending side; the answer's status."""
        parts = urlsplit(self.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            answer = bytearray()
            with contextlib.suppress(OSError):
                while data := sock.recv(65536):
                    answer.extend(data)
        return int(bytes(answer).split(b" ", 2)[1])

    def scored_and_logged(self) -> tuple[float, int]:
        """Transactions scored (the metric) and rows in the log, once a sentinel row is in:
        the writer keeps order, so whatever was queued before it is written by then."""
        sentinel = f"sentinel-{uuid.uuid4().hex}"
        ok = requests.post(f"{self.url}/predict", json=transaction(transaction_id=sentinel))
        assert ok.status_code == 200

        def rows() -> int | None:
            query = "SELECT COUNT(*), SUM(transaction_id = ?) FROM predictions"
            try:
                with sqlite3.connect(self.log) as db:
                    count, found = db.execute(query, (sentinel,)).fetchone()
            except sqlite3.OperationalError:  # no table until the writer's first batch
                return None
            return int(count) if found else None

        count = wait_for(rows, what="the sentinel row in the log")
        metrics = requests.get(f"{self.url}/metrics", timeout=10).text
        return metric_sum(metrics, "fraud_predictions_total"), count

    def refuses(self, cases: dict[str, bytes]) -> None:
        """Every case is answered 4xx, and none is scored or logged."""
        before = self.scored_and_logged()
        statuses = {name: self.send(request) for name, request in cases.items()}
        assert {k: s for k, s in statuses.items() if not 400 <= s < 500} == {}
        after = self.scored_and_logged()
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1), "only the sentinel"


@pytest.fixture(scope="module")
def refusing(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusing]:
    """The live service (gunicorn, one worker) and the SQLite file of its prediction log."""
    tmp = tmp_path_factory.mktemp("refusing")
    with serve(trained_store, tmp, workers=1) as url:
        yield Refusing(url, tmp / "predictions.db")


SURROGATE = "\\ud800"  # as JSON writes it: the escape of a lone surrogate
ROUTES = {
    "/predict": orjson.dumps(transaction(transaction_id="h1")),
    INFER: orjson.dumps(_v2(_row(), id="h2")),
    "/feedback": orjson.dumps({"transaction_id": "h3", "label": 1}),
}


def _request(path: str, body: bytes, headers: bytes = b"", length: int | None = None) -> bytes:
    """A POST with a Content-Length (the body's own unless told)."""
    size = len(body) if length is None else length
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
    return head + headers + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % size + body


def _chunked(path: str, chunks: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
    return head + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks


def test_broken_framing_is_a_4xx_and_scores_and_logs_nothing(refusing: Refusing) -> None:
    cases = {}
    for path, body in ROUTES.items():
        size = b"%x" % len(body)
        cases |= {
            f"{path} chunk size zz": _chunked(path, b"zz\r\n" + body + b"\r\n0\r\n\r\n"),
            f"{path} chunk size -5": _chunked(path, b"-5\r\n" + body + b"\r\n0\r\n\r\n"),
            f"{path} chunk terminator": _chunked(path, size + b"\r\n" + body + b"XX0\r\n\r\n"),
            f"{path} no last chunk": _chunked(path, size + b"\r\n" + body + b"\r\n"),
            f"{path} Content-Length over the body": _request(path, body, length=len(body) + 50),
            f"{path} Content-Length and chunked": _request(
                path, size + b"\r\n" + body + b"\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"
            ),
        }
    refusing.refuses(cases)


def test_a_body_that_stops_short_and_stalls_is_a_4xx(refusing: Refusing) -> None:
    # The client keeps the connection open: the read times out (gunicorn_conf's READ_TIMEOUT).
    body = ROUTES["/predict"]
    before = refusing.scored_and_logged()
    assert refusing.send(_request("/predict", body, length=len(body) + 50), half_close=False) == 400
    after = refusing.scored_and_logged()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def _surrogate_in(body: bytes, text: str) -> bytes:
    """`body` with the JSON string `text` (quoted) replaced by a lone surrogate's escape."""
    quoted = orjson.dumps(text)
    assert quoted in body, text
    return body.replace(quoted, b'"' + SURROGATE.encode() + b'"', 1)


def test_lone_surrogates_and_endless_integers_are_a_4xx_and_score_and_log_nothing(
    refusing: Refusing,
) -> None:
    digits = b"1" * 4301  # past Python's int-string limit (4,300 digits)
    predict, v2, feedback = ROUTES.values()
    v2_extra = orjson.dumps(
        _v2(_row(), id="h2", parameters={"key": "value"}, outputs=[{"name": "is_fraud"}])
    )
    header = b"Inference-Header-Content-Length: %s\r\n"
    cases = {
        "predict transaction_id": _surrogate_in(predict, "h1"),
        "predict ignored field": _surrogate_in(orjson.dumps({**transaction(), "m": "x"}), "x"),
        "predict field name": _surrogate_in(orjson.dumps({**transaction(), "m": 1}), "m"),
        "predict number": predict.replace(b'"Amount":42.5', b'"Amount":' + digits),
        "v2 id": _surrogate_in(v2, "h2"),
        "v2 input name": _surrogate_in(v2, "input"),
        "v2 parameter name": _surrogate_in(v2_extra, "key"),
        "v2 parameter value": _surrogate_in(v2_extra, "value"),
        "v2 output name": _surrogate_in(v2_extra, "is_fraud"),
        "v2 number": v2.replace(b"[1,30]", b"[1," + digits + b"]"),
        "v2 header length": _request(INFER, v2, header % (b"9" * 4301)),
        "v2 header length in zeros": _request(INFER, v2, header % (b"0" * 4301 + b"1")),
        "feedback transaction_id": _surrogate_in(feedback, "h3"),
        "feedback in a batch": _surrogate_in(
            orjson.dumps({"labels": [{"transaction_id": "h4", "label": 1}]}), "h4"
        ),
        "feedback label": feedback.replace(b'"label":1', b'"label":' + digits),
    }
    requests_ = {
        name: body if body.startswith(b"POST") else _request(_route(name), body)
        for name, body in cases.items()
    }
    refusing.refuses(requests_)


def _route(case: str) -> str:
    return {"predict": "/predict", "v2": INFER, "feedback": "/feedback"}[case.split()[0]]
