"""What a finished background response says: a reply, an unusable one, or a failure."""

from typing import TypeVar

import pydantic
from openai.types.responses import Response

from service_runtime.llm.errors import InvalidReply, reply_problem
from service_runtime.outcomes import GiveUp, RetryLater

__all__ = ["TERMINAL", "reply_in"]

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)

TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})
# A failed response with one of these codes may succeed when asked again; others will not.
_TRANSIENT_FAILURES = frozenset({"server_error", "rate_limit_exceeded", "vector_store_timeout"})


def reply_in(response: Response, reply_type: type[ReplyT]) -> ReplyT | InvalidReply:
    """The reply in a finished response, or what is wrong with it (``InvalidReply``, usage not
    set); ``RetryLater``/``GiveUp`` for a response that failed or was cancelled."""
    if response.status == "failed":
        error = response.error
        detail = f"{error.code}: {error.message}" if error else "no error given"
        if error is None or error.code in _TRANSIENT_FAILURES:
            raise RetryLater("llm_server_error")
        raise GiveUp("llm_rejected_request", detail)
    if response.status == "cancelled":
        raise GiveUp("llm_cancelled", f"response {response.id} was cancelled")
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        return InvalidReply(f"the reply is incomplete ({reason or 'no reason given'})")
    for item in response.output:
        if item.type == "message":
            for part in item.content:
                if part.type == "refusal":
                    return InvalidReply(f"the model refused: {part.refusal}")
    text = response.output_text
    if not text:
        return InvalidReply("empty reply")
    try:
        return reply_type.model_validate_json(text)
    except pydantic.ValidationError as exc:
        return reply_problem(exc) or InvalidReply(str(exc))
