"""Weeks shown as they are written (progressive generation), through the real services: each week
version and the final status exactly once on a client's stream, through planner and gateway kills
and reconnects with ``Last-Event-ID``; provisional weeks readable while the request is processing,
and none listed once it ended."""

import asyncio
import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack import NatsServer
from tests.e2e.conftest import E2E_ENV
from tests.e2e.test_pipeline import submit
from tests.stack import ServiceStack

pytestmark = pytest.mark.e2e

PROFILES = [
    "I want to build muscle, 3x per week, I have a full gym",
    "Lose fat, 4 days a week, dumbbells only",
    "Get stronger, 3 days a week, barbell and rack at home, bad knee",
]
# Paced so that a plan takes ~6 s: kills land while weeks are being written.
PACED = {"SIM_TOKENS_PER_SECOND": "100", "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.2"}
# Kills in the short version; E2E_WEEKS_KILLS=20 for the acceptance's long one.
KILLS = int(os.environ.get("E2E_WEEKS_KILLS", "3"))


@pytest.fixture(scope="module")
def weeks_stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    workdir: Path = tmp_path_factory.mktemp("progressive")
    with NatsServer(workdir / "nats") as nats:
        env = {**E2E_ENV, **PACED, "PLANNER_GENERATION": "progressive", "GATEWAY_STREAM_RECHECK_SECONDS": "2"}
        with ServiceStack(
            nats_url=nats.url, database_url=database_url, log_path=workdir / "services.log", env=env
        ) as stack:
            yield stack


@dataclass
class Watcher:
    """One app following one request's stream, reconnecting with the last event id it saw."""

    stack: ServiceStack
    request_id: str
    user: uuid.UUID
    events: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    connections: int = 0

    async def follow(self, client: httpx.AsyncClient) -> None:
        last: str | None = None
        while True:
            headers = {"Authorization": f"Bearer {self.stack.token(self.user)}"}
            if last is not None:
                headers["Last-Event-ID"] = last
            self.connections += 1
            try:
                url = f"{self.stack.gateway_url}/v1/requests/{self.request_id}/events"
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        await asyncio.sleep(0.2)  # a gateway coming back up
                        continue
                    fields: dict[str, str] = {}
                    async for line in response.aiter_lines():
                        if line:
                            if not line.startswith(":"):
                                name, _, value = line.partition(":")
                                fields[name] = value.removeprefix(" ")
                            continue
                        if "data" in fields:
                            event, event_id = fields.get("event", "message"), fields.get("id")
                            self.events.append((event, event_id, json.loads(fields["data"])))
                            last = event_id or last
                        fields = {}
                if self.ended:
                    return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                await asyncio.sleep(0.2)  # the gateway was killed mid-stream: reconnect

    @property
    def ended(self) -> bool:
        return any(e == "progress" and d["status"] != "processing" for e, _, d in self.events) or any(
            e == "snapshot" and d["status"] != "processing" for e, _, d in self.events
        )

    def weeks(self) -> list[tuple[int, int]]:
        return [(d["week"]["week"], d["week_version"]) for e, _, d in self.events if e == "week"]

    def endings(self) -> list[str]:
        return [d["status"] for e, _, d in self.events if e in ("progress", "snapshot") and d["status"] != "processing"]


async def test_weeks_appear_one_by_one_before_the_plan_and_are_listed_while_processing(
    weeks_stack: ServiceStack,
) -> None:
    stack, user = weeks_stack, uuid.uuid4()
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, PROFILES[0], user)
        watcher = Watcher(stack, request_id, user)
        following = asyncio.create_task(watcher.follow(client))
        async with asyncio.timeout(60):
            while not watcher.weeks():
                await asyncio.sleep(0.05)
            listed = (await client.get(f"{stack.gateway_url}/v1/requests/{request_id}/weeks", headers=headers)).json()
            await following
        after = (await client.get(f"{stack.gateway_url}/v1/requests/{request_id}/weeks", headers=headers)).json()
        plan = (await client.get(f"{stack.gateway_url}/v1/plans/{after['plan_id']}", headers=headers)).json()
        stranger = {"Authorization": f"Bearer {stack.token(uuid.uuid4())}"}
        hidden = await client.get(f"{stack.gateway_url}/v1/requests/{request_id}/weeks", headers=stranger)

    # Listed while processing: provisional, at least the week the stream had shown.
    assert listed["provisional"] is True and listed["status"] == "processing"
    assert len(listed["weeks"]) >= 1
    # Every week once, all before the request's end, which comes once and last.
    assert sorted(watcher.weeks()) == [(n, 1) for n in range(1, 9)]
    kinds = [event for event, _, _ in watcher.events]
    assert kinds[0] == "snapshot" and kinds[-1] == "progress"
    assert watcher.endings() == ["completed"]
    # Once completed: no provisional weeks listed; the plan of record has the weeks that were shown.
    assert (after["status"], after["provisional"], after["weeks"]) == ("completed", False, [])
    shown = {d["week"]["week"]: d["week"] for e, _, d in watcher.events if e == "week"}
    for week in plan["weeks"]:
        names = [entry["exercise"]["name"] for day in week["days"] for entry in day["entries"]]
        assert names == [item["name"] for day in shown[week["week"]]["days"] for item in day["exercises"]]
    assert hidden.status_code == 404


