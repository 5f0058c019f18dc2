"""`POST /predict`'s common request answered in plain WSGI, in front of Flask.

Flask's request context, hooks and werkzeug's request and response objects cost a scoring
request about as much worker CPU as scoring it (benchmarks/RESULTS.md, "Serving speed:
profile", its fifth pass). The common request needs none of them: a JSON body with its
Content-Length, no query string, a bearer token when one is required. This middleware answers
that one with the blueprint's own steps (`codecs.predict_request`, `DataPlane.predict`,
`codecs.predict_answer`) and, when a step refuses it, with Flask's own error answer
(`http_errors.error_response`), so both answers are the same bytes and each body is decoded
once. Every other request goes to Flask untouched; one whose body cannot be read whole goes
with what was read, and Flask answers it as without this path.
"""

import io
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.http.errors import ParseException

from ..errors import RequestError
from .auth import bearer_token, token_allowed
from .codecs import predict_answer, predict_request
from .dataplane import DataPlane
from .endpoints import ENDPOINTS
from .http_errors import UNEXPECTED, Refusal, error_response, refusal

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ENDPOINT = ENDPOINTS["predict.predict"]
_PATHS = frozenset(ENDPOINT.paths)
_JSON = "Content-Type", "application/json"


class _Unreadable(io.RawIOBase):
    """A body whose read failed: Flask reads it again and answers the failure (400)."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self._error


class PredictFastPath:
    """WSGI middleware: the common /predict request here, everything else to `flask`."""

    def __init__(self, flask: WSGIApp, plane: DataPlane, tokens: tuple[str, ...] | None) -> None:
        self.flask = flask
        self._plane = plane
        self._tokens = tokens
        self._max_body = plane.settings.max_body_bytes
        self._max_batch = plane.settings.max_batch

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self._takes(environ):
            return self.flask(environ, start_response)
        started = time.perf_counter()
        length = int(environ["CONTENT_LENGTH"])
        try:
            body = environ["wsgi.input"].read(length)
        except (ParseException, OSError) as exc:
            return self._to_flask(environ, start_response, _Unreadable(exc))
        if len(body) != length:  # cut short: Flask's read_body says so
            return self._to_flask(environ, start_response, io.BytesIO(body))
        try:
            request = predict_request(body, self._max_batch, None)
            prediction = self._plane.predict(
                request.x,
                request.ids,
                ENDPOINT.metric,
                started,
                request.explain,
                request.event_times,
            )
            answer = predict_answer(prediction, request.batch)
        except RequestError as exc:
            return self._refuse(refusal(exc), environ, start_response)
        except Exception:
            log.exception("unhandled error")
            return self._refuse(UNEXPECTED, environ, start_response)
        start_response("200 OK", [_JSON, ("Content-Length", str(len(answer)))])
        return [answer]

    @staticmethod
    def _refuse(error: Refusal, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Flask's answer to the error, counted as its handlers count it."""
        return error_response(error, ENDPOINT.metric, v2=False)(environ, start_response)

    def _to_flask(
        self, environ: dict[str, Any], start_response: Callable[..., Any], body: io.IOBase
    ) -> Any:
        """Flask answers the request, reading `body` in place of the one already read."""
        environ["wsgi.input"] = body
        return self.flask(environ, start_response)

    def _takes(self, environ: dict[str, Any]) -> bool:
        """A POST to /predict with a JSON body of a known, allowed length and no query; with
        the bearer token, when scoring requires one."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in _PATHS:
            return False
        length = environ.get("CONTENT_LENGTH") or ""
        # Checked before int(): a header of thousands of digits is Flask's to refuse.
        if not (length.isascii() and length.isdigit() and len(length) <= 12):
            return False
        if int(length) > self._max_body:
            return False
        if environ.get("QUERY_STRING") or "HTTP_TRANSFER_ENCODING" in environ:
            return False
        content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if content_type != "application/json":
            return False
        if self._tokens is None:
            return True
        given = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
        return token_allowed(given, self._tokens)
