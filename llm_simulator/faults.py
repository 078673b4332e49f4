"""Injected faults: which one a request gets, and what each looks like on the wire.

A fault is drawn per request from the configured probabilities, or forced by a directive
``[[sim:fault=<kind>]]`` anywhere in the request's messages (every request carrying it gets it).
"""

import json
import math
import random
import re
from enum import StrEnum

from llm_simulator.config import SimulatorConfig
from llm_simulator.protocol import ApiError


class Fault(StrEnum):
    """The faults the simulator can inject."""

    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    SERVER_ERROR = "server_error"
    MALFORMED = "malformed"
    TRUNCATE = "truncate"
    HANG = "hang"
    REFUSAL = "refusal"
    BROKEN = "broken"
    # Last, so seeded draws made before it existed come out the same (its probability adds 0).
    STUCK_QUEUED = "stuck_queued"


# What a model that declines says, in the ``refusal`` field instead of ``content`` (structured outputs).
REFUSAL_TEXT = "I'm sorry, I can't help with that request."

_STRING_VALUE = re.compile(r'":\s*"')
_DIRECTIVE = re.compile(r"\[\[sim:fault=([a-z_]*)\]\]")


class UnknownFaultError(ValueError):
    """A directive names a fault kind that does not exist."""


def forced_fault(texts: list[str]) -> Fault | None:
    """The fault a ``[[sim:fault=...]]`` directive forces, if any message carries one."""
    for text in texts:
        if match := _DIRECTIVE.search(text):
            try:
                return Fault(match.group(1))
            except ValueError:
                kinds = ", ".join(f.value for f in Fault)
                raise UnknownFaultError(f"unknown fault {match.group(1)!r} in directive; use one of {kinds}") from None
    return None


def drawn_fault(config: SimulatorConfig, rng: random.Random) -> Fault | None:
    """One draw against the configured probabilities (they are exclusive and sum to at most 1)."""
    draw = rng.random()
    threshold = 0.0
    for fault in Fault:
        threshold += getattr(config, f"p_{fault.value}")
        if draw < threshold:
            return fault
    return None


def http_error(fault: Fault, config: SimulatorConfig, model: str) -> ApiError | None:
    """The HTTP error a fault turns into, or None for faults that still answer 200."""
    if fault is Fault.RATE_LIMIT:
        wait = config.retry_after_seconds
        return ApiError(
            status=429,
            message=(
                f"Rate limit reached for {model} in organization org-simulator on requests per min (RPM): "
                f"Limit 500, Used 500, Requested 1. Please try again in {wait:g}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            ),
            type="requests",
            code="rate_limit_exceeded",
            # Retry-After is whole seconds by HTTP's rules; retry-after-ms carries the exact value.
            headers={"retry-after": str(math.ceil(wait)), "retry-after-ms": str(round(wait * 1000))},
        )
    if fault is Fault.QUOTA:
        return ApiError(
            status=429,
            message=(
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
            ),
            type="insufficient_quota",
            code="insufficient_quota",
        )
    if fault is Fault.SERVER_ERROR:
        return ApiError(
            status=500,
            message=(
                "The server had an error while processing your request. Sorry about that! You can retry your "
                "request, or contact us through our help center if the error persists."
            ),
            type="server_error",
        )
    return None


def malformed(content: str, rng: random.Random) -> str:
    """``content`` broken so it is not valid JSON: a prefix of it, then garbage, never closed.

    The cut lands inside a string value, so the SDK's incremental (partial) JSON parsing of a
    stream accepts every chunk and the failure surfaces where a real one would: in the final
    parse, as a validation error.
    """
    garbage = rng.choice(("\u2026<|endoftext|>", " [[output interrupted]] {{", "\ufffd\ufffd###"))
    half = len(content) // 2
    string_value = _STRING_VALUE.search(content, half) or _STRING_VALUE.search(content)
    if string_value is None:
        return content[:half] + garbage
    start = string_value.end()
    closing = content.find('"', start)
    # Up to three characters of the value, never its closing quote nor a dangling escape.
    kept = content[start : min(start + 3, closing if closing >= 0 else len(content))].rstrip("\\")
    return content[:start] + kept + garbage


def garbled(body: str) -> str:
    """An HTTP body cut short mid-JSON with garbage after it, as a broken proxy or connection
    delivers it: what a retrieval gets when a ``malformed`` fault hits the wire."""
    return body[: max(1, len(body) // 2)] + "\ufffd\ufffd<html><body>502 Bad Gateway"


def broken(content: str) -> str:
    """A plan (or one week) that still matches its schema but is not a coherent programme: one
    week loses its last training day. Other replies are left as they are."""
    try:
        document = json.loads(content)
    except ValueError:
        return content
    weeks = document.get("weeks") if isinstance(document, dict) else None
    if isinstance(weeks, list) and weeks and isinstance(weeks[0], dict) and "days" in weeks[0]:
        target = weeks[min(2, len(weeks) - 1)]  # week 3 of a whole plan
    elif isinstance(document, dict) and isinstance(document.get("days"), list) and "theme" in document:
        target = document  # one week
    else:
        return content
    if len(target["days"]) > 1:
        target["days"] = target["days"][:-1]
    else:
        target["days"][0]["exercises"] = target["days"][0]["exercises"][:1]
        target["theme"] = "Peak week"  # and it is no deload either
    return json.dumps(document, ensure_ascii=False)


def truncated(content: str) -> str:
    """Roughly the first half of ``content``, as a reply cut off by the token limit."""
    return content[: max(1, len(content) // 2)]
