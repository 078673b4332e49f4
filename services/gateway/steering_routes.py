"""The HTTP routes that steer a plan: the skeleton shown first (read it, decide on it) and a week
redone (ask for it, read its versions). Each translates a request into one ``PlanSteering`` call;
authentication comes first, as on every route (``api.authenticate``)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from contracts.plan import PLAN_WEEKS
from services.gateway.api import Caller, Context, bind_path_request_id, error_responses, not_found
from services.gateway.intake import (
    SkeletonDecisionBody,
    WeekRequestBody,
    idempotency_key,
    read_decision,
    read_week_request,
)
from services.gateway.views import RequestSnapshot, SkeletonReview, WeekAccepted, WeekHistory

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(bind_path_request_id)])


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` put in place of their references (the OpenAPI document has
    no ``$defs`` of its own for them to point into)."""
    defs = schema.pop("$defs", {})
    schema["oneOf"] = [defs[ref["$ref"].rsplit("/", 1)[1]] for ref in schema["oneOf"]]
    schema["discriminator"] = {"propertyName": schema["discriminator"]["propertyName"]}
    return schema


@router.get(
    "/v1/requests/{request_id}/skeleton",
    operation_id="get_request_skeleton",
    responses=error_responses(401, 404, 422, 503),
)
async def get_request_skeleton(request_id: UUID, caller: Caller, context: Context) -> SkeletonReview:
    """The skeleton of one of the caller's requests shown before its weeks are written, if it asked
    for one (``reviewSkeletonSeconds``), with where its review stands."""
    state = await context.steering.get_review(caller.user_id, request_id)
    if state is None:
        raise not_found()
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
    responses=error_responses(401, 404, 409, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(TypeAdapter(SkeletonDecisionBody).json_schema())}},
        }
    },
)
async def decide_on_skeleton(request_id: UUID, request: Request, caller: Caller, context: Context) -> RequestSnapshot:
    """Confirm the skeleton the request is ``waiting`` with (its weeks are written against it), or
    adjust it in words (it is written again and shown again). 409 ``not_waiting`` otherwise."""
    body = await read_decision(request)
    snapshot = await context.steering.review_skeleton(
        caller.user_id,
        request_id,
        decision=body.decision,
        instruction=getattr(body, "instruction", None),
        lane=caller.lane,
    )
    if snapshot is None:
        raise not_found()
    return snapshot


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
        **error_responses(401, 404, 409, 413, 422, 429, 503),
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
    accepted = await context.steering.regenerate_week(
        user_id=caller.user_id,
        plan_id=plan_id,
        week=week,
        instruction=body.instruction,
        idempotency_key=key,
        lane=caller.lane,
    )
    if accepted is None:
        raise not_found()
    view = WeekAccepted.of_week(accepted.request_id, accepted.status, plan_id, week)
    return JSONResponse(view.model_dump(mode="json"), status_code=202 if accepted.status == "processing" else 200)


@router.get(
    "/v1/plans/{plan_id}/weeks/{week}", operation_id="get_plan_week", responses=error_responses(401, 404, 422, 503)
)
async def get_plan_week(plan_id: UUID, week: PlanWeek, caller: Caller, context: Context) -> WeekHistory:
    """Every version of one week of the caller's completed plan, oldest first."""
    history = await context.steering.week_history(caller.user_id, plan_id, week)
    if history is None:
        raise not_found()
    return history
