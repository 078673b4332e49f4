"""What every ``/v1`` route does first and last: check the caller's key, read the JSON body as
the API reads it, and send an error as the API sends it."""

import json
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from llm_simulator import refusals
from llm_simulator.protocol import ApiError
from llm_simulator.request_validation import refusal

__all__ = ["error_response", "json_body", "unauthorised"]

BodyT = TypeVar("BodyT", bound=BaseModel)


async def json_body(request: Request, operation: str, model: type[BodyT]) -> BodyT | ApiError:
    """The request's JSON body as ``model``, or the 400 OpenAI would answer: the body is checked
    against OpenAI's published schema for ``operation`` first (``request_validation``)."""
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return refusals.unparsable_body()
    if (refused := refusal(operation, body)) is not None:
        return refused
    return validated(body, model)


def validated(body: object, model: type[BodyT]) -> BodyT | ApiError:
    """``body`` (already accepted by the published schema) read as ``model``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        # The published schema accepted it; only a field the simulator reads more narrowly lands here.
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        return refusals.invalid(f"Invalid value for '{param}': {first['msg']}", param)


def unauthorised(request: Request) -> ApiError | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return None
    return ApiError(
        status=401,
        message=(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        ),
        type="invalid_request_error",
    )


def error_response(error: ApiError, request_id: str, limits: Mapping[str, str] | None = None) -> JSONResponse:
    """``error`` as OpenAI sends it; ``limits`` adds the ``x-ratelimit-*`` headers where ``error`` has none."""
    headers = {"x-request-id": request_id, **(limits or {}), **error.headers}
    return JSONResponse(error.body(), status_code=error.status, headers=headers)
