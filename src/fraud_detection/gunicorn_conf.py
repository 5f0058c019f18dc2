"""gunicorn settings for the service, from the environment (`fraud serve` and the image).

It reads only the settings: importing the application here would load Flask, onnxruntime and
the metric files into the master, where onnxruntime's threads abort on SIGTERM and the metric
files would be created before `on_starting` makes their folder.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

from fraud_detection.config import get_settings
from fraud_detection.gunicorn_worker import READ_TIMEOUT

_settings = get_settings()
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
wsgi_app = "fraud_detection.serving.wsgi:app"
# Scoring is CPU-bound (onnxruntime with one intra-op thread) and holds the GIL, so extra
# threads add no throughput. Slow clients no longer need them: the worker (gthread with its
# event loop reading each request in first, gunicorn_worker.py) gives a request a thread only
# once its head and Content-Length body have arrived, so a stalled head or body costs a
# socket, not a thread, and a small scoring request is answered by that loop itself. The 8
# threads serve the other routes (which may wait on the database or S3) and what a thread still
# reads itself (a chunked body, one after Expect: 100-continue), bounded by READ_TIMEOUT. A
# proxy (deploy/nginx) still buffers in front, and bounds how many sockets a client may hold.
worker_class = "fraud_detection.gunicorn_worker.BufferingWorker"
threads = 8
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then to bound memory, staggered so they never restart together.
max_requests = 100_000
max_requests_jitter = 10_000
# Each worker loads its own model and runs its own reload thread: threads do not survive fork.
preload_app = False
# The runtime control socket is one fixed path per user: several services (or tests) on one
# host would take it from each other, and nothing here uses it.
control_socket_disable = True
accesslog = "-" if _settings.access_log else None
errorlog = "-"


def on_starting(server: Any) -> None:
    """Give workers an empty multiprocess metrics folder (stale files would double-count)."""
    folder = _settings.prometheus_multiproc_dir or tempfile.mkdtemp(prefix="fraud-prom-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    for stale in Path(folder).glob("*.db"):
        stale.unlink()


def pre_request(worker: Any, req: Any) -> None:
    """Bound every read of a body a thread reads itself: a stalled client loses its request,
    not a worker thread."""
    # The worker hands the app a blocking socket with no timeout; werkzeug turns the timeout
    # of a read into a 400 (ClientDisconnected).
    req.unreader.sock.settimeout(READ_TIMEOUT)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the aggregate."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
