"""The service's gunicorn worker: gthread, except that a request gets a thread only once it
has arrived, and gunicorn's own error answers are JSON.

gthread hands a connection to a thread as soon as its first bytes arrive; the thread then
blocks reading the rest of the head. A client that sends `POST /predict HTTP/1.1\\r\\nX-Slow: `
and stalls holds that thread, so 16 such sockets took every thread of two workers and the
liveness probe timed out. Here the worker's event loop (the selector gthread already runs
for kept-alive connections) reads each request, head and a Content-Length body up to
FRAUD_MAX_BODY_BYTES, as nginx buffers requests: a stalled client costs a socket and its
bytes so far, never a thread. A head must be complete within READ_TIMEOUT (then 408); a
body may pause at most READ_TIMEOUT between reads (then 400). A chunked body, or one after
`Expect: 100-continue`, is read by the thread as before, under pre_request's READ_TIMEOUT.

A small scoring request (a POST to a route the endpoint table marks `inline`: /predict and
V2 infer; a body of at most INLINE_BODY bytes) is answered by the event loop itself once it
is in, not handed to a thread: it is CPU-bound and holds the GIL, so a thread adds no
concurrency, only two hand-offs (the pool's queue, then the loop's wake-up pipe) and the
contention for the GIL each time one lets it go (onnxruntime does, on every call). Its answer
(a few KB at most) fits the socket's send buffer, so writing it never waits on the client: a
client with unsent answers still queued (one that stopped reading), or with a next request
already behind this one, gets a thread.

gunicorn answers a malformed request itself (400, 414, 431, 501...) before the application
sees it, with an HTML page written by `gunicorn.util.write_error`; each worker replaces that
function with one writing the service's JSON error body (the Open Inference Protocol's
`{"error": message}` under /v2). TLS (gunicorn's certfile) and HTTP/2 cleartext connections
are served by plain gthread: their bytes cannot be read before the handshake or preface.

Imported by the gunicorn master too (worker_class), so it imports gunicorn and the settings
only, never the application.
"""

import contextlib
import fcntl
import json
import selectors
import termios
import threading
import time
from array import array
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from .config import get_settings

# The longest a request's head may take to arrive, and the longest pause between two reads
# of a body (pre_request applies the same bound to what a thread reads).
READ_TIMEOUT = 10.0
_RECV = 64 * 1024
_HEAD_END = b"\r\n\r\n"
# Enough of a request line to tell a /v2 target (gunicorn refuses longer lines anyway).
_LINE = 8192
# A scoring body up to this size (a few transactions) is answered by the event loop.
INLINE_BODY = 4096
# SIOCOUTQ on a Linux socket: the bytes of its send queue.
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
# Error codes of gunicorn's own answers, in the service's closed set.
_CODES = {
    400: "invalid_request",
    403: "forbidden",
    408: "timeout",
    413: "too_large",
    414: "too_large",
    417: "expectation_failed",
    431: "too_large",
    500: "internal",
    501: "not_implemented",
}
_target = threading.local()


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering in the service's JSON error format."""
    message = mesg or reason
    if getattr(_target, "v2", False):
        error: dict[str, Any] = {"error": message}
    else:
        code = _CODES.get(status_int, f"http_{status_int // 100}xx")
        error = {"error": {"code": code, "message": message, "field": None}}
    body = json.dumps(error).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


@dataclass
class _Arriving:
    """A request on its way in: the bytes so far, and when the worker stops waiting."""

    conn: Any
    data: bytearray
    deadline: float
    # Head and body bytes the thread needs; None until the head is in.
    needed: int | None = None
    # The first line names a /v2 path: gunicorn's own answer then takes the V2 shape.
    v2: bool = field(default=False)
    # A small scoring request: the event loop answers it (module docstring).
    inline: bool = False


class BufferingWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gthread whose event loop reads each request in before a thread takes it."""

    def init_process(self) -> None:
        """Answer gunicorn's own errors in JSON, then run as gthread does."""
        util.write_error = write_json_error
        self.max_body = get_settings().max_body_bytes
        # Past this many bytes without a complete head, gunicorn's parser refuses the
        # request (414 or 431) without reading more: hand it over to say so.
        limit_line = self.cfg.limit_request_line or 8190
        fields = self.cfg.limit_request_fields * (self.cfg.limit_request_field_size + 2)
        self.max_head = int(limit_line + fields + 4)
        self.arriving: dict[Any, _Arriving] = {}
        # TLS and HTTP/2 cleartext read their own bytes first: plain gthread serves them.
        self.buffering = not self.cfg.is_ssl and self.cfg.http2_cleartext == "off"
        super().init_process()

    def load_wsgi(self) -> None:
        """Load the application, then the inline routes from its endpoint table."""
        # Here: not at import (the master never loads the application's modules), and not
        # before init_process has set the worker's signal handlers. Until then a SIGTERM runs
        # the master's handler, copied by fork, and is lost: the worker served on until the
        # master killed it, graceful_timeout later. The application's imports take a second.
        super().load_wsgi()
        from .serving.endpoints import inline_paths

        self.inline_paths = inline_paths()

    def enqueue_req(self, conn: Any) -> None:
        """Every path to a thread (a new connection, a kept-alive one that became readable,
        bytes read ahead) comes here: wait in the event loop until the request is in."""
        if not self.buffering:
            super().enqueue_req(conn)
            return
        ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)
        self._advance(_Arriving(conn, bytearray(ahead), time.monotonic() + READ_TIMEOUT))

    def handle(self, conn: Any) -> Any:
        """Run in a thread: note the request's API surface for a gunicorn error answer."""
        _target.v2 = getattr(conn, "fraud_v2", False)
        return super().handle(conn)

    def murder_pending(self) -> None:
        """Also end requests that stopped arriving: 408 for a head, 400 for a body."""
        super().murder_pending()
        now = time.monotonic()
        for arriving in [a for a in self.arriving.values() if a.deadline <= now]:
            _target.v2 = arriving.v2
            if arriving.needed is None:
                status, reason = 408, "Request Timeout"
                message = f"the request head did not arrive within {READ_TIMEOUT:g} s"
            else:
                status, reason = 400, "Bad Request"
                message = f"the request body stalled for {READ_TIMEOUT:g} s"
            with contextlib.suppress(OSError):  # the client is gone: closing is all left
                write_json_error(arriving.conn.sock, status, reason, message)
            self._drop(arriving)

    def _advance(self, arriving: _Arriving, *_: Any) -> None:
        """Read what has arrived (the socket is often readable already: no trip through the
        loop, each of which waits for the GIL); hand the request over once it is in, else
        wait for more in the loop."""
        sock = arriving.conn.sock
        while not self._ready(arriving):
            try:
                data = sock.recv(_RECV)
            except BlockingIOError:
                if arriving.conn not in self.arriving:
                    self.arriving[arriving.conn] = arriving
                    wake = partial(self._advance, arriving)
                    self.poller.register(sock, selectors.EVENT_READ, wake)
                return
            except OSError:
                data = b""
            if not data:
                if arriving.needed is not None:
                    # The client ended its side inside the body: the body is shorter than
                    # its Content-Length, which is a 400, never a silent close.
                    _target.v2 = arriving.v2
                    with contextlib.suppress(OSError):
                        write_json_error(
                            sock, 400, "Bad Request", "the body is shorter than its Content-Length"
                        )
                self._drop(arriving)
                return
            arriving.data += data
            if arriving.needed is not None:
                arriving.deadline = time.monotonic() + READ_TIMEOUT
        if self.arriving.pop(arriving.conn, None) is not None:
            self.poller.unregister(sock)
        self._hand_over(arriving)

    def _ready(self, arriving: _Arriving) -> bool:
        """Whether the request is in (or gunicorn must refuse it): time for a thread."""
        if arriving.needed is None:
            method, path = _request_line(bytes(arriving.data[:_LINE]))
            arriving.v2 = path == b"/v2" or path.startswith(b"/v2/")
            end = arriving.data.find(_HEAD_END)
            if end < 0:
                return len(arriving.data) > self.max_head
            body = _body_length(bytes(arriving.data[:end]), self.max_body)
            if body is None:
                return True
            arriving.needed = end + len(_HEAD_END) + body
            arriving.inline = (
                method == b"POST"
                and body <= INLINE_BODY
                and self.inline_paths.fullmatch(path) is not None
            )
            arriving.deadline = time.monotonic() + READ_TIMEOUT
        return len(arriving.data) >= arriving.needed

    def _hand_over(self, arriving: _Arriving) -> None:
        conn = arriving.conn
        conn.init()  # the parser, on a blocking socket
        conn.parser.unreader.unread(bytes(arriving.data))
        conn.fraud_v2 = arriving.v2
        # Bytes past this request are the next one, pipelined: a thread serves them in turn.
        alone = len(arriving.data) == arriving.needed
        if arriving.inline and alone and unsent_bytes(conn.sock) == 0:
            answered: Future[Any] = Future()
            answered.set_result(self.handle(conn))  # handle() answers every error itself
            self.finish_request(conn, answered)
            return
        super().enqueue_req(conn)

    def _drop(self, arriving: _Arriving) -> None:
        conn = arriving.conn
        if self.arriving.pop(conn, None) is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):  # closed meanwhile
                self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()


def _body_length(head: bytes, limit: int) -> int | None:
    """Body bytes to read before a thread takes the request: 0 without a body, its
    Content-Length when valid and within `limit`; None when the thread must read it (chunked,
    100-continue) or gunicorn or the app must refuse it (a bad, repeated or too large
    Content-Length)."""
    lengths = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"transfer-encoding", b"expect"):
            return None
        if name == b"content-length":
            lengths.append(value.strip())
    if not lengths:
        return 0
    if len(lengths) > 1 or not lengths[0].isdigit() or len(lengths[0]) > 12:
        return None
    length = int(lengths[0])
    return length if length <= limit else None


def _request_line(start: bytes) -> tuple[bytes, bytes]:
    """The method and the path (no query) of the request line at the `start` of a request."""
    parts = start.lstrip(b"\r\n").split(b"\r\n", 1)[0].split(b" ")
    target = parts[1] if len(parts) > 1 else b""
    return parts[0], target.split(b"?", 1)[0]


def unsent_bytes(sock: Any) -> int:
    """Bytes written to the socket that the client has not received yet (SIOCOUTQ); -1 where
    the system cannot tell, and the request then gets a thread."""
    if _OUTQ is None:
        return -1
    queued = array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), _OUTQ, queued)
    except OSError:
        return -1
    return queued[0]
