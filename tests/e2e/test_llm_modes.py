"""A plan completes in every generation mode and LLM mode against a simulator that refuses what
OpenAI refuses: strict schemas outside the subset, unknown parameters, output caps past the model."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import NatsServer
from tests.e2e.conftest import E2E_ENV
from tests.e2e.test_pipeline import SEED_PROFILE, submit, wait_for_end
from tests.stack import ServiceStack

pytestmark = pytest.mark.e2e

# The default (parallel, chat_stream) is the session stack's mode: test_pipeline.py covers it;
# progressive is test_weeks_stream.py's (chat) and test_parallel_planning.py's (both adapters).
MODES = [
    ("parallel", "responses_background", {"PlanSkeleton", "TrainingWeek"}),
    ("single", "chat_stream", {"WorkoutPlan"}),
    ("single", "responses_background", {"WorkoutPlan"}),
]


@pytest.fixture(params=MODES, ids=[f"{g}-{m}" for g, m, _ in MODES])
def mode_stack(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceStack, set[str]]]:
    generation, llm_mode, schemas = request.param
    workdir: Path = tmp_path_factory.mktemp(f"{generation}-{llm_mode}")
    # A broker of its own: the session stack's planner must not take these requests.
    with NatsServer(workdir / "nats") as nats:
        env = {
            **E2E_ENV,
            "PLANNER_GENERATION": generation,
            "PLANNER_LLM_MODE": llm_mode,
            "PLANNER_POLL_INTERVAL_SECONDS": "0.5",
        }
        with ServiceStack(
            nats_url=nats.url, database_url=database_url, log_path=workdir / "services.log", env=env
        ) as stack:
            yield stack, schemas


async def test_a_plan_completes_in_every_mode_on_the_refusing_simulator(
    mode_stack: tuple[ServiceStack, set[str]],
) -> None:
    stack, schemas = mode_stack
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, SEED_PROFILE, user)
        snapshot = await wait_for_end(client, stack, request_id, user)
        stats = (await client.get(f"{stack.simulator_url}/_sim/stats")).json()
    assert snapshot["status"] == "completed", (snapshot, stack.log_tail())
    billed = {name for name, count in stats["billed_by_schema"].items() if count}
    assert schemas <= billed, stats["billed_by_schema"]  # the mode really ran, its schemas accepted
    assert "WorkoutPlan" not in billed or schemas == {"WorkoutPlan"}
