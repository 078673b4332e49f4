"""Which request the current task is working for, without passing it through every call.

The consumer sets it for the duration of each delivery (every event names its request); code
far below, such as the LLM meter recording a paid call, reads it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

__all__ = ["current_request_id", "working_for"]

_REQUEST_ID: ContextVar[UUID | None] = ContextVar("request_id", default=None)


def current_request_id() -> UUID | None:
    return _REQUEST_ID.get()


@contextmanager
def working_for(request_id: UUID) -> Iterator[None]:
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)
