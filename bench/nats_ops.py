"""CPU per NATS operation the services make many of per plan, each way we could make it.

Against one local nats-server, CPU of this process (the client) and of the server per operation:

- a key-value read (3 KB values, half the keys missing, 64 at once), through the JetStream API
  (``$JS.API.STREAM.MSG.GET``: JSON, base64) and as a direct get (``allow_direct``, what
  ``BucketSpec.direct_reads`` turns on);
- a progress notice (3 KB) published to its stream, waiting for the stream's ack (50 at once) and
  without waiting (what ``EventBus.announce`` does).

Each way twice, alternating, so a drift of the machine shows.

    python -m bench.nats_ops
"""

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType, StreamConfig

from bench.procfs import sample_tree
from devstack.nats import NatsServer

_VALUE = os.urandom(1500).hex().encode()


def _per_op(client: float, server: float, ops: int) -> dict[str, float]:
    return {"client_us": round(1e6 * client / ops), "server_us": round(1e6 * server / ops)}


async def _reads(url: str, server_pid: int, *, direct: bool) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    kv = await js.create_key_value(
        KeyValueConfig(bucket=f"reads-{uuid.uuid4().hex[:8]}", history=1, storage=StorageType.FILE, direct=direct)
    )
    keys = [f"req{i}.week{j}" for i in range(200) for j in range(8)]
    for key in keys[: len(keys) // 2]:
        await kv.put(key, _VALUE)

    async def read(key: str) -> None:
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):
            await kv.get(key)

    client, server = time.process_time(), sample_tree(server_pid).cpu_seconds
    for _ in range(3):
        for start in range(0, len(keys), 64):
            await asyncio.gather(*(read(key) for key in keys[start : start + 64]))
    figures = _per_op(time.process_time() - client, sample_tree(server_pid).cpu_seconds - server, 3 * len(keys))
    await nc.close()
    return figures


async def _notices(url: str, server_pid: int, *, acked: bool) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream = f"NOTICES_{uuid.uuid4().hex[:8]}"
    prefix = stream.lower()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.*"], storage=StorageType.FILE))
    notices = 6000
    headers = {"content-type": "application/json"}
    client, server = time.process_time(), sample_tree(server_pid).cpu_seconds
    for _ in range(0, notices, 50):
        subjects = [f"{prefix}.{uuid.uuid4()}" for _ in range(50)]
        if acked:
            await asyncio.gather(*(js.publish(s, _VALUE, stream=stream, headers=headers) for s in subjects))
        else:
            for subject in subjects:
                await nc.publish(subject, _VALUE, headers=headers)
            await asyncio.sleep(0)
    await nc.flush()
    stored = (await js.stream_info(stream)).state.messages
    figures = _per_op(time.process_time() - client, sample_tree(server_pid).cpu_seconds - server, notices)
    assert stored == notices, f"{stored} of {notices} notices stored"
    await nc.close()
    return figures


def measure_nats_ops() -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {}
    with NatsServer(Path(tempfile.mkdtemp(prefix="bench-nats-ops-"))) as server:
        assert server.pid is not None
        for _ in range(2):
            for name, run in (
                ("kv_read_api", _reads(server.url, server.pid, direct=False)),
                ("kv_read_direct", _reads(server.url, server.pid, direct=True)),
                ("notice_acked", _notices(server.url, server.pid, acked=True)),
                ("notice_unacked", _notices(server.url, server.pid, acked=False)),
            ):
                results.setdefault(name, []).append(asyncio.run(run))
    return results


if __name__ == "__main__":
    sys.stdout.write(json.dumps(measure_nats_ops(), indent=1) + "\n")
