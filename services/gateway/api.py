"""The HTTP routes: translate a request into one use-case call (``PlanRequests``) and its result into a reply.

Every route authenticates first (a FastAPI dependency), before any path or body validation, so
an unauthenticated caller always gets 401 and nothing else.
"""

import contextlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi import Path as FastApiPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse

from contracts.plan import PLAN_WEEKS
from service_runtime.logs import bind_request_id
from services.gateway.auth import Principal
from services.gateway.context import GatewayContext, gateway_context, principal
from services.gateway.errors import ApiError, ErrorBody
from services.gateway.intake import (
    PlanRequestBody,
    SkeletonDecisionBody,
    WeekRequestBody,
    idempotency_key,
    read_decision,
    read_week_request,
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
    SkeletonReview,
    WeekAccepted,
    WeekHistory,
)

__all__ = ["GatewayContext", "authenticate", "router"]


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


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _not_found() -> ApiError:
    # The same reply whether the id is unknown or someone else's: never confirm it exists.
    return ApiError(404, "not_found", "Not found.")


async def _bind_request_id(request: Request) -> None:
    """A route about one request logs (and traces) under its id; a malformed id is left to validation."""
    raw = request.path_params.get("request_id")
    if raw is not None:
        with contextlib.suppress(ValueError):
            bind_request_id(UUID(raw))


# Async, so it runs in the request's own task and the binding holds for the route and its errors.
router = APIRouter(dependencies=[Depends(_bind_request_id)])

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
    responses={**_ENDED_RETRY, **_errors(401, 409, 413, 422, 429, 503)},
    openapi_extra=_PLAN_REQUEST_BODY,
)
@router.post(
    "/v1/plans",
    status_code=202,
    response_model=PlanAccepted,
    operation_id="request_plan",
    summary="Start generating a plan",
    responses={**_ENDED_RETRY, **_errors(401, 409, 413, 422, 429, 503)},
    openapi_extra=_PLAN_REQUEST_BODY,
)
async def request_plan(request: Request, caller: Caller, context: Context) -> Response:
    """Accept a plan request: store it as ``processing`` and publish ``plan.requested``.

    An ``Idempotency-Key`` header makes a retried POST return the first request's id, with its
    status now: 202 ``processing`` while it runs, 200 with ``completed``, ``failed`` or
    ``cancelled`` once it ended. A user over their active-plan cap or daily quota gets 429 with
    ``Retry-After``.
    """
    # Served by ``trigger.routes()``, which ``create_app`` puts in front of this declaration; both
    # run ``accepted_reply``.
    return await accepted_reply(request, caller, context)


_MAX_PAGE = 100


@router.get("/v1/requests", operation_id="list_requests", responses=_errors(401, 422, 503))
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


@router.get("/v1/requests/{request_id}", operation_id="get_request", responses=_errors(401, 404, 422, 503))
async def get_request(request_id: UUID, caller: Caller, context: Context) -> RequestSnapshot:
    """Where one of the caller's requests stands."""
    snapshot = await context.requests.get_request(caller.user_id, request_id)
    if snapshot is None:
        raise _not_found()
    return snapshot


@router.get("/v1/requests/{request_id}/weeks", operation_id="get_request_weeks", responses=_errors(401, 404, 422, 503))
async def get_request_weeks(request_id: UUID, caller: Caller, context: Context) -> RequestWeeks:
    """The weeks of one of the caller's requests shown so far, before its plan is complete."""
    snapshot = await context.requests.get_request(caller.user_id, request_id)
    if snapshot is None:
        raise _not_found()
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


@router.delete("/v1/requests/{request_id}", operation_id="cancel_request", responses=_errors(401, 404, 409, 422, 503))
@router.post(
    "/v1/requests/{request_id}/cancel",
    operation_id="cancel_request_post",
    responses=_errors(401, 404, 409, 422, 503),
)
async def cancel_request(request_id: UUID, caller: Caller, context: Context) -> RequestSnapshot:
    """Cancel one of the caller's requests: it ends ``cancelled`` and no more LLM spend goes into it.

    Cancelling twice is harmless; a request that already completed or failed answers 409."""
    snapshot = await context.requests.cancel_request(caller.user_id, request_id)
    if snapshot is None:
        raise _not_found()
    return snapshot


