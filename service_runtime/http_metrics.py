"""HTTP request metrics as plain ASGI middleware: counts and time to the first byte, by route template.

The route template (``/v1/requests/{request_id}``), never the raw path, keeps the label bounded;
a path no route matched counts as ``unmatched``. Streams (server-sent events) are timed to their
first byte, not to their end.
"""

import time

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
                HTTP_REQUEST_SECONDS.labels(_route(scope), scope["method"]).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self._app(scope, receive, timed_send)
        finally:
            HTTP_REQUESTS.labels(_route(scope), scope["method"], str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
