"""The provider's per-minute budget of a model, shared by every replica that calls it.

OpenAI meters each model's tokens and requests per minute for the whole account, refilled
continuously, and counts a request at admission as the larger of its prompt estimate and its
output cap. Every planner and profiler replica takes from that one budget, so they agree on it
here: one JetStream key-value entry per model (``contracts.streams.LLM_BUDGETS``) holds what is
left now and who is waiting, and a call is let through only when that entry says it fits; the
provider then has no reason to answer 429.

``admit`` is the rule, a pure function over the entry:

- The budget refills at its limit per minute, as the provider's does. A call takes its estimate
  when admitted; nothing is held afterwards, so a replica that dies mid-call leaks nothing beyond
  what the provider itself counted (the refill returns it within the minute).
- Calls that do not fit wait in one line, in this order: the priority lane first; then, within a
  lane, the user who has taken least over the last minute (use decays with a one-minute time
  constant); then the longest waiting. Only the head of the line is admitted, so a heavy user's
  burst cannot starve the others and a priority call waits only for tokens to refill.
- The entry holds one waiter per *line* (``ticket``), not per call: each replica keeps its own
  calls in order (``service_runtime.llm.admission``) and only its head asks here, so the entry
  stays small and a replica writes it about once per admitted call, however many calls wait. A
  line that stops asking (its replica died) drops out after ``STALE_SECONDS``.

``KvBudgets`` keeps the entries in JetStream (compare-and-set: replicas never overwrite each
other); ``MemoryBudgets`` is the in-memory twin for tests.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from service_runtime.buckets import Bucket, Conflict
from service_runtime.llm.terms import Lane

__all__ = ["BudgetState", "Budgets", "Decision", "KvBudgets", "Limits", "MemoryBudgets", "admit", "learnt", "refilled"]

STALE_SECONDS = 10.0
_MINUTE = 60.0
_FORGOTTEN_USE = 1.0  # tokens of decayed use below which a user is forgotten


@dataclass(frozen=True)
class Limits:
    tokens_per_minute: int
    requests_per_minute: int


class Waiter(BaseModel):
    user: str
    lane: Lane
    since: float
    seen: float
    need: int = 0


class BudgetState(BaseModel):
    at: float
    tokens: float
    requests: float
    tokens_per_minute: int
    requests_per_minute: int
    use: dict[str, float] = {}
    waiting: dict[str, Waiter] = {}


@dataclass(frozen=True)
class Decision:
    admitted: bool
    position: int  # in the line; 0 when admitted
    wait_seconds: float  # a good time to ask again (0 when admitted)
    # Until the budget holds this call's tokens and those of every call ahead of it (0 when admitted).
    expected_wait_seconds: float = 0.0
    # Users' recent use, for ordering a replica's own calls the same way.
    use: Mapping[str, float] = field(default_factory=dict)


def fresh(limits: Limits, now: float) -> BudgetState:
    return BudgetState(
        at=now,
        tokens=limits.tokens_per_minute,
        requests=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        requests_per_minute=limits.requests_per_minute,
    )


def admit(
    state: BudgetState,
    *,
    now: float,
    ticket: str,
    need: int,
    user: str,
    lane: Lane,
    limits: Limits,
    since: float | None = None,
) -> tuple[BudgetState, Decision]:
    """Whether the head of line ``ticket`` (a call of ``need`` tokens for ``user`` in ``lane``,
    waiting since ``since``) goes now, and the entry after."""
    state = refilled(state, now, limits)
    known = state.waiting.get(ticket)
    arrived = since if since is not None else (known.since if known is not None else now)
    mine = Waiter(user=user, lane=lane, since=arrived, seen=now, need=need)
    line = sorted(
        {**state.waiting, ticket: mine}.items(),
        key=lambda item: (item[1].lane != "priority", state.use.get(item[1].user, 0.0), item[1].since, item[0]),
    )
    position = next(i for i, (key, _) in enumerate(line) if key == ticket)
    need = min(need, state.tokens_per_minute)  # a call larger than the whole budget waits for a full one
    if position == 0 and state.tokens >= need and state.requests >= 1:
        waiting = {k: w for k, w in state.waiting.items() if k != ticket}
        use = _heaviest({**state.use, user: state.use.get(user, 0.0) + need})
        admitted = state.model_copy(
            update={"tokens": state.tokens - need, "requests": state.requests - 1, "use": use, "waiting": waiting}
        )
        return admitted, Decision(True, 0, 0.0, use=use)
    waiting = {**state.waiting, ticket: mine}
    rate = state.tokens_per_minute / _MINUTE
    ahead = sum(min(w.need, state.tokens_per_minute) for _, w in line[:position])
    expected = max(ahead + need - state.tokens, 0.0) / rate
    short = max(need - state.tokens, 0.0) / rate
    short = max(short, max(1 - state.requests, 0.0) / (state.requests_per_minute / _MINUTE))
    # Behind others: their needs come first; ask again soon enough to notice one's turn.
    wait = min(max(short, 0.05), 2.0) if position == 0 else min(max(short, 0.25), 2.0)
    return state.model_copy(update={"waiting": waiting}), Decision(False, position, wait, expected, state.use)


_USERS_KEPT = 500  # the heaviest users' use is what ordering needs; the rest count as none


def _heaviest(use: dict[str, float]) -> dict[str, float]:
    if len(use) <= _USERS_KEPT:
        return use
    return dict(sorted(use.items(), key=lambda item: item[1], reverse=True)[:_USERS_KEPT])


def learnt(state: BudgetState, *, tokens_per_minute: int | None, remaining_tokens: int | None) -> BudgetState:
    """The entry after the provider's own figures (``x-ratelimit-*``): a lower limit than configured
    is the account's real one, and fewer tokens left than we think means someone else spends too."""
    update: dict[str, float | int] = {}
    if tokens_per_minute is not None and 0 < tokens_per_minute < state.tokens_per_minute:
        update["tokens_per_minute"] = tokens_per_minute
    if remaining_tokens is not None and remaining_tokens < state.tokens:
        update["tokens"] = float(remaining_tokens)
    return state.model_copy(update=update) if update else state


