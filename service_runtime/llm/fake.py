"""In-memory ``StructuredCalls`` and ``StructuredBatches``, shipped beside the real adapters (as
httpx ships ``MockTransport`` beside its transports) so use cases are tested without a provider."""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pydantic

from contracts.events import LlmUsage
from service_runtime.llm.batch import BatchAnswer, BatchItem, batch_call_id
from service_runtime.llm.errors import InvalidReply
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.port import Prompt, StructuredReply

__all__ = ["Answer", "BatchScript", "ScriptedBatches", "ScriptedCalls"]

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)
# What a paid call gets: a reply, an ``InvalidReply`` (billed, unusable) or another exception to
# raise (``RetryLater``, ``GiveUp``, ...). May be a coroutine, to hold the call open.
Outcome = pydantic.BaseModel | BaseException
Answer = Callable[[str, Prompt, type[Any]], Outcome | Awaitable[Outcome]]
# What one item of a batch gets: a reply or an ``InvalidReply`` (billed, unusable); another
# exception fails the whole batch.
BatchScript = Callable[[BatchItem, type[Any]], Outcome]


class ScriptedCalls:
    """Replies come from ``answer(key, prompt, reply_type)``, one per paid call.

    ``reattach=True`` behaves like background responses: a call keeps running when its caller is
    cancelled, and its reply is kept under its key until ``forget``/``abandon``, so a call under
    that key again re-attaches to it without paying. Otherwise it behaves like a chat call, which
    lives only as long as its caller. ``paid``, ``forgotten`` and ``abandoned`` list the keys.
    With a ``meter``, each answered call is metered as the real adapters meter theirs."""

    def __init__(
        self, answer: Answer, *, model: str = "fake-model", reattach: bool = False, meter: LlmMeter | None = None
    ) -> None:
        self.model = model
        self._answer = answer
        self._reattach = reattach
        self._meter = meter
        self._running: dict[str, asyncio.Task[Outcome]] = {}
        self.paid: list[str] = []
        self.forgotten: list[str] = []
        self.abandoned: list[str] = []

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]:
        task = self._running.get(key) if self._reattach else None
        if task is None:
            self.paid.append(key)
            task = asyncio.ensure_future(self._reply(key, prompt, reply_type))
            if self._reattach:
                self._running[key] = task
        try:
            # Shielded where the provider would keep writing after the caller is gone.
            outcome = await (asyncio.shield(task) if self._reattach else task)
        except asyncio.CancelledError:
            if not self._reattach:
                task.cancel()
            raise
        usage = LlmUsage(model=self.model, prompt_tokens=len(prompt.user) // 4 + 100, completion_tokens=500)
        if self._meter is not None and isinstance(outcome, InvalidReply | pydantic.BaseModel):
            await self._meter.record(
                self.model,
                "invalid_reply" if isinstance(outcome, InvalidReply) else "ok",
                0.0,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        if isinstance(outcome, InvalidReply):
            self._running.pop(key, None)
            raise InvalidReply(str(outcome), usage)
        if isinstance(outcome, BaseException):
            self._running.pop(key, None)
            raise outcome
        assert isinstance(outcome, reply_type), f"the script answered {type(outcome).__name__} to a {reply_type}"
        return StructuredReply(outcome, usage)

    async def forget(self, key: str) -> None:
        self.forgotten.append(key)
        self._running.pop(key, None)

    async def abandon(self, key: str) -> None:
        self.abandoned.append(key)
        if (task := self._running.pop(key, None)) is not None:
            task.cancel()

    async def _reply(self, key: str, prompt: Prompt, reply_type: type[Any]) -> Outcome:
        answered = self._answer(key, prompt, reply_type)
        return await answered if inspect.isawaitable(answered) else answered


class ScriptedBatches:
    """Answers come from ``answer(item, reply_type)``, one per item; ``batches`` lists each run's
    custom ids. With a ``meter``, each answer is metered as the real adapter meters it (the
    ``batch`` tier, a ``call_id`` from the batch id and the item's ``custom_id``)."""

    def __init__(self, answer: BatchScript, *, model: str = "fake-model", meter: LlmMeter | None = None) -> None:
        self.model = model
        self._answer = answer
        self._meter = meter
        self.batches: list[list[str]] = []

    async def run(self, items: list[BatchItem], reply_type: type[ReplyT]) -> list[BatchAnswer[ReplyT]]:
        batch_id = f"batch_fake{len(self.batches)}"
        self.batches.append([item.custom_id for item in items])
        answers: list[BatchAnswer[ReplyT]] = []
        for item in items:
            outcome = self._answer(item, reply_type)
            if isinstance(outcome, BaseException) and not isinstance(outcome, InvalidReply):
                raise outcome
            usage = LlmUsage(model=self.model, prompt_tokens=len(item.prompt.user) // 4 + 100, completion_tokens=300)
            if isinstance(outcome, InvalidReply):
                answers.append(BatchAnswer(item.custom_id, batch_id, None, usage, str(outcome)))
            else:
                assert isinstance(outcome, reply_type), (
                    f"the script answered {type(outcome).__name__} to a {reply_type}"
                )
                answers.append(BatchAnswer(item.custom_id, batch_id, outcome, usage))
            if self._meter is not None:
                await self._meter.record(
                    self.model,
                    "invalid_reply" if isinstance(outcome, InvalidReply) else "ok",
                    0.0,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    service_tier="batch",
                    call_id=batch_call_id(batch_id, item.custom_id),
                )
        return answers
