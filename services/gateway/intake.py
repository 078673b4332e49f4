"""The body of a plan request: read it within a size cap, then validate it against the length limits.

The route reads the body itself, after authentication, so a caller without a valid token learns
nothing about what a valid body looks like and a stranger's oversized upload is never parsed.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from contracts.events import MAX_REVIEW_SECONDS
from services.gateway.errors import ApiError

__all__ = [
    "DEFAULT_MAX_SYSTEM_PROMPT_CHARS",
    "DEFAULT_MAX_USER_PROFILE_CHARS",
    "MAX_INSTRUCTION_CHARS",
    "Adjust",
    "Confirm",
    "Limits",
    "PlanRequestBody",
    "SkeletonDecisionBody",
    "WeekRequestBody",
    "read_decision",
    "read_plan_request",
    "read_week_request",
]

# The settings' defaults, also stated in the published schema (operators may set others).
DEFAULT_MAX_USER_PROFILE_CHARS = 8000
DEFAULT_MAX_SYSTEM_PROMPT_CHARS = 4000

# JSON may spell one character as a 12-byte surrogate-pair escape (\ud83d\udcaa); allow for that
# in every capped field, plus room for fields we ignore.
_BYTES_PER_CHAR = 12
_SLACK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """How much text a plan request may carry, in characters after trimming whitespace."""

    max_user_profile_chars: int
    max_system_prompt_chars: int

    @property
    def max_body_bytes(self) -> int:
        return _BYTES_PER_CHAR * (self.max_user_profile_chars + self.max_system_prompt_chars) + _SLACK_BYTES


# What the published schema says of text we store: no NUL, which Postgres ``text`` cannot hold
# (``_storable`` refuses it, and lone surrogates, with 422 ``string_unstorable``); and, where text is
# required, at least one character that is not white space.
STORABLE_TEXT = r"^[^\x00]*$"
SOME_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


class PlanRequestBody(BaseModel):
    """What the app sends: the original edge function's fields, unchanged.

    Unknown fields are ignored (tolerant reader), so app releases that send more keep working.
    Both texts are trimmed; an empty ``systemPrompt`` counts as absent. Validate with
    ``context=Limits(...)``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    user_profile: str = Field(
        alias="userProfile",
        description=(
            "The user's goals, schedule, equipment and constraints, in their words; not blank. At most"
            f" {DEFAULT_MAX_USER_PROFILE_CHARS} characters after trimming unless the operator set another cap."
        ),
        json_schema_extra={"minLength": 1, "maxLength": DEFAULT_MAX_USER_PROFILE_CHARS, "pattern": SOME_TEXT},
    )
    system_prompt: str | None = Field(
        None,
        alias="systemPrompt",
        description=(
            "Optional extra guidance; untrusted, it never replaces our instructions unless the operator"
            f" allows it. At most {DEFAULT_MAX_SYSTEM_PROMPT_CHARS} characters after trimming by default."
        ),
        json_schema_extra={"maxLength": DEFAULT_MAX_SYSTEM_PROMPT_CHARS, "pattern": STORABLE_TEXT},
    )

    review_skeleton_seconds: int | None = Field(
        None,
        alias="reviewSkeletonSeconds",
        ge=0,
        le=MAX_REVIEW_SECONDS,
        description=(
            "Show the plan's skeleton first and wait this long (seconds) for the user to confirm or adjust it"
            " (POST /v1/requests/{request_id}/skeleton) before the weeks are written; 0: don't. Absent: the"
            " server's default (GATEWAY_SKELETON_REVIEW_SECONDS)."
        ),
    )

    @field_validator("user_profile")
    @classmethod
    def _profile_is_present_and_capped(cls, value: str, info: ValidationInfo) -> str:
        text = _storable(value).strip()
        if not text:
            raise PydanticCustomError("string_blank", "userProfile must not be empty")
        return _capped(text, _limits(info).max_user_profile_chars)

    @field_validator("system_prompt")
    @classmethod
    def _prompt_is_capped(cls, value: str | None, info: ValidationInfo) -> str | None:
        text = _storable(value or "").strip()
        return _capped(text, _limits(info).max_system_prompt_chars) if text else None


