"""Hostile and unlucky requests get a clear 4xx naming what is wrong, never a 500 or a wrong
score: deep nesting, odd V2 tensors, values the model cannot represent, ids the log cannot
hold, and bodies over the limit however they are sent."""

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from flask.testing import FlaskClient

from fraud_detection.schema import FEATURES
from serving_helpers import serve, transaction

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
