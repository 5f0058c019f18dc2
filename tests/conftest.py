"""Shared fixtures: the real dataset, a moto S3 server over HTTP, store URIs of both kinds,
a trained store, and the service's `app` and `client`."""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from moto.server import ThreadedMotoServer

from fraud_detection.config import Settings
from fraud_detection.data import make_synthetic, time_split
from fraud_detection.fetch import fetch_dataset
from fraud_detection.prediction_log import count_rows, open_engine
from fraud_detection.schema import FEATURES
from fraud_detection.serving import close_app, create_app
from postgres_helpers import PrivatePostgres
from serving_helpers import train_into

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "creditcard.csv.gz"


@pytest.fixture(autouse=True)
def private_prediction_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test logs to its own SQLite file and spool, never to the checkout's ./.fraud."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prediction-log.db'}")
    monkeypatch.setenv("FRAUD_LOG_SPOOL_DIR", str(tmp_path / "log-spool"))


@pytest.fixture(autouse=True)
def outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run alike on GitHub's runners and elsewhere; those about Actions set it."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real dataset: the shared copy beside the project, read in place, or elsewhere
    (GitHub's runners) the sha256-checked cache that `fraud data fetch` fills."""
    if REAL_DATA.exists():
        return REAL_DATA
    return Path(fetch_dataset(REPO / ".fraud" / "data", progress=False))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, reached over HTTP like any S3."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"  # type: ignore[union-attr]
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points the standard AWS variables at the moto server; returns the endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_endpoint


@pytest.fixture
def s3_bucket(s3_env: str, request: pytest.FixtureRequest) -> str:
    """A fresh empty bucket on the moto server, unique to the test."""
    name = "t-" + format(abs(hash(request.node.nodeid)), "x")[:20]
    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A model store URI of each kind, so one suite runs against both."""
    if request.param == "local":
        return str(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/models-prefix"


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the tests' own (initdb in a temp folder), which tests may stop;
    a test that stops it starts it again."""
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A prediction-log database of each kind: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'predictions.db'}"
        return
    server: PrivatePostgres = request.getfixturevalue("private_postgres")
    with server.database() as url:
        yield url


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with versions 1 (champion) and 2 (challenger), made by `fraud train`."""
    store = tmp_path_factory.mktemp("serving") / "store"
    train_into(store, promote=True)
    train_into(store)
    return store


@pytest.fixture
def store(trained_store: Path, tmp_path: Path) -> Path:
    """A private copy of the trained store, so a test may promote, corrupt or break it."""
    copy = tmp_path / "store"
    shutil.copytree(trained_store, copy)
    return copy


MakeApp = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[MakeApp]:
    """Builds services on a store with the test's own cache and log; closes them all after."""
    apps: list[Flask] = []

    def build(store: Path | str, **overrides: object) -> Flask:
        values: dict[str, object] = {
            "model_store": str(store),
            "serving_cache": tmp_path / "cache",
            "reload_interval": 3600,
            "database_url": f"sqlite:///{tmp_path / 'predictions.db'}",
            **overrides,
        }
        app = create_app(Settings(**values))
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


@pytest.fixture
def app(make_app: MakeApp, store: Path) -> Flask:
    """The service on a private copy of the trained store."""
    return make_app(store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A champion trained on synthetic data, and 2,000 later rows scored and labelled."""
    tmp = tmp_path_factory.mktemp("monitor")
    store = tmp / "store"
    train_into(store, promote=True)
    url = f"sqlite:///{tmp / 'log.db'}"
    app = create_app(
        Settings(
            model_store=str(store),
            serving_cache=tmp / "cache",
            database_url=url,
            reload_interval=3600,
        )
    )
    client = app.test_client()
    _, new = time_split(make_synthetic(rows=10_000, seed=5), 0.8)
    instances = [
        {**{f: float(r[f]) for f in FEATURES}, "transaction_id": f"m{i}"}
        for i, r in new.reset_index(drop=True).iterrows()
    ]
    for start in range(0, len(instances), 500):
        assert (
            client.post("/predict", json={"instances": instances[start : start + 500]}).status_code
            == 200
        )
    labels = [{"transaction_id": f"m{i}", "label": int(c)} for i, c in enumerate(new.Class)]
    assert client.post("/feedback", json={"labels": labels[:1000]}).status_code == 200
    assert client.post("/feedback", json={"labels": labels[1000:]}).status_code == 200
    close_app(app)
    assert count_rows(open_engine(url)) == len(instances)
    return store, url
