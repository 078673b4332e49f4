"""HTTP request metrics as plain ASGI middleware: counts and time to the first byte, by route template.

The route template (``/v1/requests/{request_id}``), never the raw path, keeps the label bounded;
a path no route matched counts as ``unmatched``. Streams (server-sent events) are timed to their
first byte, not to their end. Each label set's child is looked up once, then kept: prometheus'
``labels()`` validates and locks on every call, a tenth of a busy route's metrics cost.
"""

import time
from functools import lru_cache

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_runtime.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

__all__ = ["HttpMetrics"]

# Health and metrics routes are scraped every few seconds; counting them would drown the API.
_UNCOUNTED = frozenset({"/healthz", "/readyz", "/metrics"})


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _UNCOUNTED:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before answering, the server sends a 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _timer(_route(scope), scope["method"]).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self._app(scope, receive, timed_send)
        finally:
            _counter(_route(scope), scope["method"], status).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


# Bounded as the labels are: route templates, the HTTP methods the server parses, status codes.
@lru_cache(maxsize=1024)
def _timer(route: str, method: str) -> Histogram:
    return HTTP_REQUEST_SECONDS.labels(route, method)


@lru_cache(maxsize=1024)
def _counter(route: str, method: str, status: int) -> Counter:
    return HTTP_REQUESTS.labels(route, method, str(status))
