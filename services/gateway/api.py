"""The HTTP routes: translate a request into one use-case call (``PlanRequests``) and its result into a reply.

Every route authenticates first (a FastAPI dependency), before any path or body validation, so
an unauthenticated caller always gets 401 and nothing else.
"""

import contextlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse

from service_runtime.logs import bind_request_id
from services.gateway.auth import Principal
from services.gateway.context import GatewayContext, gateway_context, principal
from services.gateway.errors import ApiError, ErrorBody
from services.gateway.intake import (
    PlanRequestBody,
)
from services.gateway.live import (
    LAST_EVENT_ID_PATTERN,
    InvalidLastEventId,
    parse_last_event_id,
    provisional_weeks,
    status_events,
)
from services.gateway.trigger import accepted_reply
from services.gateway.views import (
    PlanAccepted,
    PlanView,
    RequestPage,
    RequestSnapshot,
    RequestWeeks,
    ShownWeek,
)

__all__ = [
    "Caller",
    "Context",
    "GatewayContext",
    "authenticate",
    "bind_path_request_id",
    "error_responses",
    "not_found",
    "router",
]


Context = Annotated[GatewayContext, Depends(gateway_context)]

# How long a read of the weeks shown so far waits on the progress stream for its next notice.
_WEEKS_READ_SECONDS = 1.0

_bearer = HTTPBearer(auto_error=False, description="A Supabase access token.")


async def authenticate(
    context: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller's principal, or 401 with ``WWW-Authenticate: Bearer``."""
    return await principal(context, credentials.credentials if credentials is not None else None)


Caller = Annotated[Principal, Depends(authenticate)]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def not_found() -> ApiError:
    # The same reply whether the id is unknown or someone else's: never confirm it exists.
    return ApiError(404, "not_found", "Not found.")


async def bind_path_request_id(request: Request) -> None:
    """A route about one request logs (and traces) under its id; a malformed id is left to validation."""
    raw = request.path_params.get("request_id")
    if raw is not None:
        with contextlib.suppress(ValueError):
            bind_request_id(UUID(raw))


# Async, so it runs in the request's own task and the binding holds for the route and its errors.
router = APIRouter(dependencies=[Depends(bind_path_request_id)])

_PLAN_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PlanRequestBody.model_json_schema(by_alias=True)}},
    }
}


_ENDED_RETRY: dict[int | str, dict[str, Any]] = {
    200: {"model": PlanAccepted, "description": "An `Idempotency-Key` retry of a request that already ended."}
}


@router.post(
    "/functions/v1/trigger-workout-plan",
    status_code=202,
    response_model=PlanAccepted,
    operation_id="trigger_workout_plan",
    summary="Start generating a plan (the original edge function's path)",
    responses={**_ENDED_RETRY, **error_responses(401, 409, 413, 422, 429, 503)},
    openapi_extra=_PLAN_REQUEST_BODY,
)
@router.post(
    "/v1/plans",
    status_code=202,
    response_model=PlanAccepted,
    operation_id="request_plan",
    summary="Start generating a plan",
    responses={**_ENDED_RETRY, **error_responses(401, 409, 413, 422, 429, 503)},
    openapi_extra=_PLAN_REQUEST_BODY,
)
async def request_plan(request: Request, caller: Caller, context: Context) -> Response:
    """Accept a plan request: store it as ``processing`` and publish ``plan.requested``.

    An ``Idempotency-Key`` header makes a retried POST return the first request's id, with its
    status now: 202 ``processing`` while it runs, 200 with ``completed``, ``failed`` or
    ``cancelled`` once it ended. A user over their active-plan cap or daily quota gets 429 with
    ``Retry-After``.
    """
    # Served by ``trigger.AcceptFront``, which ``create_app`` puts in front of the app; both
    # run ``accepted_reply``.
    return await accepted_reply(request, caller, context)


_MAX_PAGE = 100


@router.get("/v1/requests", operation_id="list_requests", responses=error_responses(401, 422, 503))
async def list_requests(
    caller: Caller,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE, description="Page size.")] = 20,
    cursor: Annotated[
        UUID | None, Query(description="The previous page's `next_cursor`: the page starts after that request.")
    ] = None,
) -> RequestPage:
    """The caller's own requests, newest first."""
    items = await context.requests.list_requests(caller.user_id, limit=limit, after=cursor)
    next_cursor = items[-1].request_id if len(items) == limit else None
    return RequestPage(items=items, next_cursor=next_cursor)


