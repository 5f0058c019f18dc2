"""Clients cannot grow /metrics: every label value comes from a closed set, so unknown request
methods and paths fold into `other` (checked against the live gunicorn service)."""

import random
from pathlib import Path

import requests

from serving_helpers import serve

# What gunicorn passes on as a method: 3 to 20 of uppercase letters, digits, token specials.
METHOD_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$%&'*+-.^_`|~"
PATHS = ("/v2/health/live", "/health", "/predict", "/v2/models/fraud-detector/infer", "/nowhere")


def _series(text: str) -> set[str]:
    """Every series of an exposition: the sample lines' names and labels."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


def _random_method(rng: random.Random) -> str:
    return "".join(rng.choices(METHOD_CHARS, k=rng.randint(3, 20)))


def test_two_thousand_random_methods_add_no_series(trained_store: Path, tmp_path: Path) -> None:
    rng = random.Random(25)
    with serve(trained_store, tmp_path, workers=1) as url, requests.Session() as session:
        # One of each kind first, so that the `other` series exist before counting.
        for path in PATHS:
            session.request(_random_method(rng), f"{url}{path}", timeout=10)
            session.request(_random_method(rng), f"{url}/random-{rng.random()}", timeout=10)
        before = session.get(f"{url}/metrics", timeout=10)
        statuses = set()
        for i in range(2000):
            path = PATHS[i % len(PATHS)] if i % 2 else f"/random-{rng.random()}"
            response = session.request(_random_method(rng), f"{url}{path}", timeout=10)
            statuses.add(response.status_code)
        after = session.get(f"{url}/metrics", timeout=10)
    assert statuses <= {404, 405}, statuses
    assert _series(after.text) == _series(before.text)
    assert len(after.content) < len(before.content) * 1.05
    assert 'method="other"' in after.text and 'url_rule="other"' in after.text