@router.get(
    "/v1/requests/{request_id}/skeleton", operation_id="get_request_skeleton", responses=_errors(401, 404, 422, 503)
)
async def get_request_skeleton(request_id: UUID, caller: Caller, context: Context) -> SkeletonReview:
    """The skeleton of one of the caller's requests shown before its weeks are written, if it asked
    for one (``reviewSkeletonSeconds``), with where its review stands."""
    state = await context.requests.get_review(caller.user_id, request_id)
    if state is None:
        raise _not_found()
    return SkeletonReview(
        request_id=request_id,
        status=state.snapshot.status,
        stage=state.snapshot.stage,
        review_seconds=state.review_seconds,
        round=state.review_round,
        adjustments=list(state.adjustments),
        review_until=state.review_until,
        outline=state.outline,
    )


@router.post(
    "/v1/requests/{request_id}/skeleton",
    operation_id="decide_on_skeleton",
    responses=_errors(401, 404, 409, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SkeletonDecisionBody.model_json_schema()}},
        }
    },
)
async def decide_on_skeleton(request_id: UUID, request: Request, caller: Caller, context: Context) -> RequestSnapshot:
    """Confirm the skeleton the request is ``waiting`` with (its weeks are written against it), or
    adjust it in words (it is written again and shown again). 409 ``not_waiting`` otherwise."""
    body = await read_decision(request)
    snapshot = await context.requests.review_skeleton(
        caller.user_id, request_id, decision=body.decision, instruction=body.instruction
    )
    if snapshot is None:
        raise _not_found()
    return snapshot


@router.get(
    "/v1/requests/{request_id}/events",
    operation_id="stream_request_events",
    response_class=EventSourceResponse,
    responses={
        **_errors(401, 404, 422, 503),
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
        raise _not_found()

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


_WEEK_REQUEST_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": WeekRequestBody.model_json_schema(by_alias=True)}},
    }
}

PlanWeek = Annotated[int, FastApiPath(ge=1, le=PLAN_WEEKS, description="The week's number, 1-8.")]


@router.post(
    "/v1/plans/{plan_id}/weeks/{week}/regenerate",
    status_code=202,
    response_model=WeekAccepted,
    operation_id="regenerate_week",
    summary="Write one week of a plan again",
    responses={
        200: {"model": WeekAccepted, "description": "An `Idempotency-Key` retry of a request that already ended."},
        **_errors(401, 404, 409, 413, 422, 429, 503),
    },
    openapi_extra=_WEEK_REQUEST_BODY,
)
async def regenerate_week(
    plan_id: UUID, week: PlanWeek, request: Request, caller: Caller, context: Context
) -> Response:
    """Write one week of the caller's completed plan again, optionally as the user asks
    (``instruction``), against the plan's skeleton; checked like any week, then swapped in at once.

    Answers like a plan request: follow ``request_id`` (``GET /v1/requests/{id}``, its events); once
    ``completed`` the plan has the new week, and ``GET /v1/plans/{plan_id}/weeks/{week}`` lists
    every version. Counted by the same caps, quota and budgets; one at a time per plan (409)."""
    key = idempotency_key(request)
    body = await read_week_request(request)
    accepted = await context.requests.regenerate_week(
        user_id=caller.user_id, plan_id=plan_id, week=week, instruction=body.instruction, idempotency_key=key
    )
    if accepted is None:
        raise _not_found()
    reply = PlanAccepted.of(accepted.request_id, accepted.status)
    view = WeekAccepted(**reply.model_dump(), plan_id=plan_id, week=week)
    return JSONResponse(view.model_dump(mode="json"), status_code=202 if accepted.status == "processing" else 200)


@router.get("/v1/plans/{plan_id}/weeks/{week}", operation_id="get_plan_week", responses=_errors(401, 404, 422, 503))
async def get_plan_week(plan_id: UUID, week: PlanWeek, caller: Caller, context: Context) -> WeekHistory:
    """Every version of one week of the caller's completed plan, oldest first."""
    history = await context.requests.week_history(caller.user_id, plan_id, week)
    if history is None:
        raise _not_found()
    return history


@router.get("/v1/plans/{plan_id}", responses=_errors(401, 404, 422, 503))
async def get_plan(plan_id: UUID, caller: Caller, context: Context) -> PlanView:
    """One of the caller's completed plans, weeks to days to entries with each exercise's profile."""
    plan = await context.requests.get_plan(caller.user_id, plan_id)
    if plan is None:
        raise _not_found()
    return plan
