"""The image (Dockerfile) built and run for real with podman (SPEC 13): trained into as its own
user, served with its own CMD as a non-root user, healthy, and stopped by SIGTERM under load
with exit 0 inside gunicorn's graceful timeout and a log row for every answered request."""

import json
import os
import runpy
import secrets
import sqlite3
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from fraud_detection.schema import FEATURES
from image_helpers import build_image, podman, podman_env
from prometheus_helpers import REPO, free_port
from serving_helpers import train_into
from waiting import wait_for

pytestmark = pytest.mark.long  # an end-to-end run: see pyproject.toml

TAG = "localhost/fraud-detection:test"
USER = 10001
GRACEFUL_TIMEOUT = runpy.run_path(str(REPO / "src/fraud_detection/gunicorn_conf.py"))[
    "graceful_timeout"
]


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return podman_env()


@pytest.fixture(scope="module")
def image(env: dict[str, str]) -> str:
    build_image(env, TAG)
    return TAG


@pytest.fixture(scope="module")
def folders() -> Iterator[Path]:
    """Host folders the container's user may use (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory(prefix="fraud-image-") as tmp:
        Path(tmp).chmod(0o755)
        yield Path(tmp)


def owned_by_image_user(path: Path) -> Path:
    path.mkdir()
    os.chown(path, USER, USER)
    return path


@pytest.fixture(scope="module")
def store(env: dict[str, str], image: str, folders: Path) -> Path:
    """A store trained inside the image, as the image's user, into a mounted folder."""
    store = owned_by_image_user(folders / "store")
    podman(
        env,
        *("run", "--rm", "--network", "none", "--no-healthcheck"),
        *("-v", f"{store}:/data/store", image),
        *("fraud", "train", "--synthetic", "--synthetic-rows", "20000", "--trees", "8"),
        timeout=300,
    )
    assert json.loads((store / "models/fraud-detector/aliases/champion.json").read_text())
    return store


@pytest.fixture(scope="module")
def real_row(real_data: Path) -> dict[str, object]:
    row = pd.read_csv(real_data, nrows=1).iloc[0]
    return {"transaction_id": "real-0", **{name: float(row[name]) for name in FEATURES}}


@pytest.fixture
def service(env: dict[str, str], image: str, store: Path, folders: Path) -> Iterator[str]:
    """The image's own CMD with the store read-only; its SQLite log on a host folder."""
    name = f"fraud-image-test-{secrets.token_hex(4)}"
    port = free_port()
    log = owned_by_image_user(folders / name)
    podman(
        env,
        *("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000"),
        *("-v", f"{store}:/data/store:ro", "-v", f"{log}:/tmp/fraud", image),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: answers(f"{url}/v2/health/ready"), timeout=90, what="ready")
        except TimeoutError:
            pytest.fail(podman(env, "logs", name))
        yield name
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=env, capture_output=True)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def port_of(env: dict[str, str], name: str) -> str:
    return podman(env, "port", name, "5000/tcp").strip().splitlines()[0]


def test_the_image_serves_a_real_row_as_its_non_root_user(
    env: dict[str, str], service: str, real_row: dict[str, object]
) -> None:
    url = f"http://{port_of(env, service)}"
    assert requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    answer = requests.post(f"{url}/predict", json=real_row, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["transaction_id"] == "real-0"
    # The model trained inside the image carries its cover: the image explains from ONNX.
    explained = requests.post(f"{url}/predict?explain=true", json=real_row, timeout=5).json()
    assert [f["feature"] for f in explained["explanation"]["top_features"]]
    assert podman(env, "exec", service, "id", "-u").strip() == str(USER)
    users = podman(env, "top", service, "huser").split()[1:]
    assert len(users) >= 3, "the gunicorn master and its workers"
    assert set(users) == {str(USER)}
    podman(env, "healthcheck", "run", service)  # exits 0 only when healthy


def test_sigterm_under_load_exits_0_in_time_with_every_answer_logged(
    env: dict[str, str], service: str, real_row: dict[str, object], folders: Path
) -> None:
    url = f"http://{port_of(env, service)}"
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with requests.Session() as session:
            for _ in range(5_000):  # bounded, even if the stop never came
                if stop.is_set():
                    return
                try:
                    status = session.post(f"{url}/predict", json=real_row, timeout=10).status_code
                except requests.RequestException:
                    return  # the service stopped listening
                with lock:
                    statuses[status] += 1

    clients = [threading.Thread(target=load) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: statuses[200] >= 200, timeout=60, what="200 answers under load")
        podman(env, "kill", "--signal", "TERM", service)
        exit_code = podman(env, "wait", service, timeout=GRACEFUL_TIMEOUT + 10).strip()
    finally:
        stop.set()
        for client in clients:
            client.join()
    logs = podman(env, "logs", service)
    assert exit_code == "0", logs
    assert "SIGABRT" not in logs and "terminate called" not in logs, logs
    assert set(statuses) == {200}, statuses
    with sqlite3.connect(folders / service / "predictions.db") as db:
        (rows,) = db.execute("SELECT count(*) FROM predictions").fetchone()
    assert rows == statuses[200]


def test_a_store_written_on_the_host_is_readable_by_the_images_user(
    env: dict[str, str], image: str, folders: Path
) -> None:
    """README: `docker run -v "$PWD/.fraud/store:/data/store:ro"` after `make run` as yourself."""
    store = folders / "host-store"
    previous = os.umask(0o022)
    try:
        train_into(store, promote=True)
    finally:
        os.umask(previous)
    shown = podman(
        env,
        *("run", "--rm", "--network", "none", "--no-healthcheck"),
        *("-v", f"{store}:/data/store:ro", image, "fraud", "models", "show", "champion", "--json"),
    )
    assert json.loads(shown)["version"] == "1"
