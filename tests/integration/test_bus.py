"""The bus's stream and bucket setup against a real JetStream: a changed setting takes effect."""

import uuid

import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from service_runtime.bus import open_bucket

pytestmark = pytest.mark.integration


async def test_a_bucket_reopened_with_another_ttl_keeps_its_data_and_takes_the_new_ttl(nc: Client) -> None:
    js = nc.jetstream()
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    first = await open_bucket(js, bucket, ttl_seconds=600)
    await first.put("key", b"value")

    again = await open_bucket(js, bucket, ttl_seconds=1200)

    assert (await again.get("key")).value == b"value"
    config = (await js.stream_info(f"KV_{bucket}")).config
    assert (config.max_age, config.num_replicas, config.max_msgs_per_subject) == (1200, 1, 1)
    await js.delete_key_value(bucket)


async def test_reopening_a_bucket_unchanged_is_a_no_op(nc: Client) -> None:
    js = nc.jetstream()
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    await open_bucket(js, bucket)
    await (await open_bucket(js, bucket)).put("k", b"v")
    assert (await (await open_bucket(js, bucket)).get("k")).value == b"v"
    await js.delete_key_value(bucket)


async def test_a_short_lived_bucket_can_change_its_ttl(nc: Client) -> None:
    # Buckets under two minutes have a duplicate window as short as their TTL (the claims bucket).
    js = nc.jetstream()
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    await open_bucket(js, bucket, ttl_seconds=60)
    await open_bucket(js, bucket, ttl_seconds=30)
    config = (await js.stream_info(f"KV_{bucket}")).config
    assert (config.max_age, config.duplicate_window) == (30, 30)
    await js.delete_key_value(bucket)


async def test_a_bucket_reopened_with_direct_reads_is_read_directly_and_finds_what_it_held(nc: Client) -> None:
    js = nc.jetstream()
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    first = await open_bucket(js, bucket)
    await first.put("kept", b"value")
    await first.put("gone", b"value")
    await first.delete("gone")

    direct = await open_bucket(js, bucket, direct=True)

    assert (await js.stream_info(f"KV_{bucket}")).config.allow_direct is True
    assert direct._direct  # nats-py's own flag: its reads are $JS.API.DIRECT.GET requests
    assert (await direct.get("kept")).value == b"value"
    with pytest.raises(KeyNotFoundError):
        await direct.get("gone")  # deleted: its tombstone reads as absent, as a JetStream API read does
    with pytest.raises(KeyNotFoundError):
        await direct.get("never")
    # And back: a bucket is read the way its spec says now.
    assert not (await open_bucket(js, bucket))._direct
    assert (await js.stream_info(f"KV_{bucket}")).config.allow_direct is False
    await js.delete_key_value(bucket)
