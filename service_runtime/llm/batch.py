"""The batch port: "a validated reply of type T for each of these prompts, bought through the
provider's Batch API" (half the Standard price, answered within its completion window, 24 h).

Use cases that can wait a day for many independent replies (the profiler's catalogue pre-fill)
depend on ``StructuredBatches`` alone; adapters make the batch: ``openai_batch.OpenAiBatches``
(OpenAI's Files and Batch APIs, with the same strict schema and output cap as a chat call) and
``fake.ScriptedBatches`` (in memory, for tests). Each item gets an answer: its validated reply
with what it cost, or why there is none (an unusable reply, the request refused, not run).
"""

import uuid
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import pydantic

from contracts.events import LlmUsage
from service_runtime.llm.port import Prompt

__all__ = ["BatchAnswer", "BatchItem", "StructuredBatches", "batch_call_id"]

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)

_CALLS = uuid.UUID("5c3f0d1e-8a4b-4f3e-9a57-0b7c2d9e6a10")


def batch_call_id(batch_id: str, custom_id: str) -> uuid.UUID:
    """The ledger's ``call_id`` of one request of one batch: the same however often the batch's
    answers are read, so the ledger stores each call once."""
    return uuid.uuid5(_CALLS, f"{batch_id}:{custom_id}")


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch; ``custom_id`` is unique within the batch and names its answer."""

    custom_id: str
    prompt: Prompt


@dataclass(frozen=True)
class BatchAnswer(Generic[ReplyT]):
    """What one item got: ``reply`` (None when unusable, ``problem`` says why), ``usage`` when the
    provider billed it, and the provider's ``batch_id`` it ran in."""

    custom_id: str
    batch_id: str
    reply: ReplyT | None
    usage: LlmUsage | None = None
    problem: str = ""


class StructuredBatches(Protocol):
    """Port to an LLM's batch interface.

    ``run`` submits the items (in as many provider batches as its limits need), waits for them,
    and returns one answer per item, in the items' order. It raises ``RetryLater`` / ``GiveUp`` /
    ``Misconfigured`` (``service_runtime.outcomes``) when a batch as a whole could not be made or
    was refused; unusable single replies are answers, not exceptions."""

    model: str

    async def run(self, items: list[BatchItem], reply_type: type[ReplyT]) -> list[BatchAnswer[ReplyT]]: ...
