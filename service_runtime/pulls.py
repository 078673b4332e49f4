"""JetStream pull requests whose messages are handed over one by one, the moment each arrives."""

import json
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

from contracts.streams import ConsumerSpec

__all__ = ["PullRequests"]

log = logging.getLogger(__name__)


class PullRequests:
    """Pull requests on one durable consumer, each message handed over the moment it arrives.

    nats-py's ``fetch(n)`` may return only once ``n`` messages arrived or its timeout passed: a
    message it holds meanwhile is un-heartbeated, its ack clock running. Here one pull request is
    open at a time (``batch`` at most the free slots, ``expires`` the timeout), each with a reply
    subject of its own under our inbox, and each message goes to ``on_message`` as it is read. The
    server's status replies to the open request (404 no messages, 408 expired, 409 e.g. a leader
    change) end it, and so does its batch filled. A status names its request (it comes on the
    request's reply subject); a message does not (it carries its stream subject), so every message
    counts towards the open request: a late one of an earlier request (abandoned when the server
    went quiet) is handed over like any other, since it is a delivery, and at worst ends the open
    request a message early.
    """

    def __init__(self, nc: NatsClient, subscription: Subscription, inbox: str, next_subject: str) -> None:
        self._nc = nc
        self._subscription = subscription
        self._inbox = inbox
        self._next_subject = next_subject
        self._requests = 0

    @classmethod
    async def open(cls, js: JetStreamContext, spec: ConsumerSpec) -> "PullRequests":
        # nats-py keeps the connection and the API prefix private on its JetStream context;
        # tests/integration/test_leased_consumer.py pins that they are still there.
        nc: NatsClient = js._nc
        prefix: str = js._prefix
        inbox = nc.new_inbox()
        subscription = await nc.subscribe(f"{inbox}.*")
        return cls(nc, subscription, inbox, f"{prefix}.CONSUMER.MSG.NEXT.{spec.stream}.{spec.durable}")

    async def pull(self, batch: int, expires_seconds: float, on_message: Callable[[Msg], None]) -> int:
        """Ask for up to ``batch`` messages, waiting up to ``expires_seconds`` for them; how many came."""
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"
        request = {"batch": batch, "expires": int(expires_seconds * 1_000_000_000)}
        await self._nc.publish(self._next_subject, json.dumps(request).encode(), reply=reply)
        received = 0
        # The server ends the request with a 408 at ``expires``; a little slack for that reply.
        deadline = time.monotonic() + expires_seconds + 1.0
        while received < batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                msg = await self._subscription.next_msg(timeout=remaining)
            except TimeoutError:
                break  # no word from the server (e.g. reconnecting): ask again
            status = msg.headers.get(api.Header.STATUS) if msg.headers else None
            if status is None:
                received += 1
                on_message(msg)
            elif msg.subject == reply and status != _IDLE_HEARTBEAT:
                if status == _CONFLICT:
                    log.debug("pull request on %s ended: %s", self._next_subject, msg.headers)
                break
        return received

    async def close(self) -> None:
        await self._subscription.unsubscribe()


_IDLE_HEARTBEAT = "100"
_CONFLICT = "409"
