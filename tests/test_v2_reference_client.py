"""The Open Inference Protocol's reference client (tritonclient[http]) against the live service:
health, metadata and infer with FP32 and FP64, as JSON and as binary tensor data, scoring real
rows exactly as /predict does; errors in the protocol's shape."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from fraud_detection.schema import FEATURES
from serving_helpers import serve

MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def service(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(trained_store, tmp_path_factory.mktemp("triton"), workers=1) as url:
        yield url


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=service.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def rows(real_data: Path) -> np.ndarray:
    """Real transactions, frauds among them (the first 300 rows and the first 5 frauds)."""
    df = pd.read_csv(real_data, nrows=20_000)
    picked = pd.concat([df.head(300), df[df.Class == 1].head(5)])
    return picked.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)


def _predict(service: str, rows: np.ndarray) -> np.ndarray:
    instances = [dict(zip(FEATURES, row.tolist(), strict=True)) for row in rows]
    answer = requests.post(f"{service}/predict", json={"instances": instances}, timeout=30)
    assert answer.status_code == 200, answer.text
    return np.array([p["fraud_probability"] for p in answer.json()["predictions"]])


def test_health_and_metadata_through_the_reference_client(
    client: triton.InferenceServerClient,
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.get_server_metadata()["name"] == "fraud-detection"
    metadata = client.get_model_metadata(MODEL)
    assert metadata["inputs"][0]["shape"] == [-1, len(FEATURES)]
    assert {o["name"] for o in metadata["outputs"]} == {"probabilities", "is_fraud"}
    version = metadata["versions"][0]
    assert client.get_model_metadata(MODEL, model_version=version)["versions"] == [version]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("binary", [False, True])
def test_infer_through_the_reference_client_scores_like_predict(
    client: triton.InferenceServerClient,
    service: str,
    rows: np.ndarray,
    datatype: str,
    binary: bool,
) -> None:
    tensor = triton.InferInput("input", list(rows.shape), datatype)
    tensor.set_data_from_numpy(
        rows.astype({"FP32": np.float32, "FP64": np.float64}[datatype]), binary_data=binary
    )
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=binary),
        triton.InferRequestedOutput("is_fraud", binary_data=binary),
    ]
    result = client.infer(MODEL, [tensor], outputs=outputs, request_id=f"tc-{datatype}-{binary}")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(rows),)
    np.testing.assert_allclose(probabilities, _predict(service, rows), rtol=0, atol=1e-6)
    threshold = result.get_response()["parameters"]["threshold"]
    np.testing.assert_array_equal(result.as_numpy("is_fraud"), probabilities >= threshold)


def test_infer_without_named_outputs_answers_every_output_as_binary(
    client: triton.InferenceServerClient, service: str, rows: np.ndarray
) -> None:
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32), binary_data=True)
    result = client.infer(MODEL, [tensor])
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), _predict(service, rows), rtol=0, atol=1e-6
    )
    assert result.as_numpy("is_fraud").dtype == np.bool_


def test_errors_reach_the_reference_client_as_the_protocols_error_string(
    client: triton.InferenceServerClient, rows: np.ndarray
) -> None:
    tensor = triton.InferInput("input", [1, len(FEATURES)], "FP64")
    tensor.set_data_from_numpy(rows[:1])
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no-such-model", [tensor])
    assert unknown.value.status() == "404" and "no-such-model" in unknown.value.message()
    wide = triton.InferInput("input", [1, 5], "FP64")
    wide.set_data_from_numpy(np.zeros((1, 5)))
    with pytest.raises(InferenceServerException) as bad:
        client.infer(MODEL, [wide])
    assert bad.value.status() == "400" and "shape" in bad.value.message()
