"""The accept routes as plain Starlette endpoints: the app's busiest path, without FastAPI's route layer.

``POST /functions/v1/trigger-workout-plan`` and ``POST /v1/plans`` are declared in ``api.py``
(the OpenAPI document describes them from there) and served by ``routes()``, which ``create_app``
puts in front of the app's router: a request then reaches ``accept`` without FastAPI's
dependency solving or its response-model validation and serialisation, about a tenth of the
gateway's CPU per accept (docs/benchmarks.md). Both run ``accepted_reply``, so the behaviour is
one: authenticate first (``context.principal``: the same 401s), then the ``Idempotency-Key``
header, the capped body, one use-case call, ``PlanAccepted`` as JSON. Errors raised here are the
app's own exceptions and go through its exception handlers, so their bodies are the same too.
"""

import orjson
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from service_runtime.metrics import PLANS_REFUSED
from services.gateway.auth import Principal
from services.gateway.context import GatewayContext, gateway_context, principal
from services.gateway.errors import ApiError
from services.gateway.intake import idempotency_key, read_plan_request
from services.gateway.views import PlanAccepted

__all__ = ["ACCEPT_PATHS", "accept", "accepted_reply", "routes"]

ACCEPT_PATHS = ("/functions/v1/trigger-workout-plan", "/v1/plans")
# An accept shed for capacity may come back after this long: the queue it avoided drains in less.
OVERLOADED_RETRY_AFTER_SECONDS = 1


def routes() -> list[Route]:
    return [_NamedRoute(path, accept, methods=["POST"]) for path in ACCEPT_PATHS]


class _NamedRoute(Route):
    """A route that puts itself in the scope, as FastAPI's own routes do (FastAPI's router does not
    for a plain Starlette route): the HTTP metrics label requests by its path template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


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
