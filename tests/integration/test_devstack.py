"""The local stack itself: embedded NATS and Postgres come up, keep their data across restarts
and crashes, and the `make run` runner cleans up after its children."""

import asyncio
import io
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.api import StorageType

from devstack import NatsServer, PostgresServer, free_port
from devstack._processes import is_gone
from devstack.run import Service, run_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with NatsServer(tmp_path_factory.mktemp("devstack-nats")) as server:
        yield server


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(tmp_path_factory.mktemp("devstack-postgres"), durable=False) as server:
        yield server


async def test_jetstream_publish_and_consume_round_trip(broker: NatsServer) -> None:
    nc = await nats.connect(broker.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="ROUNDTRIP", subjects=["roundtrip.>"], storage=StorageType.FILE)
        ack = await js.publish("roundtrip.one", b"hello")
        subscription = await js.pull_subscribe("roundtrip.>", durable="reader")
        [message] = await subscription.fetch(1, timeout=5)
        await message.ack()
    finally:
        await nc.close()

    assert ack.stream == "ROUNDTRIP"
    assert message.data == b"hello"


async def test_postgres_answers_on_the_workouts_database(database: PostgresServer) -> None:
    conn = await asyncpg.connect(database.url)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == "workouts"
    finally:
        await conn.close()


@pytest.mark.parametrize("how", ["restart", "kill"])
async def test_jetstream_messages_survive_a_broker_restart(broker: NatsServer, how: str) -> None:
    stream = f"KEEP_{how.upper()}"
    nc = await nats.connect(broker.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"keep.{how}.>"], storage=StorageType.FILE)
        for n in range(3):
            await js.publish(f"keep.{how}.{n}", str(n).encode())
    finally:
        await nc.close()
    url = broker.url

    if how == "restart":
        await asyncio.to_thread(broker.restart)
    else:
        await asyncio.to_thread(broker.kill)
        await asyncio.to_thread(broker.start)

    assert broker.url == url
    nc = await nats.connect(broker.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        subscription = await js.pull_subscribe(f"keep.{how}.>", durable="after")
        messages = await subscription.fetch(3, timeout=5)
    finally:
        await nc.close()
    assert info.state.messages == 3
    assert [m.data for m in messages] == [b"0", b"1", b"2"]


@pytest.mark.parametrize("how", ["restart", "kill"])
async def test_postgres_rows_survive_a_server_restart(database: PostgresServer, how: str) -> None:
    table = f"kept_{how}"
    conn = await asyncpg.connect(database.url)
    try:
        await conn.execute(f"create table {table} (n int primary key)")
        await conn.execute(f"insert into {table} select generate_series(1, 3)")
    finally:
        await conn.close()
    url = database.url

    if how == "restart":
        await asyncio.to_thread(database.restart)
    else:
        # Crash recovery: the next start replays the WAL.
        await asyncio.to_thread(database.kill)
        await asyncio.to_thread(database.start)

    assert database.url == url
    conn = await asyncpg.connect(database.url)
    try:
        assert await conn.fetchval(f"select count(*) from {table}") == 3  # noqa: S608 - our own table name
    finally:
        await conn.close()


STAND_IN_SERVICE = """
    import http.server, os, pathlib, subprocess, sys, threading, time
    name, record = sys.argv[1], pathlib.Path(sys.argv[2])
    port = int(os.environ.get("HEALTH_PORT") or os.environ["GATEWAY_PORT"])

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    record.write_text(f"{os.getpid()} {helper.pid}")
    threading.Thread(target=http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever, daemon=True).start()
    print(f"{name} up on {port} with {os.environ['OPENAI_BASE_URL']}", flush=True)
    if name == "persister":
        time.sleep(1)
        sys.exit(3)
    time.sleep(600)
"""
STAND_IN_SIMULATOR = """
    import http.server, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])
    http.server.HTTPServer(("127.0.0.1", port), http.server.BaseHTTPRequestHandler).serve_forever()
"""


def test_runner_stops_every_process_when_a_service_exits(tmp_path: Path) -> None:
    service = tmp_path / "service.py"
    service.write_text(textwrap.dedent(STAND_IN_SERVICE))
    simulator = tmp_path / "simulator.py"
    simulator.write_text(textwrap.dedent(STAND_IN_SIMULATOR))
    services = [
        Service(name, (str(service), name, str(tmp_path / f"{name}.pids")), worker=name != "gateway")
        for name in ("gateway", "planner", "persister")
    ]
    out = io.StringIO()

    code = run_stack(
        state=tmp_path / ".run",
        services=services,
        migrate=("-c", "print('migrated')"),
        simulator=(str(simulator),),
        environ={
            "NATS_URL": "nats://127.0.0.1:1",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/workouts",
            "GATEWAY_PORT": str(free_port()),
            "SUPABASE_JWT_SECRET": "a-test-secret-long-enough-for-hs256-keys",
        },
        out=out,
    )

    log = out.getvalue()
    assert code == 1
    assert "migrate   | migrated" in log
    assert "The stack is ready." in log
    assert "persister exited with code 3 unexpectedly" in log
    for name in ("gateway", "planner", "persister"):
        pids = [int(pid) for pid in (tmp_path / f"{name}.pids").read_text().split()]
        assert all(is_gone(pid) for pid in pids), f"{name} left {pids} behind"
    assert (tmp_path / ".run" / "children.jsonl").read_text() == ""