async def test_a_cancelled_request_leaves_its_shown_weeks_out_of_any_plan(weeks_stack: ServiceStack) -> None:
    stack, user = weeks_stack, uuid.uuid4()
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, PROFILES[1], user)
        watcher = Watcher(stack, request_id, user)
        following = asyncio.create_task(watcher.follow(client))
        async with asyncio.timeout(60):
            while not watcher.weeks():
                await asyncio.sleep(0.05)
            # Held still, so the plan cannot complete before the cancel lands.
            planners = stack.replicas_of("planner")
            for name in planners:
                stack.freeze(name)
            try:
                url = f"{stack.gateway_url}/v1/requests/{request_id}"
                before = (await client.get(f"{url}/weeks", headers=headers)).json()
                cancelled = await client.delete(url, headers=headers)
            finally:
                for name in planners:
                    stack.thaw(name)
            await following
        after = (await client.get(f"{stack.gateway_url}/v1/requests/{request_id}/weeks", headers=headers)).json()

    assert before["provisional"] is True and before["weeks"]
    assert cancelled.status_code == 200 and watcher.endings() == ["cancelled"]
    assert (after["status"], after["provisional"], after["weeks"], after["plan_id"]) == ("cancelled", False, [], None)
    conn = await asyncpg.connect(stack.database_url)
    try:
        plans = await conn.fetchval(
            "SELECT count(*) FROM workout_plans WHERE request_id = $1 OR user_id = $2", uuid.UUID(request_id), user
        )
    finally:
        await conn.close()
    assert plans == 0


@pytest.mark.timeout(90 + 15 * KILLS)
async def test_through_planner_and_gateway_kills_each_week_and_the_end_reach_every_client_once(
    weeks_stack: ServiceStack,
) -> None:
    stack = weeks_stack
    rng = random.Random(16)
    kills: Counter[str] = Counter()
    watchers: list[Watcher] = []
    following: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(timeout=30) as client:

        async def start_one() -> None:
            user = uuid.uuid4()
            request_id = await submit(client, stack, PROFILES[len(watchers) % len(PROFILES)], user)
            watchers.append(Watcher(stack, request_id, user))
            following.append(asyncio.create_task(watchers[-1].follow(client)))

        async with asyncio.timeout(60 + 15 * KILLS):
            # Requests keep arriving while planners and gateways are killed, so every kill finds
            # weeks being written and clients streaming.
            while sum(kills.values()) < KILLS:
                while stack.running("gateway") and len([t for t in following if not t.done()]) < 4:
                    await start_one()
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                victim = ("planner", "gateway")[sum(kills.values()) % 2]
                await asyncio.to_thread(stack.restart, rng.choice(stack.replicas_of(victim)))
                kills[victim] += 1
            await asyncio.gather(*following)

    assert kills["planner"] and kills["gateway"], kills
    for watcher in watchers:
        weeks = watcher.weeks()
        # Each week version exactly once (a plan whose weeks were rewritten shows version 2 too).
        assert len(weeks) == len(set(weeks)), (watcher.request_id, weeks)
        assert {n for n, _ in weeks} == set(range(1, 9)), (watcher.request_id, weeks)
        assert watcher.endings() == ["completed"], (watcher.request_id, watcher.events[-3:], stack.log_tail())
    assert sum(w.connections for w in watchers) > len(watchers)  # clients did reconnect
