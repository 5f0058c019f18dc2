"""Both APIs share one data plane: V2 infer is routed, counted and logged like /predict."""

from pathlib import Path

from flask import Flask
from sqlalchemy import text

from conftest import MakeApp
from fraud_detection.prediction_log import open_engine
from fraud_detection.schema import FEATURES
from fraud_detection.serving import close_app
from serving_helpers import scored, transaction

INFER = "/v2/models/fraud-detector/infer"


def _v2(rows: int, request_id: str) -> dict[str, object]:
    row = [float(transaction()[name]) for name in FEATURES]  # type: ignore[arg-type]
    tensor = {"name": "input", "datatype": "FP64", "shape": [rows, len(FEATURES)]}
    return {"id": request_id, "inputs": [{**tensor, "data": row * rows}]}


def _logged(app: Flask, database_url: str) -> list[tuple[str, str, str, str]]:
    """(transaction_id, endpoint, variant, model_version) of every logged row, once flushed."""
    close_app(app)
    with open_engine(database_url).connect() as conn:
        query = "SELECT transaction_id, endpoint, variant, model_version FROM predictions"
        return [tuple(row) for row in conn.execute(text(query))]  # type: ignore[misc]


def test_v2_infer_of_the_challenger_version_is_counted_and_logged_as_challenger(
    make_app: MakeApp, store: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    app = make_app(store, database_url=url)
    before = scored("2", "challenger"), scored("2", "champion")
    path = "/v2/models/fraud-detector/versions/2/infer"
    response = app.test_client().post(path, json=_v2(3, "ch"))
    assert response.status_code == 200
    assert response.get_json()["model_version"] == "2"
    assert scored("2", "challenger") - before[0] == 3
    assert scored("2", "champion") == before[1]
    assert sorted(_logged(app, url)) == [
        (f"ch:{i}", "v2_infer", "challenger", "2") for i in range(3)
    ]


def test_v2_rows_are_routed_like_predict_rows_sticky_by_request_id_and_row(
    make_app: MakeApp, store: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    app = make_app(store, database_url=url, challenger_traffic=0.3)
    client = app.test_client()
    body = client.post(INFER, json=_v2(400, "req")).get_json()
    v2_versions = body["parameters"]["row_model_versions"]
    assert 0.2 < v2_versions.count("2") / 400 < 0.4
    assert body["model_version"] == "1"
    instances = [transaction(transaction_id=f"req:{i}") for i in range(400)]
    predictions = client.post("/predict", json={"instances": instances}).get_json()["predictions"]
    assert [p["model_version"] for p in predictions] == v2_versions
    logged = {
        (tid, endpoint): (variant, version) for tid, endpoint, variant, version in _logged(app, url)
    }
    for i, version in enumerate(v2_versions):
        variant = "challenger" if version == "2" else "champion"
        assert (
            logged[(f"req:{i}", "v2_infer")]
            == logged[(f"req:{i}", "predict")]
            == (variant, version)
        )


def test_shadow_applies_to_v2_infer(make_app: MakeApp, store: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    app = make_app(store, database_url=url, shadow=True)
    before = scored("2", "shadow")
    body = app.test_client().post(INFER, json=_v2(4, "sh")).get_json()
    assert body["model_version"] == "1" and "row_model_versions" not in body["parameters"]
    assert scored("2", "shadow") - before == 4
    variants = sorted(variant for _, _, variant, _ in _logged(app, url))
    assert variants == ["champion"] * 4 + ["shadow"] * 4


def test_a_version_in_the_v2_path_scores_every_row_with_it_under_a_b(
    make_app: MakeApp, store: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    # Half the ids go to the challenger when the path names no version.
    app = make_app(store, database_url=url, challenger_traffic=0.5)
    client = app.test_client()
    routed = client.post(INFER, json=_v2(200, "ab")).get_json()
    assert set(routed["parameters"]["row_model_versions"]) == {"1", "2"}
    for version in ("1", "2"):
        path = f"/v2/models/fraud-detector/versions/{version}/infer"
        body = client.post(path, json=_v2(200, f"pin{version}")).get_json()
        assert body["model_version"] == version
        assert "row_model_versions" not in body["parameters"]
    logged = [row for row in _logged(app, url) if row[0].startswith("pin")]
    assert sorted(logged) == sorted(
        [(f"pin1:{i}", "v2_infer", "champion", "1") for i in range(200)]
        + [(f"pin2:{i}", "v2_infer", "challenger", "2") for i in range(200)]
    )


def test_a_version_in_the_v2_path_is_not_shadowed(
    make_app: MakeApp, store: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    app = make_app(store, database_url=url, shadow=True)
    before = scored("1", "shadow"), scored("2", "shadow")
    client = app.test_client()
    for version in ("1", "2"):
        path = f"/v2/models/fraud-detector/versions/{version}/infer"
        body = client.post(path, json=_v2(5, f"pin{version}")).get_json()
        assert body["model_version"] == version
    assert (scored("1", "shadow"), scored("2", "shadow")) == before
    assert sorted(_logged(app, url)) == sorted(
        [(f"pin1:{i}", "v2_infer", "champion", "1") for i in range(5)]
        + [(f"pin2:{i}", "v2_infer", "challenger", "2") for i in range(5)]
    )
