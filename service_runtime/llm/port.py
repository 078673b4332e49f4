"""The structured-call port: "a validated reply of type T for this prompt, under this key".

Use cases (the planner's strategies, the profiler) depend on ``StructuredCalls`` alone; adapters
make the call: ``chat.ChatCompletions`` (a streamed chat completion, any OpenAI-compatible
server), ``responses.BackgroundResponses`` (OpenAI's Responses API in background mode: a call
recorded under its key is re-attached to after a crash instead of bought again), and
``fake.ScriptedCalls`` (in memory, for tests). Provider rules (the strict-schema subset, output
caps, error classification, usage and cost) live in the adapters.

``first_usable`` is the one retry ladder on top: a part gets ``tries`` paid replies per delivery,
each either unusable (``InvalidReply``) or failing its checks, and the first good one wins. So the
worst case of paid calls is ``tries`` per part per delivery, whatever went wrong.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import pydantic

from contracts.events import LlmUsage
from service_runtime.llm.errors import InvalidReply
from service_runtime.outcomes import GiveUp, RetryLater

__all__ = ["Prompt", "StructuredCalls", "StructuredReply", "first_usable", "total_usage"]

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class Prompt:
    """Our instructions (sent with the system role, ours alone), the user's turn, and instructions
    that follow it (``after``, system role too).

    What several calls share goes first and what sets each apart last (``after``): the provider
    caches a repeated prompt prefix of 1,024 tokens or more and bills it at the cached price.
    ``cache_key`` (sent as ``prompt_cache_key``) routes the calls that share a prefix to the same
    cache."""

    system: tuple[str, ...]
    user: str
    after: tuple[str, ...] = ()
    cache_key: str | None = None

    def messages(self) -> list[tuple[str, str]]:
        """(role, text) in the order they are sent."""
        return [
            *(("system", text) for text in self.system),
            ("user", self.user),
            *(("system", text) for text in self.after),
        ]


@dataclass(frozen=True)
class StructuredReply(Generic[ReplyT]):
    """A validated reply and what it cost."""

    parsed: ReplyT
    usage: LlmUsage


class StructuredCalls(Protocol):
    """Port to an LLM that answers in a given pydantic type.

    ``call`` makes one paid call (or, where the adapter can, re-attaches to the one already made
    under ``key``). It returns a validated reply, raises ``InvalidReply`` for a reply that is not
    one (billed: its usage rides on the exception), and ``RetryLater`` / ``GiveUp`` /
    ``Misconfigured`` (``service_runtime.outcomes``) for everything else."""

    model: str

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]: ...

    async def forget(self, key: str) -> None:
        """The reply under ``key`` is used up or unusable: the next call asks anew."""
        ...

    async def abandon(self, key: str) -> None:
        """Stop the call under ``key`` at the provider, if it is still running, and forget it."""
        ...


async def first_usable(
    calls: StructuredCalls,
    key: str,
    prompt: Prompt,
    reply_type: type[ReplyT],
    *,
    tries: int,
    problems_of: Callable[[ReplyT], list[str]] = lambda _: [],
    quality_reason: str = "reply_quality",
    what: str = "",
    invalid_is_transient: bool = False,
) -> StructuredReply[ReplyT]:
    """The first of up to ``tries`` replies that is valid and has no ``problems_of``, with the
    usage of every try. When none is: ``GiveUp(quality_reason)`` if the last one failed its checks,
    else ``GiveUp("invalid_llm_reply")``, or ``RetryLater("invalid_llm_reply")`` when
    ``invalid_is_transient`` (a cheap part worth another delivery). ``what`` names the part in
    the reason's detail."""
    usages: list[LlmUsage] = []
    last = ""
    invalid = False
    for _ in range(tries):
        try:
            reply = await calls.call(key, prompt, reply_type)
        except InvalidReply as exc:
            if exc.usage is not None:
                usages.append(exc.usage)
            last, invalid = str(exc), True
            continue
        usages.append(reply.usage)
        problems = problems_of(reply.parsed)
        if not problems:
            return StructuredReply(reply.parsed, total_usage(usages, calls.model))
        last, invalid = "; ".join(problems), False
        await calls.forget(key)  # not to be re-attached to: written anew
    named = f"{what}: {last}" if what else last
    if not invalid:
        raise GiveUp(quality_reason, named[:1000])
    if invalid_is_transient:
        raise RetryLater("invalid_llm_reply")
    raise GiveUp("invalid_llm_reply", f"{tries} attempt(s); last: {named}")


def total_usage(usages: Sequence[LlmUsage], model: str) -> LlmUsage:
    return LlmUsage(
        model=usages[0].model if usages else model,
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
        cached_tokens=sum(u.cached_tokens for u in usages),
        calls=sum(u.calls for u in usages),
    )
