"""The whole system as separate processes, each started by its documented command, for tests to hurt.

``ServiceStack`` starts the LLM simulator, the gateway and the three workers against a NATS and a
Postgres it is given (it never owns the broker or the database: a fault run restarts those through
their devstack objects). Every process writes, prefixed with its name, to one log file whose tail is
attached to every readiness failure. A fault run can ``kill`` a process with any signal, ``restart``
it on the same ports with the same environment, and ``freeze``/``thaw`` it (SIGSTOP/SIGCONT).

Settings that are not (yet) read by a service are passed through anyway: pydantic-settings ignores
unknown variables, so a run can name tomorrow's knobs today.
"""

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from contracts import roster
from devstack import free_port
from devstack._readiness import http_ok, wait_until
from devstack.lifecycle import StartStop
from devstack.supervisor import Child, Supervisor
from services.gateway.devtoken import mint_dev_token

__all__ = ["JWT_SECRET", "REPO_ROOT", "ServiceStack"]

REPO_ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "e2e-secret-that-is-long-enough-for-hs256-0123456789"


@dataclass(frozen=True)
class _Process:
    """How one named process is started: its command, its environment, and where it answers."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    url: str
    ready_path: str


class ServiceStack(StartStop):
    """The simulator, gateway, planner, profiler and persister as processes; see the module docstring.

    ``replicas`` runs more than one copy of a worker (``{"planner": 2}`` adds ``planner-2``), each
    with its own health port. ``env`` reaches every process (the simulator reads ``SIM_*``);
    ``service_env`` adds variables for one base service name (all its replicas).
    """

    def __init__(
        self,
        *,
        nats_url: str,
        database_url: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        replicas: Mapping[str, int] | None = None,
        jwt_secret: str = JWT_SECRET,
        ready_timeout: float = 60.0,
    ) -> None:
        self.nats_url = nats_url
        self.database_url = database_url
        self.log_path = Path(log_path)
        self.ready_timeout = ready_timeout
        self._jwt_secret = jwt_secret
        self._log: IO[str] | None = None
        self._supervisor: Supervisor | None = None
        self._children: dict[str, Child] = {}
        self._frozen: set[str] = set()
        self._processes = self._plan(env or {}, service_env or {}, replicas or {})

    def _plan(
        self, env: Mapping[str, str], service_env: Mapping[str, Mapping[str, str]], replicas: Mapping[str, int]
    ) -> dict[str, _Process]:
        sim_port = free_port()
        gateway_port = free_port(exclude={sim_port})
        taken = {sim_port, gateway_port}
        base_env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "DATABASE_URL": self.database_url,
            "OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "OPENAI_API_KEY": "sim-e2e",
            "SUPABASE_JWT_SECRET": self._jwt_secret,
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_HOST": "127.0.0.1",
            "HEALTH_HOST": "127.0.0.1",
            "SHUTDOWN_GRACE_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        processes = {
            "simulator": _Process(
                "simulator",
                (sys.executable, "-m", "llm_simulator", "--host", "127.0.0.1", "--port", str(sim_port)),
                {**base_env, **service_env.get("simulator", {})},
                f"http://127.0.0.1:{sim_port}",
                "/healthz",
            ),
        }
        for service in roster.SERVICES:
            copies = max(1, replicas.get(service.name, 1)) if service.is_worker else 1
            for index in range(1, copies + 1):
                name = service.name if index == 1 else f"{service.name}-{index}"
                port = gateway_port
                if service.is_worker:
                    port = free_port(exclude=taken)
                    taken.add(port)
                processes[name] = _Process(
                    name,
                    (sys.executable, "-m", service.module),
                    {**base_env, **service_env.get(service.name, {}), service.port_variable: str(port)},
                    f"http://127.0.0.1:{port}",
                    "/readyz",
                )
        return processes

    # --- where things are -------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Every process name, simulator first, replicas as ``planner-2`` and so on."""
        return tuple(self._processes)

    def replicas_of(self, service: str) -> tuple[str, ...]:
        """The process names running ``service`` (``planner`` -> ``planner``, ``planner-2``)."""
        return tuple(n for n in self._processes if n == service or n.startswith(f"{service}-"))

    @property
    def gateway_url(self) -> str:
        return self._processes["gateway"].url

    @property
    def simulator_url(self) -> str:
        return self._processes["simulator"].url

    @property
    def health_urls(self) -> dict[str, str]:
        """Base URL of each process's ``/healthz``, ``/readyz`` and ``/metrics``."""
        return {name: process.url for name, process in self._processes.items()}

    def token(self, user_id: uuid.UUID | None = None, *, lane: str | None = None) -> str:
        """A gateway access token for ``user_id`` (a random user if None), in ``lane`` if given."""
        return mint_dev_token(self._jwt_secret, user_id, lane=lane)

    def simulator(self) -> httpx.Client:
        """A client for the simulator's ``/_sim`` routes."""
        return httpx.Client(base_url=self.simulator_url, timeout=10)

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` while it runs."""
        child = self._children.get(name)
        return child.process.pid if child is not None and child.returncode is None else None

    def running(self, name: str) -> bool:
        return self.pid(name) is not None

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of the shared log, labelled, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last {lines} lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start every process (the simulator first) and wait until each is ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")
        self._supervisor = Supervisor(self._log, width=11, color=False)
        try:
            for name in self._processes:
                self._spawn(name)
            for name in self._processes:
                self.wait_ready(name)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM everything (SIGKILL after ``timeout``); frozen processes are thawed first."""
        for name in list(self._frozen):
            self.thaw(name)
        if self._supervisor is not None:
            self._supervisor.stop_all(timeout=timeout)
            self._supervisor = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_ready(self, name: str, timeout: float | None = None) -> None:
        """Wait until ``name`` answers 200 on its readiness route; raise with the log's tail otherwise."""
        process = self._processes[name]
        wait_until(
            lambda: http_ok(process.url + process.ready_path),
            timeout=timeout if timeout is not None else self.ready_timeout,
            what=name,
            alive=lambda: self.running(name),
            details=self.log_tail,
            interval=0.1,
        )

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, *, wait: float = 10.0) -> int | None:
        """Send ``sig`` to ``name``'s process group and wait (bounded) for it to exit; return its exit code."""
        child = self._require(name)
        self._signal(child, sig)
        if sig == signal.SIGKILL:
            self._frozen.discard(name)
        deadline = time.monotonic() + wait
        while child.returncode is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if child.returncode is not None:
            # Anything the leader left in its group would hold ports or connections.
            self._signal(child, signal.SIGKILL)
        return child.returncode

    def restart(self, name: str, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start ``name`` again with the same command, ports and environment (killing it first if alive)."""
        if self.running(name):
            self.kill(name, signal.SIGKILL)
        self._spawn(name)
        if wait:
            self.wait_ready(name, timeout)

    def freeze(self, name: str) -> None:
        """SIGSTOP ``name``: it holds its connections and leases but does nothing, as a stalled VM would."""
        self._signal(self._require(name), signal.SIGSTOP)
        self._frozen.add(name)

    def thaw(self, name: str) -> None:
        """SIGCONT a frozen ``name``."""
        child = self._children.get(name)
        if child is not None:
            self._signal(child, signal.SIGCONT)
        self._frozen.discard(name)

    def _spawn(self, name: str) -> None:
        assert self._supervisor is not None, "start() the stack first"
        process = self._processes[name]
        self._children[name] = self._supervisor.start(name, process.argv, env=process.env, cwd=REPO_ROOT)

    def _require(self, name: str) -> Child:
        child = self._children.get(name)
        if child is None:
            raise KeyError(f"no process named {name!r}; have {', '.join(self._processes)}")
        return child

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        # Each child leads its own process group (Supervisor starts new sessions).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, sig)
