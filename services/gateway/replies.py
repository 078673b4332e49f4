"""What every reply says about itself: ``Cache-Control: no-store``, and the methods a path serves.

Replies carry a user's requests and plans (and errors about them): no shared cache or browser
history may keep them. ``Allow`` on a 405, and the answer to a plain ``OPTIONS``, list every
method of every route on the path, not only those of the first route Starlette matched
(``/v1/requests/{id}`` is a GET route and a DELETE route).
"""

from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["NoStore", "allowed_methods", "declared_routes"]


class NoStore:
    """ASGI middleware: every HTTP reply without a ``Cache-Control`` of its own gets ``no-store``."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, no_store)


def allowed_methods(scope: Scope, routes: Iterable[BaseRoute]) -> list[str]:
    """Every method some route serves at ``scope``'s path, plus ``OPTIONS``; empty when none does."""
    methods: set[str] = set()
    for route in declared_routes(routes):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods | {"OPTIONS"}) if methods else []


def declared_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too: FastAPI keeps an included router as one route
    holding the router (``original_router``)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from declared_routes(included.routes)
        else:
            yield route
