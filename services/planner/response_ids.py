"""A JetStream key-value bucket holding, per call, the id of its background LLM response.

A call's key is its request id (a whole plan in one call) or the request id and the part
(``<request id>.week3``). The id is written before the planner waits for the response, so
whichever process handles the request next (the same one restarted, or another replica after
redelivery) re-attaches to that response instead of paying for a new one. Writes are
compare-and-set on the key's revision: two replicas racing on one call agree on one response.
"""

import contextlib
import json
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from service_runtime.bus import open_bucket

BUCKET = "planner-responses"


@dataclass(frozen=True)
class ResponseRecord:
    """The response a request waits for.

    ``created_at`` is wall-clock (epoch seconds) so a deadline spans processes; ``calls`` counts
    the responses created for the request so far, this one included; ``revision`` is the key's
    revision when read or written (not stored), for compare-and-set.
    """

    response_id: str
    created_at: float
    calls: int
    revision: int = 0


class RecordConflict(Exception):
    """Another process recorded a response for the request since this one last read it."""


class KeyValueResponseIds:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(
        cls, js: JetStreamContext, ttl_seconds: float = 2 * 24 * 3600, replicas: int = 1
    ) -> "KeyValueResponseIds":
        return cls(await open_bucket(js, BUCKET, ttl_seconds=ttl_seconds, replicas=replicas))

    async def get(self, key: str) -> ResponseRecord | None:
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if not entry.value:
            return None
        stored = json.loads(entry.value)
        return ResponseRecord(
            response_id=str(stored["response_id"]),
            created_at=float(stored["created_at"]),
            calls=int(stored["calls"]),
            revision=entry.revision or 0,
        )

    async def record(self, key: str, record: ResponseRecord, replacing: ResponseRecord | None) -> ResponseRecord:
        """Store ``record`` if the key still holds ``replacing`` (None: if it holds nothing).

        Raises ``RecordConflict`` when another process wrote the key in between."""
        value = json.dumps(
            {"response_id": record.response_id, "created_at": record.created_at, "calls": record.calls}
        ).encode()
        try:
            if replacing is None:
                revision = await self._kv.create(key, value)
            else:
                revision = await self._kv.update(key, value, last=replacing.revision)
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise RecordConflict(key) from exc
        return ResponseRecord(record.response_id, record.created_at, record.calls, revision)

    async def forget(self, key: str, record: ResponseRecord) -> None:
        """Remove ``record`` (its response cannot be used), unless another process replaced it."""
        # Replaced meanwhile (a conflict): the newer record is someone's live response; keep it.
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
            await self._kv.delete(key, last=record.revision)
