"""The local stack itself: embedded NATS and Postgres come up, keep their data across restarts
and crashes, and the `make run` runner cleans up after its children."""

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.api import StorageType

from devstack import NatsServer, PostgresServer, free_port
from devstack._processes import is_gone
from devstack.run import Service, run_stack
from devstack.state import NotRunningError, running_gateway_url

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
        # New WAL segments are not zero-filled: their fill stalled the commits behind it (devstack.postgres).
        assert await conn.fetchval("show wal_init_zero") == "off"
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


# What every stand-in service does first: read its name, record file and port, start a helper child
# (a grandchild of the runner), and have a handler that answers /readyz.
SERVICE_PRELUDE = """
    import http.server, json, os, pathlib, signal, subprocess, sys, threading, time
    name, record = sys.argv[1], pathlib.Path(sys.argv[2])
    port = int(os.environ.get("HEALTH_PORT") or os.environ["GATEWAY_PORT"])

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
"""
STAND_IN_SERVICE = (
    SERVICE_PRELUDE
    + """
    record.write_text(f"{os.getpid()} {helper.pid}")
    threading.Thread(target=http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever, daemon=True).start()
    print(f"{name} up on {port} with {os.environ['OPENAI_BASE_URL']}", flush=True)
    if name == "persister":
        time.sleep(1)
        sys.exit(3)
    time.sleep(600)
"""
)
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


# A service that records its pid, its helper's pid, its port and how it inherited SIGINT, then serves
# /readyz until it is stopped.
RECORDING_SERVICE = (
    SERVICE_PRELUDE
    + """
    sigint = "ignored" if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else "default"
    record.write_text(json.dumps({"pids": [os.getpid(), helper.pid], "port": port, "sigint": sigint}))
    threading.Thread(target=http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever, daemon=True).start()
    time.sleep(600)
"""
)
# `python -m devstack run` with stand-ins for the servers: argv is the state directory and the stand-ins'.
RUNNER = """
    import json, os, sys
    from pathlib import Path
    from devstack.run import Service, run_stack

    state, here = Path(sys.argv[1]), Path(sys.argv[2])
    services = [
        Service(name, (str(here / "service.py"), name, str(here / f"{name}.json")), worker=name != "gateway")
        for name in ("gateway", "planner", "persister")
    ]
    sys.exit(run_stack(
        state=state, services=services, migrate=("-c", "pass"), simulator=(str(here / "simulator.py"),),
        environ={key: value for key, value in os.environ.items() if key != "OPENAI_API_KEY"},
    ))
"""


def _start_runner(tmp_path: Path, environ: dict[str, str]) -> "subprocess.Popen[str]":
    """The runner as `make run &` in a script starts it: its own process group, SIGINT ignored."""
    (tmp_path / "service.py").write_text(textwrap.dedent(RECORDING_SERVICE))
    (tmp_path / "simulator.py").write_text(textwrap.dedent(STAND_IN_SIMULATOR))
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    env = {
        **os.environ,
        "NATS_URL": "nats://127.0.0.1:1",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/workouts",
        "SUPABASE_JWT_SECRET": "a-test-secret-long-enough-for-hs256-keys",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        **environ,
    }
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / ".run"), str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - before any thread
    )


def _read_until_ready(runner: "subprocess.Popen[str]", timeout: float = 30.0) -> str:
    assert runner.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = runner.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "Ctrl-C stops everything." in line:
            return "".join(seen)
    runner.kill()
    seen.append(runner.communicate()[0])
    raise AssertionError("the runner never said it was ready:\n" + "".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_runner_stops_everything_on_each_signal_even_when_started_with_sigint_ignored(
    tmp_path: Path, sig: signal.Signals
) -> None:
    runner = _start_runner(tmp_path, {"GATEWAY_PORT": str(free_port())})
    try:
        _read_until_ready(runner)
        records = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("gateway", "planner", "persister")]
        gateway = f"http://127.0.0.1:{records[0]['port']}"
        assert running_gateway_url(tmp_path / ".run") == gateway

        os.killpg(runner.pid, sig)  # as a terminal (SIGINT, SIGHUP) or `kill %1` (SIGTERM) sends it
        output, _ = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()

    assert runner.returncode == 0, output
    assert "services stopped" in output
    assert all(record["sigint"] == "default" for record in records)  # the children start with default dispositions
    for record in records:
        assert all(is_gone(pid) for pid in record["pids"]), f"{record} left behind"
    assert (tmp_path / ".run" / "children.jsonl").read_text() == ""
    with pytest.raises(NotRunningError):
        running_gateway_url(tmp_path / ".run")


def test_a_taken_gateway_port_is_announced_and_the_port_in_use_recorded(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        wanted = holder.getsockname()[1]
        runner = _start_runner(tmp_path, {"GATEWAY_PORT": str(wanted)})
        try:
            output = _read_until_ready(runner)
            port = json.loads((tmp_path / "gateway.json").read_text())["port"]
            recorded = running_gateway_url(tmp_path / ".run")
        finally:
            runner.terminate()
            runner.communicate(timeout=30)

    assert port != wanted
    assert recorded == f"http://127.0.0.1:{port}"
    assert f"!! port {wanted} (GATEWAY_PORT) is taken by another program: the gateway serves on {port}." in output
    assert f"gateway   http://127.0.0.1:{port}   !! not {wanted}: that port was taken" in output
    assert f"curl -sS -X POST http://127.0.0.1:{port}/functions/v1/trigger-workout-plan" in output
