"""One process's calls to one model in the shared line (``service_runtime.llm.budget``).

The process keeps its waiting calls in the line's order (priority lane, then the user who has taken
least, then the longest waiting) and only its head asks the shared entry, as one waiter: the entry
stays small and is written about once per admitted call, however many calls wait here. Each waiting
call is told its place and expected wait (``CallTerms.on_wait``); the provider's own figures, heard
by the adapters, lower the shared budget when they say so (``heard``).
"""

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import nats.errors

from service_runtime.llm.budget import Budgets, Decision, Limits
from service_runtime.llm.terms import CallTerms, WaitListener
from service_runtime.logs import reason

__all__ = ["Line"]

log = logging.getLogger(__name__)

_TELL_EVERY_SECONDS = 5.0  # how often a waiting call tells its place in line


@dataclass(eq=False)
class _Waiting:
    key: str
    need: int
    terms: CallTerms
    since: float
    admitted: "asyncio.Future[None]"
    told_at: float = -math.inf


class Line:
    """This process's calls to one model, in the shared line's order; only its head asks the shared
    budget (as one waiter, ``ticket``), so the shared entry is written about once per admitted call."""

    def __init__(self, model: str, budgets: Budgets, limits: Limits, clock: Callable[[], float]) -> None:
        self._model = model
        self._budgets = budgets
        self._limits = limits
        self._clock = clock
        self._ticket = uuid.uuid4().hex[:12]
        self._waiting: list[_Waiting] = []
        self._use: Mapping[str, float] = {}
        self._arrived = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._learnt_at = -math.inf

    def heard(self, headers: Mapping[str, str]) -> None:
        """The provider's own figures: a lower token limit than ours, or fewer tokens left than a
        tenth of the budget (someone else spends too), are written into the shared entry, at most
        once a second. Otherwise nothing is read or written: the common case costs nothing."""
        limit = _int(headers.get("x-ratelimit-limit-tokens"))
        remaining = _int(headers.get("x-ratelimit-remaining-tokens"))
        tpm = self._limits.tokens_per_minute
        lower = limit is not None and limit < tpm
        short = remaining is not None and remaining < tpm / 10
        now = self._clock()
        if not (lower or short) or now < self._learnt_at + 1.0:
            return
        self._learnt_at = now
        asyncio.get_running_loop().create_task(self._learn(limit, remaining, now))

    async def _learn(self, limit: int | None, remaining: int | None, now: float) -> None:
        try:
            await self._budgets.learn(
                self._model, tokens_per_minute=limit, remaining_tokens=remaining, limits=self._limits, now=now
            )
        except Exception as exc:  # best effort: the next reply says it again
            log.warning("could not learn the provider's figures for %s: %s", self._model, reason(exc))

    async def turn(self, key: str, need: int, terms: CallTerms) -> None:
        waiting = _Waiting(key, need, terms, self._clock(), asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self._arrived.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run(), name=f"llm-line-{self._model}")
        try:
            await waiting.admitted
        finally:
            if waiting in self._waiting:  # cancelled while waiting
                self._waiting.remove(waiting)

    def _order(self, waiting: _Waiting) -> tuple[bool, float, float]:
        return (waiting.terms.lane != "priority", self._use.get(waiting.terms.user, 0.0), waiting.since)

    async def _run(self) -> None:
        try:
            while True:
                in_line = False  # whether the shared entry holds this line as waiting
                while self._waiting:
                    head = min(self._waiting, key=self._order)
                    decision = await self._attempt(head)
                    if decision is None or decision.admitted:
                        in_line = False
                        self._admit(head)
                        continue
                    in_line = True
                    self._use = decision.use
                    self._tell(decision)
                    self._arrived.clear()  # a call arriving meanwhile may be the new head: ask again at once
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(decision.wait_seconds * random.uniform(0.8, 1.2)):
                            await self._arrived.wait()
                if not in_line:
                    return
                # Its calls went (cancelled): out of the line now, or its place would hold the lines
                # behind it until it went stale. A call arriving meanwhile is taken up again.
                with contextlib.suppress(Exception):
                    await self._budgets.leave(self._model, ticket=self._ticket)
        except Exception as exc:  # never leave calls waiting on a dead pump: they go unmetered
            log.exception("the %s line failed (%s); letting its calls go", self._model, reason(exc))
            for waiting in list(self._waiting):
                self._admit(waiting)

    async def _attempt(self, head: _Waiting) -> Decision | None:
        """The shared budget's decision on ``head``; None when it is out of reach (NATS restarting):
        the call goes as if no budget were shared, and the provider's 429s, should they come, are retried."""
        try:
            return await self._budgets.attempt(
                self._model,
                ticket=self._ticket,
                need=head.need,
                user=head.terms.user,
                lane=head.terms.lane,
                limits=self._limits,
                now=self._clock(),
                since=head.since,
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.warning("%s: the shared budget is unreachable (%s); calling without it", head.key, reason(exc))
            return None

    def _admit(self, waiting: _Waiting) -> None:
        if waiting in self._waiting:
            self._waiting.remove(waiting)
        if not waiting.admitted.done():
            waiting.admitted.set_result(None)

    def _tell(self, decision: Decision) -> None:
        """Each waiting call's place in line and expected wait: its line's place, then the calls
        ahead of it here."""
        rate = self._limits.tokens_per_minute / 60
        ahead = 0
        now = self._clock()
        for index, waiting in enumerate(sorted(self._waiting, key=self._order)):
            listener = waiting.terms.on_wait
            if listener is not None and now >= waiting.told_at + _TELL_EVERY_SECONDS:
                waiting.told_at = now
                expected = decision.expected_wait_seconds + ahead / rate
                asyncio.get_running_loop().create_task(_tell(listener, decision.position + index + 1, expected))
            ahead += waiting.need


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _tell(listener: WaitListener, position: int, expected_seconds: float) -> None:
    """Best effort: the place in line is news for the app, not part of the call."""
    try:
        await listener(position, expected_seconds)
    except Exception as exc:
        log.warning("could not tell a waiting call's place in line: %s", reason(exc))
