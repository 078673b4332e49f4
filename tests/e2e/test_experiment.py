"""An experiment through the real services: plans split between two variants by PLANNER_EXPERIMENT,
each stored with its prompt version, model and quality scores, and reported per variant."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import asyncpg
import httpx
import pytest

from devstack import NatsServer
from services.planner.experiment import Experiment, parse_variants
from services.planner.planning import PlanWriter
from tests.e2e.conftest import E2E_ENV
from tests.e2e.test_pipeline import SEED_PROFILE, submit, wait_for_end
from tests.stack import REPO_ROOT, ServiceStack

pytestmark = pytest.mark.e2e

EXPERIMENT = "parallel=1,progressive=1"


@pytest.fixture(scope="module")
def experiment_stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    workdir: Path = tmp_path_factory.mktemp("experiment")
    with NatsServer(workdir / "nats") as nats:
        env = {**E2E_ENV, "PLANNER_EXPERIMENT": EXPERIMENT}
        with ServiceStack(
            nats_url=nats.url, database_url=database_url, log_path=workdir / "services.log", env=env
        ) as stack:
            yield stack


async def test_an_experiment_splits_plans_between_its_variants_and_reports_each(
    experiment_stack: ServiceStack,
) -> None:
    stack = experiment_stack
    # The variant each request id draws, as the planner draws it: requests are sent until each
    # variant has one, so the test never depends on luck.
    split = Experiment([(variant, cast(PlanWriter, None)) for variant in parse_variants(EXPERIMENT, default_model="m")])
    users: list[uuid.UUID] = []
    request_ids: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        while {split.variant_of(uuid.UUID(rid)).generation for rid in request_ids} != {"parallel", "progressive"}:
            users.append(uuid.uuid4())
            request_ids.append(await submit(client, stack, SEED_PROFILE, users[-1]))
        ends = await asyncio.gather(
            *(wait_for_end(client, stack, rid, user) for rid, user in zip(request_ids, users, strict=True))
        )
    assert {end["status"] for end in ends} == {"completed"}, stack.log_tail()

    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT prompt_version, model, quality FROM workout_plans WHERE request_id = ANY($1::uuid[])",
            [uuid.UUID(rid) for rid in request_ids],
        )
    finally:
        await conn.close()
    first_prompt = {"parallel": "skeleton-v1", "progressive": "outline-v1"}
    drawn = {first_prompt[split.variant_of(uuid.UUID(rid)).generation] for rid in request_ids}
    assert {row["prompt_version"].split("+")[0] for row in rows} == drawn == set(first_prompt.values())
    assert all(row["quality"] for row in rows)

    report = (
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.persister", "quality", "1"],
            cwd=REPO_ROOT,
            env={**os.environ, "DATABASE_URL": stack.database_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    ).stdout
    lines = {line.split()[0]: line.split() for line in report.splitlines() if line.startswith(("skeleton", "outline"))}
    assert set(lines) >= {
        "skeleton-v1+skeleton-context-v2+week-v3+plan-v1",
        "outline-v1+outline-context-v2+overview-v1+day-v3+plan-v1",
    }
    for words in lines.values():
        assert int(words[2]) >= 1  # plans
        assert 0 < float(words[4]) <= 1  # overall
