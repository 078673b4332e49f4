"""One table from what an LLM call can raise to what it means: for delivery, and for the metrics.

In the spirit of httpx's ``_exceptions.py``: every caller (the chat adapter, the background
adapter's create and polls, the meter) asks ``classify`` instead of writing its own ``isinstance``
ladder. The first row that matches decides: the delivery outcome (``RetryLater`` transient,
``GiveUp`` permanent, ``Misconfigured`` the service's own set-up: see ``service_runtime.outcomes``;
None for an error that is not the provider's, which the consumer treats as a bug) and a bounded
metric label.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import openai
import pydantic

from contracts.events import LlmUsage
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater

__all__ = ["METRIC_LABELS", "Classified", "InvalidReply", "classify", "reply_problem"]

Outcome = RetryLater | GiveUp | Misconfigured


class InvalidReply(Exception):
    """The model answered, but not with something we can store (malformed, truncated, refused,
    off-schema). Billed: ``usage`` is what it cost, when known."""

    def __init__(self, problem: str, usage: LlmUsage | None = None) -> None:
        super().__init__(problem)
        self.usage = usage


@dataclass(frozen=True)
class Classified:
    label: str
    outcome: Outcome | None


# 400s that every call of this deployment would get alike (the schema we send, a parameter or an
# output cap the API does not take): the service's fault, not the request's. Failing requests one
# by one would burn the whole queue; the consumer halts instead (``Misconfigured``).
_MISCONFIGURED_CODES = frozenset({"invalid_json_schema", "unknown_parameter", "unsupported_parameter"})
_MISCONFIGURED_MESSAGES = ("Invalid schema for", "Unrecognized request argument", "Unknown parameter")


def _misconfigured(exc: BaseException) -> bool:
    if not isinstance(exc, openai.BadRequestError):
        return False
    message = _error_message(exc)
    too_large = _error_code(exc) == "invalid_value" and "is too large" in message
    return _error_code(exc) in _MISCONFIGURED_CODES or message.startswith(_MISCONFIGURED_MESSAGES) or too_large


def _unknown_model(exc: BaseException) -> bool:
    return isinstance(exc, openai.NotFoundError) and _error_code(exc) == "model_not_found"


def _out_of_quota(exc: BaseException) -> bool:
    return isinstance(exc, openai.RateLimitError) and _error_code(exc) == "insufficient_quota"


def _no_capacity(exc: BaseException) -> bool:
    """Flex processing has no capacity now (429 ``resource_unavailable``, not billed): the same call
    on the Standard tier would be served."""
    return isinstance(exc, openai.RateLimitError) and _error_code(exc) == "resource_unavailable"


def _one_of(*types: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, types)


def _status(exc: BaseException) -> openai.APIStatusError:
    assert isinstance(exc, openai.APIStatusError)
    return exc


_Row = tuple[Callable[[BaseException], bool], str, Callable[[BaseException], Outcome] | None]
# First match wins; the order matters where classes overlap (quota before rate limits, the
# specific statuses before APIStatusError, APITimeoutError before APIConnectionError).
_TABLE: tuple[_Row, ...] = (
    (_one_of(InvalidReply), "invalid_reply", None),
    (_misconfigured, "other", lambda e: Misconfigured("llm_misconfigured", f"HTTP 400: {_status(e).message}")),
    # A model name the provider does not serve (a typo in PLANNER_MODEL) is the deployment's fault like
    # the rows above, yet it fails the request at once with the provider's words rather than halting:
    # the person who set the name sees why in the request's status, and the service warned at start
    # (``warn_if_unknown_model``). A retry could not help.
    (
        _unknown_model,
        "other",
        lambda e: GiveUp("llm_model_not_found", f"HTTP {_status(e).status_code}: {_error_message(_status(e))}"),
    ),
    (_out_of_quota, "quota", lambda e: GiveUp("llm_quota_exhausted", "the LLM account has no quota left")),
    (_no_capacity, "capacity_unavailable", lambda e: RetryLater("llm_capacity_unavailable", _retry_after(e))),
    (_one_of(openai.RateLimitError), "rate_limited", lambda e: RetryLater("llm_rate_limited", _retry_after(e))),
    (_one_of(openai.APITimeoutError, TimeoutError), "timeout", lambda e: RetryLater("llm_timeout")),
    (_one_of(openai.APIConnectionError), "connection", lambda e: RetryLater("llm_unreachable")),
    (_one_of(openai.InternalServerError), "server_error", lambda e: RetryLater("llm_server_error", _retry_after(e))),
    (_one_of(openai.ConflictError), "other", lambda e: RetryLater("llm_conflict")),
    # A body the SDK could not read as what it asked for (cut short, a proxy's error page).
    (_one_of(openai.APIResponseValidationError), "other", lambda e: RetryLater("llm_unreadable_response")),
    (
        _one_of(openai.APIStatusError),
        "other",
        lambda e: GiveUp("llm_rejected_request", f"HTTP {_status(e).status_code}: {_status(e).message}"),
    ),
)
# Every label ``classify`` gives, plus ``ok`` for a usable reply: the metrics start them at zero.
METRIC_LABELS = tuple(dict.fromkeys(("ok", *(label for _, label, _ in _TABLE), "other")))


def classify(exc: BaseException) -> Classified:
    for matches, label, outcome in _TABLE:
        if matches(exc):
            return Classified(label, outcome(exc) if outcome is not None else None)
    return Classified("other", None)


def reply_problem(exc: BaseException, usage: LlmUsage | None = None) -> InvalidReply | None:
    """The reply-level failures a regeneration may fix, as ``InvalidReply``; None for others."""
    if isinstance(exc, openai.LengthFinishReasonError):
        return InvalidReply("the reply was truncated (finish_reason=length)", usage)
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return InvalidReply("the reply was cut by the content filter", usage)
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return InvalidReply(
            f"the reply does not match the schema ({exc.error_count()} errors; {where}: {first['msg']})", usage
        )
    return None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return str(inner["message"])
    return str(exc.message)


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    return getattr(exc, "code", None)


def _retry_after(exc: BaseException) -> float | None:
    headers = _status(exc).response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None
