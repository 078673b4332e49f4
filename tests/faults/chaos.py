"""The chaos schedule of a fault run: what breaks when, drawn from a seed, and the executor that does it."""

import asyncio
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from contracts import roster
from devstack import NatsServer, PostgresServer
from tests.stack import ServiceStack

log = logging.getLogger("faults.chaos")

Action = Literal["kill", "nats_restart", "postgres_restart", "freeze"]


@dataclass(frozen=True)
class ChaosEvent:
    """One planned fault, ``at`` seconds after the load starts."""

    at: float
    action: Action
    target: str = ""
    hold_seconds: float = 0.0


@dataclass
class ChaosRecord:
    """What actually happened for one event (times relative to the load's start)."""

    event: ChaosEvent
    started: float
    finished: float = 0.0
    ok: bool = True
    detail: str = ""
    in_flight_at_start: int | None = None


def draw_schedule(
    *,
    seed: int,
    window_seconds: float,
    kills: int,
    replicas: dict[str, Sequence[str]],
    nats_restart: bool,
    postgres_restart: bool,
    freeze: str | None,
    freeze_seconds: float,
) -> list[ChaosEvent]:
    """Kills spread over the window, the four services taking turns (each gets ``kills // 4`` or one
    more); the broker restart at 35 % of the window, the database restart at 60 %, the freeze at 15 %."""
    rng = random.Random(seed)
    services = list(roster.NAMES)
    rng.shuffle(services)
    events: list[ChaosEvent] = []
    for index in range(kills):
        service = services[index % len(services)]
        at = rng.uniform(0.05, 0.9) * window_seconds
        # The frozen replica is left alone: it must resume and finish its stale work by itself.
        targets = [name for name in replicas[service] if name != freeze] or list(replicas[service])
        events.append(ChaosEvent(at, "kill", rng.choice(targets)))
    if freeze:
        events.append(ChaosEvent(0.15 * window_seconds, "freeze", freeze, freeze_seconds))
    if nats_restart:
        events.append(ChaosEvent(0.35 * window_seconds, "nats_restart", "nats"))
    if postgres_restart:
        events.append(ChaosEvent(0.6 * window_seconds, "postgres_restart", "postgres"))
    return sorted(events, key=lambda e: e.at)


@dataclass
class Chaos:
    """Runs a schedule against a stack and the servers it uses, one event at a time."""

    stack: ServiceStack
    nats: NatsServer
    postgres: PostgresServer
    rng: random.Random
    outage_seconds: float = 2.0
    in_flight: Callable[[], Awaitable[int | None]] | None = None
    records: list[ChaosRecord] = field(default_factory=list)

    async def run(self, schedule: Sequence[ChaosEvent], started: float) -> None:
        # Events run in order; one that starts late (the previous took long) runs at once.
        for event in schedule:
            delay = started + event.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            record = ChaosRecord(event, time.monotonic() - started)
            self.records.append(record)
            try:
                await self._do(event, record)
            except Exception as exc:
                record.ok = False
                record.detail = f"{type(exc).__name__}: {exc}"[:2000]
                log.error("chaos event %s %s failed: %s", event.action, event.target, record.detail)
            record.finished = time.monotonic() - started
            log.info(
                "chaos %-16s %-11s at %6.1fs took %5.1fs %s",
                event.action,
                event.target,
                record.started,
                record.finished - record.started,
                "ok" if record.ok else "FAILED",
            )

    async def _do(self, event: ChaosEvent, record: ChaosRecord) -> None:
        if event.action == "kill":
            await asyncio.to_thread(self.stack.kill, event.target, signal.SIGKILL)
            # A short, random downtime: messages in flight time out, clients see refused connections.
            await asyncio.sleep(self.rng.uniform(0.2, 1.5))
            await self._restart_service(event.target, record)
        elif event.action == "nats_restart":
            await asyncio.to_thread(self.nats.stop)
            await asyncio.sleep(self.outage_seconds)
            await asyncio.to_thread(self.nats.start)
        elif event.action == "postgres_restart":
            await asyncio.to_thread(self.postgres.stop)
            await asyncio.sleep(self.outage_seconds)
            await asyncio.to_thread(self.postgres.start)
        elif event.action == "freeze":
            if self.in_flight is not None:
                record.in_flight_at_start = await self.in_flight()
            self.stack.freeze(event.target)
            try:
                await asyncio.sleep(event.hold_seconds)
            finally:
                self.stack.thaw(event.target)

    async def _restart_service(self, name: str, record: ChaosRecord) -> None:
        # A worker may exit while starting if the broker or database is mid-restart; try again.
        for attempt in range(1, 4):
            try:
                await asyncio.to_thread(self.stack.restart, name, timeout=45)
                if attempt > 1:
                    record.detail = f"came back on start attempt {attempt}"
                return
            except Exception as exc:
                record.detail = f"start attempt {attempt}: {type(exc).__name__}: {str(exc)[:300]}"
                await asyncio.sleep(2)
        raise RuntimeError(f"{name} did not come back after 3 starts; last: {record.detail}")
