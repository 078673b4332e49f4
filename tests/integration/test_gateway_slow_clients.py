"""Issue 13, item 2: slow and idle clients are cut off by the gateway itself.

The gateway runs as it is deployed (``python -m services.gateway``: uvicorn on uvloop with the
deadline protocol) with short deadlines. Slow clients are raw sockets: a slowloris that trickles
header bytes, a body that trickles one byte at a time, a connection that says nothing. Each must be
closed within its deadline (plus scheduling slack) while ordinary requests keep being answered.
"""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from devstack import free_port
from devstack._readiness import http_ok, wait_until
from tests.integration.gateway_client import SECRET, bearer
from tests.stack import REPO_ROOT

pytestmark = pytest.mark.integration

HEADER_SECONDS = 1.0
BODY_SECONDS = 1.5
MAX_CONNECTIONS = 40
SLACK_SECONDS = 1.5
SLOW_CLIENTS_OF_EACH_KIND = 10


@dataclass(frozen=True)
class Gateway:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture(scope="module")
def gateway(nats_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = free_port()
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "SUPABASE_JWT_SECRET": SECRET,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_HEADER_TIMEOUT_SECONDS": str(HEADER_SECONDS),
        "GATEWAY_BODY_TIMEOUT_SECONDS": str(BODY_SECONDS),
        "GATEWAY_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "LOG_FORMAT": "text",
    }
    log_path = tmp_path_factory.mktemp("slow-clients") / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{port}/readyz"),
                timeout=30,
                what="the gateway",
                alive=lambda: process.poll() is None,
                details=lambda: log_path.read_text()[-2000:],
            )
            yield Gateway("127.0.0.1", port)
        finally:
            process.terminate()
            process.wait(timeout=15)


async def _until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Read until the server closes the connection; how long that took and what it sent."""
    started = time.monotonic()
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(4096), timeout=limit):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return time.monotonic() - started, received


async def _trickle(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A byte every 100 ms until ``stop`` (or the server hangs up)."""
    while not stop.is_set():
        await asyncio.sleep(0.1)
        writer.write(b"a")
        try:
            await writer.drain()
        except ConnectionError:
            return


async def _slowloris(gateway: Gateway, stop: asyncio.Event) -> tuple[float, bytes]:
    """Headers that never end: a byte every 100 ms, each keeping the connection busy."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(b"GET /v1/requests HTTP/1.1\r\nHost: gateway\r\nX-Trickle: ")

    feeding = asyncio.create_task(_trickle(writer, stop))
    try:
        return await _until_closed(reader, HEADER_SECONDS + 10)
    finally:
        feeding.cancel()
        writer.close()


async def _slow_body(gateway: Gateway, stop: asyncio.Event) -> tuple[float, bytes]:
    """Whole headers at once, then a declared 4 kB body at a byte every 100 ms."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    token = bearer()["Authorization"]
    writer.write(
        b"POST /v1/plans HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        + f"Authorization: {token}\r\nContent-Length: 4096\r\n\r\n".encode()
        + b'{"userProfile": "'
    )
    await writer.drain()
    headers_sent = time.monotonic()

    feeding = asyncio.create_task(_trickle(writer, stop))
    try:
        _, received = await _until_closed(reader, BODY_SECONDS + 10)
        return time.monotonic() - headers_sent, received
    finally:
        feeding.cancel()
        writer.close()


async def _silent(gateway: Gateway) -> tuple[float, bytes]:
    """Connects and says nothing."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        return await _until_closed(reader, HEADER_SECONDS + 10)
    finally:
        writer.close()


async def test_slow_and_silent_clients_are_closed_within_their_deadlines_while_others_are_served(
    gateway: Gateway,
) -> None:
    stop = asyncio.Event()
    slow = [
        *(asyncio.create_task(_slowloris(gateway, stop)) for _ in range(SLOW_CLIENTS_OF_EACH_KIND)),
        *(asyncio.create_task(_slow_body(gateway, stop)) for _ in range(SLOW_CLIENTS_OF_EACH_KIND)),
        *(asyncio.create_task(_silent(gateway)) for _ in range(SLOW_CLIENTS_OF_EACH_KIND)),
    ]
    served: list[int] = []
    async with httpx.AsyncClient(base_url=gateway.url, headers=bearer(), timeout=5) as client:
        while not all(task.done() for task in slow):
            served.append((await client.get("/v1/requests")).status_code)
            await asyncio.sleep(0.05)
    stop.set()
    results = [task.result() for task in slow]

    # Every ordinary request was answered while 30 slow clients held connections.
    assert len(served) >= 10
    assert set(served) == {200}
    slowloris, bodies, silent = (
        results[i * SLOW_CLIENTS_OF_EACH_KIND : (i + 1) * SLOW_CLIENTS_OF_EACH_KIND] for i in range(3)
    )
    for took, received in [*slowloris, *silent]:
        assert HEADER_SECONDS * 0.9 <= took <= HEADER_SECONDS + SLACK_SECONDS, took
        assert received.startswith(b"HTTP/1.1 408 "), received
        assert b'"code":"invalid_request"' in received
    for took, received in bodies:
        assert BODY_SECONDS * 0.9 <= took <= BODY_SECONDS + SLACK_SECONDS, took
        assert received.startswith(b"HTTP/1.1 408 "), received


async def test_past_the_connection_cap_new_requests_wait_out_the_slow_clients_not_forever(gateway: Gateway) -> None:
    # Fill every connection slot with silent clients: the cap answers the next request 503 at once ...
    holders = [await asyncio.open_connection(gateway.host, gateway.port) for _ in range(MAX_CONNECTIONS)]
    try:
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=gateway.url, headers=bearer(), timeout=5) as client:
            refused = await client.get("/v1/requests")
            assert refused.status_code == 503
            # ... and once the header deadline has closed them, the gateway serves again.
            closed = await asyncio.gather(*(_until_closed(reader, HEADER_SECONDS + 10) for reader, _ in holders))
            assert all(took <= HEADER_SECONDS + SLACK_SECONDS for took, _ in closed)
            assert (await client.get("/v1/requests")).status_code == 200
    finally:
        for _, writer in holders:
            writer.close()