def refilled(state: BudgetState, now: float, limits: Limits) -> BudgetState:
    elapsed = max(now - state.at, 0.0)
    tpm = min(state.tokens_per_minute, limits.tokens_per_minute) or limits.tokens_per_minute
    rpm = limits.requests_per_minute
    decay = math.exp(-elapsed / _MINUTE)
    return BudgetState(
        at=max(now, state.at),
        tokens=min(float(tpm), state.tokens + elapsed * tpm / _MINUTE),
        requests=min(float(rpm), state.requests + elapsed * rpm / _MINUTE),
        tokens_per_minute=tpm,
        requests_per_minute=rpm,
        use={u: t * decay for u, t in state.use.items() if t * decay >= _FORGOTTEN_USE},
        waiting={k: w for k, w in state.waiting.items() if now - w.seen <= STALE_SECONDS},
    )


class Budgets(Protocol):
    """Port: one attempt to admit a call against a model's shared budget."""

    async def attempt(
        self,
        model: str,
        *,
        ticket: str,
        need: int,
        user: str,
        lane: Lane,
        limits: Limits,
        now: float,
        since: float | None = None,
    ) -> Decision: ...

    async def learn(
        self, model: str, *, tokens_per_minute: int | None, remaining_tokens: int | None, limits: Limits, now: float
    ) -> None: ...

    async def leave(self, model: str, *, ticket: str) -> None:
        """The call stops waiting (cancelled): out of the line at once rather than when stale."""
        ...


class MemoryBudgets:
    """The budgets of one process, in memory (tests, or a single replica)."""

    def __init__(self) -> None:
        self.states: dict[str, BudgetState] = {}

    async def attempt(
        self,
        model: str,
        *,
        ticket: str,
        need: int,
        user: str,
        lane: Lane,
        limits: Limits,
        now: float,
        since: float | None = None,
    ) -> Decision:
        state = self.states.get(model) or fresh(limits, now)
        self.states[model], decision = admit(
            state, now=now, ticket=ticket, need=need, user=user, lane=lane, limits=limits, since=since
        )
        return decision

    async def learn(
        self, model: str, *, tokens_per_minute: int | None, remaining_tokens: int | None, limits: Limits, now: float
    ) -> None:
        state = refilled(self.states.get(model) or fresh(limits, now), now, limits)
        self.states[model] = learnt(state, tokens_per_minute=tokens_per_minute, remaining_tokens=remaining_tokens)

    async def leave(self, model: str, *, ticket: str) -> None:
        if (state := self.states.get(model)) is not None:
            state.waiting.pop(ticket, None)


class KvBudgets:
    """The budgets in a JetStream key-value bucket, one key per model, changed by compare-and-set."""

    def __init__(self, bucket: Bucket[BudgetState]) -> None:
        self._bucket = bucket

    async def attempt(
        self,
        model: str,
        *,
        ticket: str,
        need: int,
        user: str,
        lane: Lane,
        limits: Limits,
        now: float,
        since: float | None = None,
    ) -> Decision:
        while True:
            entry = await self._bucket.entry(model)
            state = entry.value if entry is not None else fresh(limits, now)
            after, decision = admit(
                state, now=now, ticket=ticket, need=need, user=user, lane=lane, limits=limits, since=since
            )
            try:
                if entry is None:
                    await self._bucket.create(model, after)
                else:
                    await self._bucket.update(model, after, last=entry.revision)
            except Conflict:
                continue  # another replica changed it: decide again on what it wrote
            return decision

    async def learn(
        self, model: str, *, tokens_per_minute: int | None, remaining_tokens: int | None, limits: Limits, now: float
    ) -> None:
        for _ in range(3):  # best effort: the next reply says it again
            entry = await self._bucket.entry(model)
            if entry is None:
                return
            state = refilled(entry.value, now, limits)
            after = learnt(state, tokens_per_minute=tokens_per_minute, remaining_tokens=remaining_tokens)
            if after is state:
                return
            try:
                await self._bucket.update(model, after, last=entry.revision)
                return
            except Conflict:
                continue

    async def leave(self, model: str, *, ticket: str) -> None:
        for _ in range(3):
            entry = await self._bucket.entry(model)
            if entry is None or ticket not in entry.value.waiting:
                return
            waiting = {k: w for k, w in entry.value.waiting.items() if k != ticket}
            try:
                await self._bucket.update(
                    model, entry.value.model_copy(update={"waiting": waiting}), last=entry.revision
                )
                return
            except Conflict:
                continue
