"""A JetStream pull consumer that holds a message's lease from receipt until its ack.

Why not FastStream's subscriber: with ``max_workers`` it fetches messages before a worker is
free and their ack clock runs while they wait in its queue (faststream issue 2563), so minutes
-long handlers get redelivered to other replicas mid-call. Here a pull request asks only for as
many messages as there are free slots, each message is handed over and starts heartbeating
(``+WPI``, ``leases.py``) the moment it arrives (``pulls.py``: not when the whole batch is in, as nats-py's
``fetch`` may), and the ack is sent only after the handler's effects are durable (and not waited
for: a lost ack is a redelivery, and every handler is idempotent).

A handler that raises ``Misconfigured`` (the provider refuses the schema we send, say) halts the
consumer: the message goes back to the stream unspent, fetching stops, the consumer reports itself
halted (readiness, ``workout_consumer_halted``) and waits for an operator, instead of failing the
whole queue one request at a time.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import nats.errors
import pydantic
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from contracts.events import Event
from contracts.streams import DEAD_LETTERS, ConsumerSpec
from service_runtime import tracing
from service_runtime.bus import ensure_consumer
from service_runtime.dead_letters import dead_letter
from service_runtime.leases import Lease, quietly
from service_runtime.logs import bind_request_id, reason
from service_runtime.metrics import (
    CONSUMER_ACK_PENDING,
    CONSUMER_HALTED,
    CONSUMER_PENDING,
    DEAD_LETTER_STREAM_MESSAGES,
    DEAD_LETTERED,
    MESSAGE_HANDLING_SECONDS,
    MESSAGES_HANDLED,
    MESSAGES_IN_FLIGHT,
    MESSAGES_REDELIVERED,
    consumer_at_zero,
)
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater
from service_runtime.pulls import PullRequests

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
GiveUpHook = Callable[[Msg, GiveUp], Awaitable[None]]

# How often each consumer reports its lag (pending, ack-pending) from the server.
LAG_REFRESH_SECONDS = 10.0
# A message put back by a halted consumer waits this long before another replica may take it: one
# that was rolled out with the fix, or one just as misconfigured that halts on it too.
HALTED_REDELIVERY_SECONDS = 60.0


class LeasedConsumer(Generic[E]):
    """Runs ``handler`` on each event of one durable consumer, up to ``max_in_flight`` at once."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        event_type: type[E],
        handler: Callable[[E], Awaitable[None]],
        *,
        max_in_flight: int,
        on_give_up: GiveUpHook | None = None,
        fetch_batch: int = 64,
        fetch_timeout_seconds: float = 5.0,
        retry_delay_seconds: float = 2.0,
        max_retry_delay_seconds: float = 60.0,
        halted_redelivery_seconds: float = HALTED_REDELIVERY_SECONDS,
    ) -> None:
        self._js = js
        self.spec = spec
        self._event_type = event_type
        self._handler = handler
        self._on_give_up = on_give_up
        self._capacity = max_in_flight
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout_seconds
        self._retry_delay = retry_delay_seconds
        self._max_retry_delay = max_retry_delay_seconds
        self._halted_redelivery = halted_redelivery_seconds
        # A third of ack_wait leaves two missed beats of slack before the server redelivers.
        self._heartbeat_every = spec.ack_wait_seconds / 3
        self._in_flight: dict[asyncio.Task[None], Msg] = {}
        consumer_at_zero(spec.durable)
        # Labelled metric children looked up once, not per message.
        self._in_flight_gauge = MESSAGES_IN_FLIGHT.labels(spec.durable)
        self._redelivered = MESSAGES_REDELIVERED.labels(spec.durable)
        self._handling_seconds = MESSAGE_HANDLING_SECONDS.labels(spec.durable)
        self._handled: dict[str, Any] = {}
        self._slot_freed = asyncio.Event()
        self._fetcher: asyncio.Task[None] | None = None
        self._lag_reporter: asyncio.Task[None] | None = None
        self._pulls: PullRequests | None = None
        self._halted_leftovers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self.halted: Misconfigured | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        await ensure_consumer(self._js, self.spec)
        self._pulls = await PullRequests.open(self._js, self.spec)
        self._fetcher = asyncio.create_task(self._fetch_loop(self._pulls), name=f"fetch:{self.spec.durable}")
        self._lag_reporter = asyncio.create_task(self._report_lag(), name=f"lag:{self.spec.durable}")

    async def stop(self, grace_seconds: float) -> None:
        """Stop fetching, let in-flight work finish for ``grace_seconds``, then release the rest."""
        self._stopping = True
        self._stop_requested.set()
        background = [task for task in (self._fetcher, self._lag_reporter) if task is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self._pulls is not None:
            # Messages of a pull request still open would sit in the inbox; left subscribed, the
            # connection's drain would wait its full timeout for them.
            await quietly(self._pulls.close())
        if self._in_flight:
            log.info(
                "%s: waiting up to %.0fs for %d in-flight messages", self.spec.durable, grace_seconds, self.in_flight
            )
            await asyncio.wait(list(self._in_flight), timeout=grace_seconds or None)
        leftovers = dict(self._in_flight)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        for msg in leftovers.values():
            # Released now rather than after ack_wait, so another replica takes it at once.
            await quietly(msg.nak())

    async def _fetch_loop(self, pulls: "PullRequests") -> None:
        while not self._stopping and self.halted is None:
            free = self._capacity - len(self._in_flight)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                await pulls.pull(min(free, self._fetch_batch), self._fetch_timeout, self._dispatch)
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError, OSError) as exc:
                log.warning("%s: pull request failed (%s); retrying", self.spec.durable, reason(exc))
                await asyncio.sleep(1)
            except Exception:
                log.exception("%s: pull request failed; retrying", self.spec.durable)
                await asyncio.sleep(1)

    def _dispatch(self, msg: Msg) -> None:
        """A message has arrived: its lease starts beating now, whatever else the pull still brings."""
        if self.halted is not None:  # halted while this pull was open: give it back
            giving_back = asyncio.create_task(quietly(msg.nak()))
            self._halted_leftovers.add(giving_back)
            giving_back.add_done_callback(self._halted_leftovers.discard)
            return
        task = asyncio.create_task(self._deliver(msg))
        self._in_flight[task] = msg
        task.add_done_callback(self._release)

    def _release(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._in_flight_gauge.set(len(self._in_flight))
        self._slot_freed.set()

    async def _report_lag(self) -> None:
        """Export the server's view of this consumer (the backlog KEDA scales on) and of the dead letters."""
        while not self._stopping:
            try:
                info = await self._js.consumer_info(self.spec.stream, self.spec.durable)
                CONSUMER_PENDING.labels(self.spec.durable).set(info.num_pending or 0)
                CONSUMER_ACK_PENDING.labels(self.spec.durable).set(info.num_ack_pending or 0)
                dead = await self._js.stream_info(DEAD_LETTERS.name)
                DEAD_LETTER_STREAM_MESSAGES.set(dead.state.messages)
            except Exception as exc:  # the broker is away: keep the last values, try again later
                log.debug("%s: lag report failed: %s", self.spec.durable, reason(exc))
            # Not a plain sleep: a stop landing while a report's reply is in can have its cancellation
            # swallowed by the asyncio.wait_for inside nats-py's request (Python < 3.12), and must still
            # end this loop at once rather than leave stop() waiting for it forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LAG_REFRESH_SECONDS):
                    await self._stop_requested.wait()

    async def _deliver(self, msg: Msg) -> None:
        started = time.monotonic()
        self._in_flight_gauge.set(len(self._in_flight))
        if (msg.metadata.num_delivered or 1) > 1:
            self._redelivered.inc()
        lease = Lease(msg, self._heartbeat_every)
        outcome = "error"
        try:
            outcome = await tracing.delivery(msg, self.spec.durable, self._run_handler)
        except Exception:
            # The ack/nak itself failed (connection lost): the server redelivers after ack_wait.
            log.exception("%s: could not settle message %s", self.spec.durable, msg.subject)
        finally:
            lease.end()
            handled = self._handled.get(outcome)
            if handled is None:
                handled = self._handled[outcome] = MESSAGES_HANDLED.labels(self.spec.durable, outcome)
            handled.inc()
            self._handling_seconds.observe(time.monotonic() - started)
            log.info("%s: %s %s in %.2fs", self.spec.durable, msg.subject, outcome, time.monotonic() - started)

    async def _run_handler(self, msg: Msg) -> str:
        attempt = msg.metadata.num_delivered or 1
        last_attempt = attempt >= self.spec.max_deliver
        try:
            try:
                event = self._event_type.read(msg.data)
            except pydantic.ValidationError as exc:
                raise GiveUp("malformed_event", str(exc.errors()[:3])) from exc
            except ValueError as exc:  # not JSON at all, to an event type that parses it first
                raise GiveUp("malformed_event", str(exc)) from exc
            bind_request_id(event.request_id)  # every log line (and LLM ledger row) of this delivery names it
            await self._handler(event)
        except asyncio.CancelledError:
            raise
        except GiveUp as exc:
            return await self._give_up(msg, exc)
        except Misconfigured as exc:
            return await self._halt(msg, exc)
        except RetryLater as exc:
            if last_attempt:
                return await self._give_up(msg, GiveUp(exc.reason, f"still failing after {attempt} attempts"))
            delay = exc.delay_seconds if exc.delay_seconds is not None else self._backoff(attempt)
            log.warning("%s: attempt %d will be retried in %.1fs: %s", self.spec.durable, attempt, delay, exc.reason)
            await msg.nak(delay=delay)
            return "retried"
        except Exception as exc:
            if last_attempt:
                return await self._give_up(msg, GiveUp("unexpected_error", f"{type(exc).__name__}: {exc}"))
            delay = self._backoff(attempt)
            log.exception("%s: attempt %d failed; retrying in %.1fs", self.spec.durable, attempt, delay)
            await msg.nak(delay=delay)
            return "retried"
        # Effects are durable (committed or acknowledged publishes): now, and only now, ack. Sent
        # without waiting for the server's confirmation (a round trip per message): every handler
        # is idempotent, so an ack lost with the connection costs a redelivery that repeats nothing.
        await msg.ack()
        return "acked"

    async def _give_up(self, msg: Msg, exc: GiveUp) -> str:
        log.error("%s: giving up on %s: %s", self.spec.durable, msg.subject, exc)
        try:
            await dead_letter(self._js, msg, consumer=self.spec.durable, reason=exc.reason, detail=exc.detail)
            if self._on_give_up is not None:
                await self._on_give_up(msg, exc)
        except Exception:
            # The failure could not be recorded: keep the message so a later attempt can. Past
            # max_deliver the server will not redeliver it; the sweeper re-drives the request.
            log.exception("%s: recording the failure failed; will retry", self.spec.durable)
            await msg.nak(delay=self._backoff(1))
            return "retried"
        await msg.term()
        DEAD_LETTERED.labels(self.spec.durable, exc.reason).inc()
        return "gave_up"

    async def _halt(self, msg: Msg, exc: Misconfigured) -> str:
        if self.halted is None:
            self.halted = exc
            CONSUMER_HALTED.labels(self.spec.durable, exc.reason).set(1)
            log.critical("%s: halted, taking no more work until the service is fixed: %s", self.spec.durable, exc)
        await msg.nak(delay=self._halted_redelivery)
        return "halted"

    def _backoff(self, attempt: int) -> float:
        base = min(self._max_retry_delay, self._retry_delay * float(2 ** (attempt - 1)))
        return base * random.uniform(0.8, 1.2)


class NoneHalted:
    """A readiness check: false once any consumer run under it has halted (see ``Misconfigured``)."""

    def __init__(self) -> None:
        self._consumers: list[LeasedConsumer[Any]] = []

    def watch(self, consumers: Sequence[LeasedConsumer[Any]]) -> None:
        self._consumers = list(consumers)

    async def __call__(self) -> bool:
        return all(consumer.halted is None for consumer in self._consumers)


@asynccontextmanager
async def consuming(
    consumers: Sequence[LeasedConsumer[Any]], grace_seconds: float, halts: NoneHalted | None = None
) -> AsyncIterator[None]:
    """Run the consumers for the duration of the block; on exit drain them all at once."""
    if halts is not None:
        halts.watch(consumers)
    started: list[LeasedConsumer[Any]] = []
    try:
        for consumer in consumers:
            await consumer.start()
            started.append(consumer)
        yield
    finally:
        await asyncio.gather(*(consumer.stop(grace_seconds) for consumer in started))
