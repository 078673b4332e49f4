"""``python -m devstack run``: the whole stack on one machine, for ``make run``.

Starts NATS and Postgres (unless NATS_URL / DATABASE_URL point elsewhere), applies the migrations,
starts the LLM simulator (unless OPENAI_API_KEY is set) and then every service as its own process,
waits until all report ready and prints how to use it. SIGINT (Ctrl-C), SIGTERM or SIGHUP stops
everything it started, however it was started (``make run &`` starts it with SIGINT ignored).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from contracts import roster
from devstack._processes import end_stray
from devstack._readiness import NotReadyError, http_ok, tcp_accepts, wait_until
from devstack._signals import StopRequested, signals_raise_stop
from devstack.nats import NatsServer
from devstack.nats import stop_leftover as stop_leftover_nats
from devstack.ports import LOOPBACK, free_port, preferred_port
from devstack.postgres import PostgresServer
from devstack.postgres import stop_leftover as stop_leftover_postgres
from devstack.state import (
    forget_gateway_url,
    hold_run_lock,
    load_or_create_jwt_secret,
    record_gateway_url,
    repo_root,
    state_dir,
)
from devstack.supervisor import Child, Supervisor

__all__ = ["MIGRATE", "SERVICES", "SIMULATOR", "Service", "run_stack"]


@dataclass(frozen=True)
class Service:
    """A process of the stack: its name and its command (arguments to the Python interpreter)."""

    name: str
    args: tuple[str, ...]
    # Workers serve /healthz, /readyz and /metrics on HEALTH_PORT; the gateway on GATEWAY_PORT.
    worker: bool = True


SERVICES: tuple[Service, ...] = tuple(
    Service(service.name, ("-m", service.module), worker=service.is_worker) for service in roster.SERVICES
)
MIGRATE: tuple[str, ...] = ("-m", roster.PERSISTER.module, "migrate")
SIMULATOR: tuple[str, ...] = ("-m", "llm_simulator")  # --host and --port are appended

NATS_PORT = 4222
POSTGRES_PORT = 5433  # not 5432, so a system Postgres can keep its port
GATEWAY_PORT = 8000  # unless GATEWAY_PORT asks for another; a taken one is announced and replaced
SIMULATOR_PORT = 8100
TOKEN_TTL_SECONDS = 24 * 3600
_CHILDREN_FILE = "children.jsonl"


class _StartupFailed(Exception):
    """A step before "ready" failed; the message says which."""


def run_stack(
    *,
    state: Path | None = None,
    services: Sequence[Service] = SERVICES,
    migrate: Sequence[str] = MIGRATE,
    simulator: Sequence[str] = SIMULATOR,
    environ: Mapping[str, str] | None = None,
    ready_timeout: float = 60.0,
    out: TextIO | None = None,
) -> int:
    """Run the stack until interrupted or until a child dies; return the process exit code.

    ``services``, ``migrate`` and ``simulator`` default to the real commands; tests pass stand-ins.
    State (Postgres data, JetStream store, the JWT secret) lives in ``state``, by default ``.run/``
    at the repository root; commands run from the repository root.
    """
    root = repo_root()
    environ = dict(os.environ if environ is None else environ)
    out = out or sys.stdout
    state = state or state_dir(root)
    state.mkdir(parents=True, exist_ok=True)
    width = max(len(name) for name in ("devstack", "migrate", "simulator", *(s.name for s in services)))
    supervisor = Supervisor(out, width=width)
    with hold_run_lock(state) as holder:
        if holder is not None:
            supervisor.say("devstack", f"another `python -m devstack run` (pid {holder}) is using {state}")
            return 1
        with signals_raise_stop() as quiet, contextlib.ExitStack() as cleanup:
            try:
                return _run(
                    root=root, state=state, services=services, migrate=migrate, simulator=simulator,
                    environ=environ, ready_timeout=ready_timeout, supervisor=supervisor, cleanup=cleanup,
                )  # fmt: skip
            except (KeyboardInterrupt, StopRequested):
                supervisor.say("devstack", "stopping")
                return 0
            except (_StartupFailed, NotReadyError) as error:
                supervisor.say("devstack", f"startup failed: {error}")
                return 1
            finally:
                # Cleanup (ExitStack, in reverse start order) must not be cut short by a second Ctrl-C.
                quiet()


def _start_simulator(
    supervisor: Supervisor,
    simulator: Sequence[str],
    *,
    port: int,
    state: Path,
    env: dict[str, str],
    root: Path,
    ready_timeout: float,
) -> dict[str, str]:
    """Start the LLM simulator; return the environment that points the services at it."""
    child = _start(
        supervisor, "simulator", [*simulator, "--host", LOOPBACK, "--port", str(port)], state=state, env=env, root=root
    )
    wait_until(
        lambda: tcp_accepts(LOOPBACK, port),
        timeout=ready_timeout,
        what="the LLM simulator",
        alive=lambda: child.returncode is None,
    )
    return {
        "OPENAI_BASE_URL": f"http://{LOOPBACK}:{port}/v1",
        "OPENAI_API_KEY": "sim-local",
        # The simulator has OpenAI's Responses API: a restarted planner re-attaches instead of re-buying.
        "PLANNER_LLM_MODE": env.get("PLANNER_LLM_MODE", "responses_background"),
        # Weeks written one by one and shown as they pass their checks (`make demo` shows them fill in),
        # looked at every second: polls cost nothing here, and a week is seen as it finishes.
        "PLANNER_GENERATION": env.get("PLANNER_GENERATION", "progressive"),
        "PLANNER_POLL_INTERVAL_SECONDS": env.get("PLANNER_POLL_INTERVAL_SECONDS", "1"),
    }


def _run(
    *,
    root: Path,
    state: Path,
    services: Sequence[Service],
    migrate: Sequence[str],
    simulator: Sequence[str],
    environ: dict[str, str],
    ready_timeout: float,
    supervisor: Supervisor,
    cleanup: contextlib.ExitStack,
) -> int:
    say = supervisor.say
    taken: set[int] = set()
    _end_leftover_children(state, say)

    nats_url = environ.get("NATS_URL")
    if not nats_url:
        if stop_leftover_nats(state / "nats"):
            say("devstack", "stopped a NATS server left over from an earlier run")
        nats = NatsServer(state / "nats", port=_port(NATS_PORT, taken))
        say("devstack", f"starting NATS (log: {nats.log_path})")
        nats.start()
        cleanup.callback(_announced(say, "NATS stopped", nats.stop))
        nats_url = nats.url

    database_url = environ.get("DATABASE_URL")
    if not database_url:
        if stop_leftover_postgres(state / "postgres"):
            say("devstack", "stopped a Postgres server left over from an earlier run")
        postgres = PostgresServer(state / "postgres", port=_port(POSTGRES_PORT, taken))
        say("devstack", f"starting Postgres (log: {postgres.log_path})")
        postgres.start()
        cleanup.callback(_announced(say, "Postgres stopped", postgres.stop))
        database_url = postgres.url

    # People read this terminal, each line already prefixed with its process: text logs, unless
    # LOG_FORMAT says otherwise (LOG_FORMAT=json make run shows what the platform would collect).
    env = {"LOG_FORMAT": "text", **environ, "NATS_URL": nats_url, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    _migrate(root, migrate, env, say)

    # Registered now, so children started below are stopped before Postgres and NATS.
    cleanup.callback((state / _CHILDREN_FILE).write_text, "", encoding="utf-8")
    cleanup.callback(_announced(say, "services stopped", supervisor.stop_all))

    if not env.get("OPENAI_API_KEY"):
        port = _port(SIMULATOR_PORT, taken)
        env |= _start_simulator(
            supervisor, simulator, port=port, state=state, env=env, root=root, ready_timeout=ready_timeout
        )

    secret = env.get("SUPABASE_JWT_SECRET") or load_or_create_jwt_secret(state)
    wanted, gateway_port = _gateway_port(env, taken, say)
    env |= {"SUPABASE_JWT_SECRET": secret, "GATEWAY_PORT": str(gateway_port)}
    # A developer trying things (`make dev-user-token` is one user across runs) should not meet the
    # production-sized daily quota. An explicit setting still wins.
    env.setdefault("GATEWAY_MAX_REQUESTS_PER_DAY_PER_USER", "1000")

    readiness: dict[str, str] = {}
    for service in services:
        service_env = dict(env)
        port = gateway_port
        if service.worker:
            port = _port(None, taken)
            service_env["HEALTH_PORT"] = str(port)
        _start(supervisor, service.name, service.args, state=state, env=service_env, root=root)
        readiness[service.name] = f"http://{LOOPBACK}:{port}/readyz"

    _wait_ready(readiness, supervisor, ready_timeout)
    gateway = f"http://{LOOPBACK}:{gateway_port}"
    # `make url`, `make demo` and the README's commands read it: they work whichever port was free.
    record_gateway_url(state, gateway)
    cleanup.callback(forget_gateway_url, state)
    _print_banner(supervisor, gateway, database_url, nats_url, secret, taken=wanted if wanted != gateway_port else None)
    while True:
        exited = supervisor.first_exited()
        if exited is not None:
            _report_exit(supervisor, exited)
            return 1
        time.sleep(0.2)


def _start(
    supervisor: Supervisor, name: str, args: Sequence[str], *, state: Path, env: Mapping[str, str], root: Path
) -> Child:
    """Start ``python *args`` and note it in ``state/children.jsonl`` for the next run to clean up after a crash."""
    argv = [sys.executable, *args]
    child = supervisor.start(name, argv, env=env, cwd=root)
    with (state / _CHILDREN_FILE).open("a", encoding="utf-8") as record:
        record.write(json.dumps({"pid": child.process.pid, "name": name, "command": " ".join(argv)}) + "\n")
    return child


def _end_leftover_children(state: Path, say: Callable[[str, str], None]) -> None:
    """Stop children a previous run could not (it was SIGKILLed); they would hold ports and consume messages."""
    path = state / _CHILDREN_FILE
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if end_stray(entry["pid"], entry["command"], sig=signal.SIGTERM, group=True):
                say("devstack", f"stopped {entry['name']} (pid {entry['pid']}) left over from an earlier run")
    path.write_text("", encoding="utf-8")


def _port(preferred: int | None, taken: set[int]) -> int:
    """``preferred`` when free, else any free port; remembered so no two children share one."""
    port = free_port(exclude=taken) if preferred is None else preferred_port(preferred, exclude=taken)
    taken.add(port)
    return port


def _migrate(root: Path, migrate: Sequence[str], env: Mapping[str, str], say: Callable[[str, str], None]) -> None:
    say("devstack", "applying migrations")
    result = subprocess.run(
        [sys.executable, *migrate], cwd=root, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False,
    )  # fmt: skip
    for line in result.stdout.decode("utf-8", errors="replace").splitlines():
        say("migrate", line)
    if result.returncode != 0:
        raise _StartupFailed(f"migrations failed (`python {' '.join(migrate)}` exited {result.returncode})")


def _wait_ready(readiness: dict[str, str], supervisor: Supervisor, timeout: float) -> None:
    pending = dict(readiness)
    deadline = time.monotonic() + timeout
    while pending:
        child = supervisor.first_exited()
        if child is not None:
            raise _StartupFailed(f"{child.name} exited with code {child.returncode} before it was ready")
        for name, url in list(pending.items()):
            if http_ok(url, timeout=0.5):
                supervisor.say("devstack", f"{name} ready")
                del pending[name]
        if pending and time.monotonic() >= deadline:
            waiting = ", ".join(f"{name} ({url})" for name, url in pending.items())
            raise _StartupFailed(f"not ready after {timeout:.0f} s: {waiting}")
        if pending:
            time.sleep(0.2)


def _report_exit(supervisor: Supervisor, child: Child) -> None:
    code = child.returncode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    supervisor.say("devstack", f"{child.name} {how} unexpectedly; stopping everything")


def _gateway_port(env: Mapping[str, str], taken: set[int], say: Callable[[str, str], None]) -> tuple[int, int]:
    """The port asked for (GATEWAY_PORT, else 8000) and the one the gateway gets: the same unless it
    was taken, which is said loudly, since the commands a newcomer reads elsewhere say 8000."""
    text = env.get("GATEWAY_PORT") or str(GATEWAY_PORT)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _StartupFailed(f"GATEWAY_PORT={text!r} is not a TCP port number")
    wanted = int(text)
    port = _port(wanted, taken)
    if port != wanted:
        say("devstack", f"!! port {wanted} (GATEWAY_PORT) is taken by another program: the gateway serves on {port}.")
        say("devstack", "!! `make -s url` prints its URL; `make demo` and the README's commands use it.")
    return wanted, port


def _print_banner(
    supervisor: Supervisor, gateway: str, database_url: str, nats_url: str, secret: str, *, taken: int | None
) -> None:
    # Imported here: the gateway package (and PyJWT) is only needed once the stack is up.
    from services.gateway.devtoken import mint_dev_token  # noqa: PLC0415

    token = mint_dev_token(secret, ttl_seconds=TOKEN_TTL_SECONDS)  # a fresh random user
    moved = f"   !! not {taken}: that port was taken" if taken is not None else ""
    banner = f"""
The stack is ready.
  gateway   {gateway}{moved}
  database  {database_url}
  nats      {nats_url}

Try it, in another terminal, from this directory:
  make demo     one request for a fresh user, followed live, then the commands to look at it yourself
or by hand, as the README's "Calling the API" does (`make -s url` prints {gateway}; this token is a
fresh user's, valid for 24 h):
  curl -sS -X POST {gateway}/functions/v1/trigger-workout-plan \\
    -H "Authorization: Bearer {token}" \\
    -H "Content-Type: application/json" \\
    -d '{{"userProfile": "I want to build muscle, 3x per week, I have a full gym"}}'

Ctrl-C stops everything.
"""
    for line in banner.splitlines():
        supervisor.say("devstack", line)


def _announced(say: Callable[[str, str], None], message: str, action: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        action()
        say("devstack", message)

    return run
