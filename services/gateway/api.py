"""The HTTP routes: translate a request into one store call and its result into a reply.

Every route authenticates first (a FastAPI dependency), before any path or body validation, so
an unauthenticated caller always gets 401 and nothing else.
"""

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth import InvalidToken, Principal, TokenVerifier
from services.gateway.errors import ApiError, ErrorBody
from services.gateway.intake import Limits, PlanRequestBody, idempotency_key, read_plan_request
from services.gateway.store import RequestStore
from services.gateway.views import PlanAccepted, PlanView, RequestSnapshot

__all__ = ["GatewayContext", "authenticate", "router"]


@dataclass(frozen=True)
class GatewayContext:
    """What the routes need, built by ``create_app`` and set on ``app.state.gateway`` at startup."""

    store: RequestStore
    verifier: TokenVerifier
    limits: Limits


def gateway_context(request: Request) -> GatewayContext:
    context = getattr(request.app.state, "gateway", None)
    if not isinstance(context, GatewayContext):
        raise RuntimeError("the gateway is not started: enter the app's lifespan first")
    return context


Context = Annotated[GatewayContext, Depends(gateway_context)]

_bearer = HTTPBearer(auto_error=False, description="A Supabase access token.")


async def authenticate(
    context: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller's principal, or 401 with ``WWW-Authenticate: Bearer``."""
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "A bearer access token is required.", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return await context.verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise ApiError(
            401,
            "unauthorized",
            f"The access token is not valid: {exc.reason}.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc


Caller = Annotated[Principal, Depends(authenticate)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _not_found() -> ApiError:
    # The same reply whether the id is unknown or someone else's: never confirm it exists.
    return ApiError(404, "not_found", "Not found.")


router = APIRouter()

_PLAN_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PlanRequestBody.model_json_schema(by_alias=True)}},
    }
}


@router.post(
    "/functions/v1/trigger-workout-plan",
    status_code=202,
    operation_id="trigger_workout_plan",
    summary="Start generating a plan (the original edge function's path)",
    responses=_errors(401, 409, 413, 422, 503),
    openapi_extra=_PLAN_REQUEST_BODY,
)
@router.post(
    "/v1/plans",
    status_code=202,
    operation_id="request_plan",
    summary="Start generating a plan",
    responses=_errors(401, 409, 413, 422, 503),
    openapi_extra=_PLAN_REQUEST_BODY,
)
async def request_plan(request: Request, caller: Caller, context: Context) -> PlanAccepted:
    """Accept a plan request: store it as ``processing`` and publish ``plan.requested``.

    An ``Idempotency-Key`` header makes a retried POST return the first request's id.
    """
    key = idempotency_key(request)
    body = await read_plan_request(request, context.limits)
    request_id = await context.store.create_request(
        user_id=caller.user_id,
        user_profile=body.user_profile,
        system_prompt=body.system_prompt,
        idempotency_key=key,
    )
    return PlanAccepted(request_id=request_id)


@router.get("/v1/requests/{request_id}", responses=_errors(401, 404, 422, 503))
async def get_request(request_id: UUID, caller: Caller, context: Context) -> RequestSnapshot:
    """Where one of the caller's requests stands."""
    snapshot = await context.store.get_request(caller.user_id, request_id)
    if snapshot is None:
        raise _not_found()
    return snapshot


@router.get("/v1/plans/{plan_id}", responses=_errors(401, 404, 422, 503))
async def get_plan(plan_id: UUID, caller: Caller, context: Context) -> PlanView:
    """One of the caller's completed plans, weeks to days to entries with each exercise's profile."""
    plan = await context.store.get_plan(caller.user_id, plan_id)
    if plan is None:
        raise _not_found()
    return plan
