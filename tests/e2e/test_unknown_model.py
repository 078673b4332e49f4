"""A typo in the model name: the planner and profiler warn at start, and a request ends ``failed``
with the provider's reason (the simulator's 404 ``model_not_found``), after one refused call."""

import uuid
from pathlib import Path

import httpx
import pytest

from devstack import NatsServer
from tests.e2e.conftest import E2E_ENV
from tests.e2e.test_pipeline import SEED_PROFILE, submit, wait_for_end
from tests.stack import ServiceStack

pytestmark = pytest.mark.e2e

TYPO = "gpt-4o-mni"


async def test_an_unknown_model_is_warned_of_at_start_and_fails_the_request_with_the_providers_reason(
    database_url: str, tmp_path: Path
) -> None:
    # A broker of its own: the session stack's planner must not take this request.
    with (
        NatsServer(tmp_path / "nats") as nats,
        ServiceStack(
            nats_url=nats.url,
            database_url=database_url,
            log_path=tmp_path / "services.log",
            env={**E2E_ENV, "LOG_FORMAT": "text"},
            service_env={"planner": {"PLANNER_MODEL": TYPO}, "profiler": {"PROFILER_MODEL": TYPO}},
        ) as stack,
    ):
        user = uuid.uuid4()
        async with httpx.AsyncClient(timeout=30) as client:
            request_id = await submit(client, stack, SEED_PROFILE, user)
            snapshot = await wait_for_end(client, stack, request_id, user, timeout=30)
            stats = (await client.get(f"{stack.simulator_url}/_sim/stats")).json()
        log = (tmp_path / "services.log").read_text(encoding="utf-8")

    assert snapshot["status"] == "failed", (snapshot, stack.log_tail())
    assert snapshot["error"] == (
        f"llm_model_not_found: HTTP 404: The model `{TYPO}` does not exist or you do not have access to it."
    )
    assert sum(stats["billed_by_schema"].values()) == 0
    for setting in ("PLANNER_MODEL", "PROFILER_MODEL"):
        warnings = [line for line in log.splitlines() if f"{setting}='{TYPO}' is not a model we know" in line]
        assert len(warnings) == 1, stack.log_tail()
        assert "WARNING" in warnings[0]
