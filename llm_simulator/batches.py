"""Batches in memory: created ``validating``, run by an asyncio task through ``in_progress`` and
``finalizing`` to ``completed`` (or ``failed`` when the input file does not validate), with an
output file and an error file, as the Batch API runs them.

The whole run takes ``batch_seconds``: a quarter validating, half answering the requests (at an
even pace, so ``request_counts`` grow while clients poll), a quarter finalizing. Each request is
answered by the simulated model exactly as the chat endpoint answers it (``Simulator.answer``, so
a profile is the one a chat call gets), outside the per-minute limits (the Batch API has its own
pool). Faults apply per request: an HTTP error fault (``rate_limit``, ``quota``,
``server_error``) is that request's line in the error file with its status and body; ``hang`` and
``stuck_queued`` are a ``request_timeout`` error; the others spoil the reply as on chat.

Cancelling moves a running batch to ``cancelling``; it stops before its next request and turns
``cancelled``, its answered requests in the output file and the rest in the error file
(``batch_cancelled``). Finished batches are kept up to ``batches_kept``, oldest forgotten first.
"""

import asyncio
import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from llm_simulator import batch_refusals
from llm_simulator.batch_input import BatchRequest, ReadInput, read_input
from llm_simulator.faults import Fault
from llm_simulator.files import BATCH_FILE_SECONDS, FileStore, StoredFile
from llm_simulator.protocol import ApiError, Usage, completion, new_completion_id, new_request_id
from llm_simulator.simulator import Simulator

__all__ = ["BatchCreateRequest", "BatchStore", "StoredBatch"]

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
CANCELLABLE = ("validating", "in_progress", "finalizing")
COMPLETION_WINDOW_SECONDS = 24 * 3600
CHAT_ENDPOINT = "/v1/chat/completions"


class BatchCreateRequest(BaseModel):
    """``POST /v1/batches``, once its body matched the published schema."""

    model_config = ConfigDict(extra="allow")

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None


@dataclass
class StoredBatch:
    request: BatchCreateRequest
    id: str = field(default_factory=lambda: f"batch_{secrets.token_hex(16)}")
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: BatchStatus = "validating"
    model: str | None = None
    errors: list[dict[str, Any]] | None = None
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at, completed_at, ...
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=lambda: Usage(0, 0))

    def enter(self, status: BatchStatus) -> None:
        self.status = status
        self.times[f"{status}_at"] = int(time.time())

    @property
    def finished(self) -> bool:
        return self.status in ("failed", "completed", "expired", "cancelled")

    def wire(self) -> dict[str, Any]:
        """The ``batch`` object."""
        stamps = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.request.endpoint,
            "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.request.input_file_id,
            "completion_window": self.request.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + COMPLETION_WINDOW_SECONDS,
            **{f"{stamp}_at": self.times.get(f"{stamp}_at") for stamp in stamps},
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "usage": {
                "input_tokens": self.usage.prompt_tokens,
                "input_tokens_details": {"cached_tokens": self.usage.cached_tokens},
                "output_tokens": self.usage.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.usage.prompt_tokens + self.usage.completion_tokens,
            },
            "metadata": self.request.metadata,
        }


