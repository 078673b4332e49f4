"""The accept routes' fast lane: the app's busiest path, without FastAPI's route layer or its stack.

``POST /functions/v1/trigger-workout-plan`` and ``POST /v1/plans`` are declared in ``api.py``
(the OpenAPI document describes them from there, and other methods on those paths get the app's
405). ``AcceptFront``, the outermost of the app's own middleware, takes a POST to either path
straight to ``accept`` through only the layers every reply needs (no-store, metrics, CORS when
configured, the 500 guard), built once from the same list as the app's; everything else goes on
into the app. So an accept skips Starlette's error middleware, FastAPI's exception telemetry and
exit stack, the exception middleware, the router and the route's own wrappers, and FastAPI's
dependency solving and response-model serialisation (docs/benchmarks.md has what each saved).
Both lanes run ``accepted_reply``, so the behaviour is one: authenticate first
(``context.principal``: the same 401s), then the ``Idempotency-Key`` header, the capped body, one
use-case call, ``PlanAccepted`` as JSON. An exception raised here goes to the handler the app
registered for its type, so error bodies are the same too; one without a handler reaches the 500
guard, as it would in the app.
"""

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi.security.utils import get_authorization_scheme_param
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service_runtime.metrics import PLANS_REFUSED
from services.gateway.auth import Principal
from services.gateway.context import GatewayContext, gateway_context, principal
from services.gateway.errors import ApiError
from services.gateway.intake import idempotency_key, read_plan_request
from services.gateway.replies import declared_routes
from services.gateway.views import PlanAccepted

__all__ = ["ACCEPT_PATHS", "AcceptFront", "accept", "accepted_reply"]

ACCEPT_PATHS = ("/functions/v1/trigger-workout-plan", "/v1/plans")
# An accept shed for capacity may come back after this long: the queue it avoided drains in less.
OVERLOADED_RETRY_AFTER_SECONDS = 1


class AcceptFront:
    """ASGI middleware: a POST to an accept path is served by ``accept`` through ``layers`` only.

    ``layers`` (outermost first) are the app's own middleware, the ones the app adds behind this;
    ``routes`` are the app's routes, so the request carries the declared route (the metrics label
    it by its template, as in the app); ``exception_handlers`` are the app's, looked up by the
    exception's type as Starlette does. The app's catch-all (``Exception``) is left to the 500
    guard among ``layers``, which answers every other exception in the app too.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        layers: Sequence[Middleware],
        routes: Sequence[BaseRoute],
        exception_handlers: Mapping[Any, Any],
    ) -> None:
        self._app = app
        self._handlers = exception_handlers
        self._routes = {path: _declared(routes, path) for path in ACCEPT_PATHS}
        lane: ASGIApp = self._serve
        for cls, args, kwargs in reversed(layers):
            lane = cls(lane, *args, **kwargs)
        self._lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._routes.get(_route_path(scope))
            if route is not None:
                scope["route"] = route
                await self._lane(scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await accept(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Any:
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            handler = self._handlers.get(cls)
            if handler is not None:
                return handler
        return None


def _declared(routes: Sequence[BaseRoute], path: str) -> BaseRoute:
    for route in declared_routes(routes):
        if getattr(route, "path", None) == path and "POST" in (getattr(route, "methods", None) or ()):
            return route
    raise LookupError(f"the app declares no POST {path}")


def _route_path(scope: Scope) -> str:
    """The path the app's router would match: without the ``root_path`` a proxy mounted us under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def accept(request: Request) -> Response:
    context = await gateway_context(request)
    # Past its limit the process sheds at once, before any work: a queue behind a saturated CPU
    # would make every accept slow (latency grew without bound past ~600/s on two cores).
    if not context.accepts.enter():
        PLANS_REFUSED.labels("overloaded").inc()
        raise ApiError(
            503,
            "unavailable",
            "The gateway is at capacity; nothing was changed. Try again shortly.",
            headers={"Retry-After": str(OVERLOADED_RETRY_AFTER_SECONDS)},
        )
    try:
        # Read as FastAPI's HTTPBearer(auto_error=False) reads it: anything but "Bearer <token>" is none.
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        bearer = token if scheme.lower() == "bearer" and token else None
        return await accepted_reply(request, await principal(context, bearer), context)
    finally:
        context.accepts.leave()


async def accepted_reply(request: Request, caller: Principal, context: GatewayContext) -> Response:
    """Accept the caller's plan request: 202 ``processing``, or 200 with the status an
    ``Idempotency-Key`` retry finds its request in once it ended."""
    key = idempotency_key(request)
    body = await read_plan_request(request, context.limits)
    accepted = await context.requests.accept_request(
        user_id=caller.user_id,
        user_profile=body.user_profile,
        system_prompt=body.system_prompt,
        idempotency_key=key,
        review_seconds=body.review_skeleton_seconds,
        lane=caller.lane,
    )
    return Response(
        orjson.dumps(PlanAccepted.of(accepted.request_id, accepted.status).model_dump(mode="json")),
        status_code=202 if accepted.status == "processing" else 200,
        media_type="application/json",
    )
