"""The app's side of a fault run: plan requests sent through the gateway's HTTP API, as a client would."""

import asyncio
import dataclasses
import random
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import httpx

from tests.stack import ServiceStack

# Few enough shapes that plans share most of their exercises, as a growing catalogue would.
PROFILES = (
    "I want to build muscle, {n}x per week, I have a full gym",
    "Fat loss, {n} days a week, dumbbells only",
    "Get stronger, {n}x per week, full gym, I have a bad knee",
    "General fitness at home, no equipment, {n} days a week",
    "Intermediate lifter, hypertrophy, {n} days a week, full gym, lower back pain",
)

Outcome = Literal["accepted", "rejected", "ambiguous"]


@dataclass(frozen=True)
class PlanOrder:
    """One request to send: when, as whom, with what text, and which forced fault (if any) it carries."""

    at: float
    user_id: uuid.UUID
    profile: str
    forced: str | None = None
    review_seconds: int = 0  # > 0: the request asks to see its skeleton first (and nobody answers)


@dataclass
class Submission:
    order: PlanOrder
    outcome: Outcome = "rejected"
    request_id: str | None = None
    attempts: int = 0
    detail: str = ""
    accepted_at: float | None = None


def draw_orders(
    *,
    seed: int,
    plans: int,
    spread_seconds: float,
    forced: dict[str, int] | None = None,
    reviews: int = 0,
    review_seconds: int = 2,
) -> list[PlanOrder]:
    """``plans`` orders spread uniformly over the window; ``forced`` maps a fault kind to how many of
    them carry ``[[sim:fault=<kind>]]`` (placed early, so they run while the chaos does); ``reviews``
    of the others, spread evenly, ask to see their skeleton first for ``review_seconds`` (nobody
    answers: each must go on by itself once its wait runs out)."""
    rng = random.Random(seed)
    orders = []
    forced_kinds = [kind for kind, count in (forced or {}).items() for _ in range(count)]
    for index in range(plans):
        text = rng.choice(PROFILES).format(n=rng.choice((3, 3, 4, 5)))
        kind = forced_kinds[index] if index < len(forced_kinds) else None
        if kind is not None:
            text = f"{text} [[sim:fault={kind}]]"
        at = rng.uniform(0, 0.3) * spread_seconds if kind else rng.uniform(0, 1) * spread_seconds
        orders.append(PlanOrder(at, uuid.UUID(int=rng.getrandbits(128), version=4), text, kind))
    unforced = [i for i, order in enumerate(orders) if order.forced is None]
    for i in unforced[:: max(1, len(unforced) // reviews)][:reviews] if reviews else ():
        orders[i] = dataclasses.replace(orders[i], review_seconds=review_seconds)
    return sorted(orders, key=lambda o: o.at)


async def submit_all(
    stack: ServiceStack, orders: list[PlanOrder], *, concurrency: int, started: float, give_up_after: float = 90.0
) -> list[Submission]:
    """Send every order at its time, at most ``concurrency`` in flight.

    A refused connection or a 503 stored nothing, so it is retried (bounded); a reply lost after the
    request was sent may or may not have stored a row, so it is not retried: the checker reads every
    row in the database, whoever knows its id.
    """
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=3.0)) as client:

        async def one(order: PlanOrder) -> Submission:
            await asyncio.sleep(max(0.0, started + order.at - time.monotonic()))
            async with gate:
                return await _submit(client, stack, order, started, give_up_after)

        return list(await asyncio.gather(*(one(o) for o in orders)))


async def _submit(
    client: httpx.AsyncClient, stack: ServiceStack, order: PlanOrder, started: float, give_up_after: float
) -> Submission:
    submission = Submission(order)
    deadline = time.monotonic() + give_up_after
    while time.monotonic() < deadline:
        submission.attempts += 1
        try:
            response = await client.post(
                f"{stack.gateway_url}/functions/v1/trigger-workout-plan",
                headers={"Authorization": f"Bearer {stack.token(order.user_id)}"},
                json={"userProfile": order.profile}
                | ({"reviewSkeletonSeconds": order.review_seconds} if order.review_seconds else {}),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            submission.detail = f"{type(exc).__name__}"
        except httpx.TransportError as exc:
            submission.outcome, submission.detail = "ambiguous", f"{type(exc).__name__}: {exc}"
            return submission
        else:
            if response.status_code == 202:
                submission.outcome = "accepted"
                submission.request_id = str(response.json()["request_id"])
                submission.accepted_at = time.monotonic() - started
                return submission
            submission.detail = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code not in (502, 503, 504):
                return submission
        await asyncio.sleep(min(3.0, 0.3 * submission.attempts))
    return submission