class BatchStore:
    def __init__(self, simulator: Simulator, files: FileStore) -> None:
        self._simulator = simulator
        self._files = files
        self._batches: OrderedDict[str, StoredBatch] = OrderedDict()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._finished_order: deque[str] = deque()

    def create(self, request: BatchCreateRequest) -> StoredBatch:
        stored = StoredBatch(request)
        self._batches[stored.id] = stored
        self._simulator.stats.batches_created_total += 1
        task = asyncio.get_running_loop().create_task(self._run(stored), name=f"batch:{stored.id}")
        self._running[stored.id] = task
        task.add_done_callback(lambda _: self._running.pop(stored.id, None))
        return stored

    def get(self, batch_id: str) -> StoredBatch | None:
        return self._batches.get(batch_id)

    def cancel(self, batch_id: str) -> StoredBatch | ApiError:
        """Cancel a running batch (it stops before its next request); one cancelling or cancelled
        is returned as it is; a finished one is a 409."""
        stored = self._batches.get(batch_id)
        if stored is None:
            return batch_refusals.batch_not_found(batch_id)
        if stored.status in ("cancelling", "cancelled"):
            return stored
        if stored.status not in CANCELLABLE:
            return batch_refusals.cannot_cancel(stored.status)
        stored.enter("cancelling")
        return stored

    def listed(self, after: str | None, limit: int) -> dict[str, Any]:
        """``GET /v1/batches``: newest first, ``limit`` from the one after ``after``."""
        newest_first = list(reversed(self._batches.values()))
        start = next((i + 1 for i, b in enumerate(newest_first) if b.id == after), 0) if after else 0
        page = newest_first[start : start + limit]
        return {
            "object": "list",
            "data": [b.wire() for b in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": start + limit < len(newest_first),
        }

    def forget_all(self) -> int:
        """Forget every batch, as a restart would; running ones stop where they are."""
        for task in self._running.values():
            task.cancel()
        forgotten = len(self._batches)
        self._running.clear()
        self._batches.clear()
        self._finished_order.clear()
        return forgotten

    async def _run(self, batch: StoredBatch) -> None:
        quarter = self._simulator.config.batch_seconds / 4
        await asyncio.sleep(quarter)
        read = None if batch.status == "cancelling" else self._read(batch)
        if read is None:
            self._finish(batch, "cancelled" if batch.status == "cancelling" else "failed")
            return
        batch.model, batch.total = read.model, len(read.requests)
        batch.enter("in_progress")
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        started, step = loop.time(), 2 * quarter / max(1, len(read.requests))
        for index, request in enumerate(read.requests):
            if batch.status == "cancelling":
                errors.extend(_line(r.custom_id, error=batch_refusals.batch_cancelled()) for r in read.requests[index:])
                break
            line, answered = self._answer(request, batch)
            (outputs if answered else errors).append(line)
            # An even pace over the run; a large batch yields to the loop at least every 100 requests.
            if (wait := started + (index + 1) * step - loop.time()) > 0.001 or index % 100 == 99:
                await asyncio.sleep(max(0.0, wait))
        if batch.status != "cancelling":
            batch.enter("finalizing")
            await asyncio.sleep(quarter)
        self._write_files(batch, outputs, errors)
        self._finish(batch, "cancelled" if batch.status == "cancelling" else "completed")

    def _read(self, batch: StoredBatch) -> ReadInput | None:
        """The validated input, or None when the batch failed validation (its errors set)."""
        file_id = batch.request.input_file_id
        source = self._files.get(file_id)
        if source is None:
            batch.errors = [batch_refusals.input_file_missing(file_id)]
            return None
        if source.purpose != "batch":
            batch.errors = [batch_refusals.input_file_not_for_batches(file_id, source.purpose)]
            return None
        read = read_input(source.content, batch.request.endpoint, self._simulator.config)
        if read.errors:
            batch.errors = read.errors
            return None
        return read

    def _answer(self, request: BatchRequest, batch: StoredBatch) -> tuple[dict[str, Any], bool]:
        """One request's line, and whether it goes to the output file (a 200) or the error file."""
        self._simulator.stats.batch_requests_total += 1
        if request.refused is not None:
            batch.failed += 1
            return _line(request.custom_id, status=request.refused.status, body=request.refused.body()), False
        assert request.chat is not None, "a request the endpoint does not refuse has its chat request"
        outcome = self._simulator.answer(request.chat, batch=True)
        if isinstance(outcome, ApiError):
            batch.failed += 1
            return _line(request.custom_id, status=outcome.status, body=outcome.body()), False
        if outcome.fault in (Fault.HANG, Fault.STUCK_QUEUED):
            batch.failed += 1
            return _line(request.custom_id, error=batch_refusals.request_timeout()), False
        self._simulator.delivered(outcome)
        batch.completed += 1
        total = batch.usage
        batch.usage = Usage(
            total.prompt_tokens + outcome.usage.prompt_tokens,
            total.completion_tokens + outcome.usage.completion_tokens,
            total.cached_tokens + outcome.usage.cached_tokens,
        )
        body = completion(
            completion_id=new_completion_id(),
            model=request.chat.model,
            content=outcome.content,
            finish_reason=outcome.finish_reason,
            usage=outcome.usage,
            refused=outcome.refused,
            service_tier=outcome.service_tier,
        )
        return _line(request.custom_id, status=200, body=body), True

    def _write_files(self, batch: StoredBatch, outputs: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
        for lines, kind in ((outputs, "output"), (errors, "error")):
            if not lines:
                continue
            content = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
            stored = self._files.add(
                StoredFile(f"{batch.id}_{kind}.jsonl", "batch_output", content, expires_in_seconds=BATCH_FILE_SECONDS)
            )
            if kind == "output":
                batch.output_file_id = stored.id
            else:
                batch.error_file_id = stored.id

    def _finish(self, batch: StoredBatch, status: BatchStatus) -> None:
        batch.enter(status)
        self._finished_order.append(batch.id)
        while len(self._finished_order) > self._simulator.config.batches_kept:
            self._batches.pop(self._finished_order.popleft(), None)


def _line(
    custom_id: str,
    *,
    status: int | None = None,
    body: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One line of an output or error file: a response (any status) or, for a request that got
    none, an error."""
    response = None if status is None else {"status_code": status, "request_id": new_request_id(), "body": body}
    return {"id": f"batch_req_{secrets.token_hex(16)}", "custom_id": custom_id, "response": response, "error": error}
