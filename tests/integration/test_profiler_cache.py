"""The profiler's cache on a real NATS: the bucket is the shared record, profiles read once stay in memory."""

import uuid

import pytest
from nats.aio.client import Client

from services.profiler.cache import PROFILES_BUCKET, KeyValueProfileCache
from tests.fakes import sample_profile

pytestmark = pytest.mark.integration


async def test_a_profile_written_by_one_replica_is_read_by_another_and_then_kept_in_memory(nc: Client) -> None:
    js = nc.jetstream()
    writer = await KeyValueProfileCache.open(js, claim_ttl_seconds=30)
    reader = await KeyValueProfileCache.open(js, claim_ttl_seconds=30)
    key = f"goblet-squat-{uuid.uuid4().hex[:8]}"
    assert await reader.get(key) is None

    await writer.put(key, sample_profile("Goblet Squat"))
    assert await reader.get(key) == sample_profile("Goblet Squat")

    # Gone from the bucket, yet this replica does not ask the bucket again for a while.
    await (await js.key_value(PROFILES_BUCKET)).delete(key)
    assert await reader.get(key) == sample_profile("Goblet Squat")
    # A replica that has not read it yet finds it gone.
    assert await (await KeyValueProfileCache.open(js, claim_ttl_seconds=30)).get(key) is None
