"""`fraud serve`: the service under gunicorn."""

import os
import sys

import click


@click.command("serve")
@click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")
@click.option("--name", "model_name", help="Model name (default: FRAUD_MODEL_NAME).")
@click.option("--host", help="Address to bind (default: FRAUD_HOST, else 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: FRAUD_PORT, else 5000).")
@click.option("--workers", type=int, help="gunicorn workers (default: FRAUD_WORKERS, else 2).")
def serve_command(
    store_uri: str | None,
    model_name: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
) -> None:
    """Serve the champion under gunicorn; the same as `gunicorn -c gunicorn.conf.py app:app`."""
    given = {
        "FRAUD_MODEL_STORE": store_uri,
        "FRAUD_MODEL_NAME": model_name,
        "FRAUD_HOST": host,
        "FRAUD_PORT": port,
        "FRAUD_WORKERS": workers,
    }
    os.environ.update({k: str(v) for k, v in given.items() if v})
    config = "python:fraud_detection.gunicorn_conf"
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", config])