async def read_plan_request(request: Request, limits: Limits) -> PlanRequestBody:
    """The validated body; ``RequestValidationError`` (422) or ``ApiError`` (413) otherwise.

    The body is parsed as JSON whatever its ``Content-Type``, as the original edge function did.
    """
    raw = await _read_capped(request, limits.max_body_bytes)
    try:
        return PlanRequestBody.model_validate_json(raw, context=limits)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


MAX_INSTRUCTION_CHARS = 1000


def _instruction(value: str | None) -> str | None:
    """Trimmed, capped and storable; blank is none."""
    text = _storable(value or "").strip()
    return _capped(text, MAX_INSTRUCTION_CHARS) if text else None


# What the user wants changed, in their words (a week redone, a skeleton adjusted).
Instruction = Annotated[str | None, AfterValidator(_instruction)]


class WeekRequestBody(BaseModel):
    """What may come with a request to write a week again: the whole body is optional."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    instruction: Instruction = Field(
        None,
        description=(
            "What to change, in the user's words (e.g. 'fewer squats, my knee hurts'); without it the week is"
            f" written again as its skeleton says. At most {MAX_INSTRUCTION_CHARS} characters after trimming."
        ),
        json_schema_extra={"maxLength": MAX_INSTRUCTION_CHARS, "pattern": STORABLE_TEXT},
    )


class Confirm(BaseModel):
    """Write the weeks against the skeleton shown."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    decision: Literal["confirm"]


def _required_instruction(value: str) -> str:
    text = _instruction(value)
    if text is None:
        raise PydanticCustomError("string_blank", "instruction must not be empty")
    return text


class Adjust(BaseModel):
    """Write the skeleton again as the user says, then show it again."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    decision: Literal["adjust"]
    instruction: Annotated[str, AfterValidator(_required_instruction)] = Field(
        description=f"What to change, in the user's words; at most {MAX_INSTRUCTION_CHARS} characters after trimming.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_INSTRUCTION_CHARS, "pattern": SOME_TEXT},
    )


# The user's decision on a skeleton shown to them, told apart by ``decision``.
SkeletonDecisionBody = Annotated[Confirm | Adjust, Field(discriminator="decision")]
_DECISION: TypeAdapter[Confirm | Adjust] = TypeAdapter(SkeletonDecisionBody)


async def read_decision(request: Request) -> Confirm | Adjust:
    """The validated decision; 422 or 413 otherwise."""
    raw = await _read_capped(request, _BYTES_PER_CHAR * MAX_INSTRUCTION_CHARS + _SLACK_BYTES)
    try:
        return _DECISION.validate_json(raw)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


async def read_week_request(request: Request) -> WeekRequestBody:
    """The validated body (an empty one: no instruction); 422 or 413 otherwise."""
    raw = await _read_capped(request, _BYTES_PER_CHAR * MAX_INSTRUCTION_CHARS + _SLACK_BYTES)
    if not raw.strip():
        return WeekRequestBody()
    try:
        return WeekRequestBody.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


def _limits(info: ValidationInfo) -> Limits:
    if not isinstance(info.context, Limits):
        raise TypeError("validate PlanRequestBody with context=Limits(...)")
    return info.context


# Postgres ``text`` cannot hold NUL (the driver raises), nor a lone surrogate (not encodable as
# UTF-8). JSON can spell both as escapes; our JSON parser refuses lone surrogates already, the
# check below covers them anyway, so no parser change can turn them into a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(text: str) -> str:
    if _UNSTORABLE.search(text):
        raise PydanticCustomError(
            "string_unstorable", "String must not contain NUL (\\u0000) or unpaired surrogate characters"
        )
    return text


def _capped(text: str, limit: int) -> str:
    if len(text) > limit:
        raise PydanticCustomError(
            "string_too_long", "String should have at most {max_length} characters", {"max_length": limit}
        )
    return text


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "invalid_request", f"The request body exceeds {max_bytes} bytes.")


_MAX_IDEMPOTENCY_KEY_CHARS = 200


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, if sent: 1-200 visible ASCII characters, else 422."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= _MAX_IDEMPOTENCY_KEY_CHARS or not all(33 <= ord(c) <= 126 for c in key):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "Idempotency-Key"),
                    "msg": f"must be 1-{_MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters",
                    "input": None,
                }
            ]
        )
    return key
