"""The whole system for a benchmark: NATS and Postgres (devstack, free ports, a fresh work directory),
the schema migrated by its documented command, and the simulator plus the four services as separate
processes (``tests.stack.ServiceStack``), each as its container runs it. Or one worker alone
(``started_alone``), for a bench that measures that worker.

Postgres runs with its durable defaults (fsync on), as production would, and new WAL segments not
zero-filled (``devstack.postgres.ALWAYS_SETTINGS``: a long-running server recycles its segments
instead); the services log at WARNING so that a per-request INFO line does not turn the benchmark
into a logging benchmark.
"""

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from contracts.roster import ServiceSpec
from devstack import NatsServer, PostgresServer, free_port, migrate
from devstack._readiness import http_ok, wait_until
from devstack.supervisor import Child, Supervisor
from tests.stack import REPO_ROOT, ServiceStack

__all__ = ["RunningStack", "infrastructure", "migrate", "running_stack", "started_alone", "started_together"]

QUIET = {"LOG_LEVEL": "WARNING", "SIM_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class RunningStack:
    nats: NatsServer
    postgres: PostgresServer
    services: ServiceStack

    def pids(self) -> dict[str, int]:
        """Each process to account for: the services, the simulator, NATS and Postgres (a tree)."""
        found = {name: self.services.pid(name) for name in self.services.names}
        found["nats-server"] = self.nats.pid
        found["postgres"] = self.postgres.pid
        return {name: pid for name, pid in found.items() if pid is not None}


@contextmanager
def infrastructure(workdir: Path) -> Iterator[tuple[NatsServer, PostgresServer]]:
    """A fresh NATS and a migrated Postgres under ``workdir``."""
    nats_server = NatsServer(workdir / "nats")
    postgres = PostgresServer(workdir / "postgres", durable=True)
    try:
        nats_server.start()
        postgres.start()
        migrate(postgres.url)
        yield nats_server, postgres
    finally:
        postgres.stop()
        nats_server.stop()


@contextmanager
def running_stack(
    workdir: Path,
    *,
    env: Mapping[str, str],
    service_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[RunningStack]:
    """Everything up and ready; stopped (SIGTERM, then SIGKILL) on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    with infrastructure(workdir) as (nats_server, postgres):
        services = ServiceStack(
            nats_url=nats_server.url,
            database_url=postgres.url,
            log_path=workdir / "services.log",
            env={**QUIET, **env},
            service_env=service_env,
        )
        with services:
            yield RunningStack(nats_server, postgres, services)


def started_alone(
    supervisor: Supervisor,
    service: ServiceSpec,
    env: Mapping[str, str],
    *,
    details: Callable[[], str] = lambda: "",
) -> Child:
    """``python -m`` one service under ``supervisor``, on a free port (or the one ``env`` names for
    it), once it reports ready.

    ``env`` (NATS_URL and the rest) comes on top of this environment and the bench's defaults.
    """
    return started_together(supervisor, service, [env], details=details)[0]


def started_together(
    supervisor: Supervisor,
    service: ServiceSpec,
    envs: Sequence[Mapping[str, str]],
    *,
    details: Callable[[], str] = lambda: "",
) -> list[Child]:
    """As ``started_alone``, one process per ``envs`` (each naming its own port), all started
    before any is waited for: replicas that come up within a moment of each other."""
    children: list[tuple[Child, int]] = []
    for env in envs:
        port = int(env.get(service.port_variable) or free_port())
        child = supervisor.start(
            service.name,
            [sys.executable, "-m", service.module],
            env={
                **os.environ,
                "HEALTH_HOST": "127.0.0.1",
                service.port_variable: str(port),
                "SHUTDOWN_GRACE_SECONDS": "2",
                "PYTHONUNBUFFERED": "1",
                **env,
            },
            cwd=REPO_ROOT,
        )
        children.append((child, port))
    for child, port in children:
        _wait_ready(child, port, service.name, details)
    return [child for child, _ in children]


def _wait_ready(child: Child, port: int, name: str, details: Callable[[], str]) -> None:
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/readyz"),
        timeout=60,
        what=name,
        alive=lambda: child.returncode is None,
        details=details,
    )
