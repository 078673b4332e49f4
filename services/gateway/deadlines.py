"""Slow and idle clients are cut off by the server itself, not only by an ingress in front of it.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) and, past
``limit_concurrency`` connections, answers 503; it has no deadline for a request's headers or its
body, so a client sending one byte a second holds a connection (and a slot) for ever. This is
uvicorn's httptools protocol with two deadlines added:

- **headers**: a request's headers must be complete within ``header_seconds`` of the connection
  opening or of the previous reply on it ending (so a trickle of bytes, even blank lines that
  start no request, cannot stretch it);
- **body**: its body must be complete within ``body_seconds`` of its headers.

Past either, the client gets ``408`` in our error shape (when no reply has started) and the
connection is closed; the route waiting for that body sees a disconnect.
"""

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from services.gateway.errors import ErrorBody, ErrorInfo

__all__ = ["deadline_protocol"]


def _timeout_reply(message: str) -> bytes:
    body = ErrorBody(error=ErrorInfo(code="invalid_request", message=message)).model_dump_json().encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


class _DeadlineProtocol(HttpToolsProtocol):
    header_seconds: float
    body_seconds: float

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        _cancel(self._header_timer)
        self._header_timer = None
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.body_seconds, self._body_too_slow)

    def on_message_complete(self) -> None:
        _cancel(self._body_timer)
        self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        _cancel(self._header_timer)
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        _cancel(self._header_timer)
        _cancel(self._body_timer)
        self._header_timer = self._body_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served; the deadline is re-armed when its reply ends
        self._cut_off(f"The request's headers did not arrive within {self.header_seconds:g} seconds.", True)

    def _body_too_slow(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        reply = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The route waiting on the body gets a disconnect; its reply goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self._cut_off(f"The request's body did not arrive within {self.body_seconds:g} seconds.", reply)

    def _cut_off(self, message: str, reply: bool) -> None:
        if self.transport.is_closing():
            return
        self.logger.info("closing a slow client %s: %s", self.client, message)
        if reply:
            self.transport.write(_timeout_reply(message))
        self.transport.close()


def _cancel(timer: asyncio.TimerHandle | None) -> None:
    if timer is not None:
        timer.cancel()


def deadline_protocol(*, header_seconds: float, body_seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (pass as ``http=``) with these header and body deadlines."""
    return type(
        "DeadlineHttpProtocol",
        (_DeadlineProtocol,),
        {"header_seconds": header_seconds, "body_seconds": body_seconds},
    )