@router.get("/v1/requests/{request_id}", operation_id="get_request", responses=error_responses(401, 404, 422, 503))
async def get_request(request_id: UUID, caller: Caller, context: Context) -> RequestSnapshot:
    """Where one of the caller's requests stands."""
    snapshot = await context.requests.get_request(caller.user_id, request_id)
    if snapshot is None:
        raise not_found()
    return snapshot


@router.get(
    "/v1/requests/{request_id}/weeks", operation_id="get_request_weeks", responses=error_responses(401, 404, 422, 503)
)
async def get_request_weeks(request_id: UUID, caller: Caller, context: Context) -> RequestWeeks:
    """The weeks of one of the caller's requests shown so far, before its plan is complete."""
    snapshot = await context.requests.get_request(caller.user_id, request_id)
    if snapshot is None:
        raise not_found()
    weeks: list[ShownWeek] = []
    if snapshot.status == "processing":
        for notice in await provisional_weeks(context.feed, request_id, wait_seconds=_WEEKS_READ_SECONDS):
            assert notice.week is not None
            weeks.append(
                ShownWeek(
                    week=notice.week.week,
                    version=notice.week_version or 1,
                    theme=notice.week.theme,
                    days=list(notice.week.days),
                    shown_at=notice.occurred_at,
                )
            )
    return RequestWeeks(
        request_id=request_id,
        status=snapshot.status,
        plan_id=snapshot.plan_id,
        provisional=snapshot.status == "processing",
        weeks=weeks,
    )


@router.delete(
    "/v1/requests/{request_id}", operation_id="cancel_request", responses=error_responses(401, 404, 409, 422, 503)
)
@router.post(
    "/v1/requests/{request_id}/cancel",
    operation_id="cancel_request_post",
    responses=error_responses(401, 404, 409, 422, 503),
)
async def cancel_request(request_id: UUID, caller: Caller, context: Context) -> RequestSnapshot:
    """Cancel one of the caller's requests: it ends ``cancelled`` and no more LLM spend goes into it.

    Cancelling twice is harmless; a request that already completed or failed answers 409."""
    snapshot = await context.requests.cancel_request(caller.user_id, request_id)
    if snapshot is None:
        raise not_found()
    return snapshot


@router.get(
    "/v1/requests/{request_id}/events",
    operation_id="stream_request_events",
    response_class=EventSourceResponse,
    responses={
        **error_responses(401, 404, 422, 503),
        200: {
            "description": "Server-sent events: `snapshot` (a RequestSnapshot), then `week` (a PlanProgress"
            " carrying a week, provisional until the request completes; each week version once) and"
            " `progress` (a PlanProgress) until a terminal status. Resume with `Last-Event-ID`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def stream_request_events(
    request_id: UUID,
    caller: Caller,
    context: Context,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=LAST_EVENT_ID_PATTERN, description="The last event id seen.")
    ] = None,
) -> EventSourceResponse:
    """Live status of one of the caller's requests, as server-sent events."""
    try:
        resume_point = parse_last_event_id(last_event_id)
    except InvalidLastEventId as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("header", "Last-Event-ID"), "msg": str(exc), "input": None}]
        ) from exc
    # Checked before the stream opens, so a stranger's id is a plain 404 and subscribes to nothing.
    if await context.requests.get_request(caller.user_id, request_id) is None:
        raise not_found()

    async def snapshot() -> RequestSnapshot | None:
        return await context.requests.get_request(caller.user_id, request_id)

    events = status_events(
        context.feed,
        snapshot,
        request_id,
        last_event_id=resume_point,
        recheck_seconds=context.stream_recheck_seconds,
    )
    return EventSourceResponse(events, ping=int(max(1, context.stream_ping_seconds)))


@router.get("/v1/plans/{plan_id}", responses=error_responses(401, 404, 422, 503))
async def get_plan(plan_id: UUID, caller: Caller, context: Context) -> PlanView:
    """One of the caller's completed plans, weeks to days to entries with each exercise's profile."""
    plan = await context.requests.get_plan(caller.user_id, plan_id)
    if plan is None:
        raise not_found()
    return plan
