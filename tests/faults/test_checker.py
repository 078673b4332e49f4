"""The fault suite's checker catches what it promises to: stuck, double, leftover and unexpected."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.databases import fresh_database
from tests.faults.checker import Expectation, check

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    """A migrated database of its own: the checker reads every request, so it must not see other tests'."""
    async with fresh_database(database_url, "checker") as url:
        yield url


async def _request(conn: "asyncpg.Connection[asyncpg.Record]", status: str, profile: str = "3x per week") -> uuid.UUID:
    rid = uuid.uuid4()
    error = "unexpected_error: boom" if status == "failed" else None
    await conn.execute(
        "INSERT INTO workout_plan_requests (id, user_id, status, stage, error, user_profile)"
        " VALUES ($1, $2, $3, 'queued', $4, $5)",
        rid,
        uuid.uuid4(),
        status,
        error,
        profile,
    )
    return rid


async def test_the_checker_names_stuck_unexpected_and_leftover_requests(empty_database: str) -> None:
    conn = await asyncpg.connect(empty_database)
    try:
        stuck = await _request(conn, "processing")
        unexpected = await _request(conn, "failed")
        quota = await _request(conn, "failed", "3x per week [[sim:fault=quota]]")
        await conn.execute(
            "INSERT INTO workout_plans (id, request_id, user_id, title, summary, model)"
            " VALUES ($1, $2, $3, 't', 's', 'm')",
            uuid.uuid4(),
            unexpected,
            uuid.uuid4(),
        )
    finally:
        await conn.close()

    result = await check(empty_database, [Expectation("[[sim:fault=quota]]", "llm_quota_exhausted")])

    text = "\n".join(result.violations)
    assert "1 requests stuck in processing (1 at stage queued)" in text
    assert str(stuck) in text
    assert f"{unexpected} stage=queued error='unexpected_error: boom'" in text
    assert f"{quota} ([[sim:fault=quota]]) failed with 'unexpected_error: boom', expected llm_quota_exhausted" in text
    assert f"{unexpected} failed ('unexpected_error: boom') but keeps 1 plan row(s)" in text
    assert result.figures["by_status"] == {"processing": 1, "failed": 2}
