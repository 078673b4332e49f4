"""The whole system as separate processes, each started by its documented command."""

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack import free_port
from devstack._readiness import http_ok, wait_until
from devstack.supervisor import Supervisor
from services.gateway.devtoken import mint_dev_token

REPO_ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-secret-that-is-long-enough-for-hs256-0123456789"

# name -> (argv, health path, worker env)
SERVICES = {
    "planner": [sys.executable, "-m", "services.planner"],
    "profiler": [sys.executable, "-m", "services.profiler"],
    "persister": [sys.executable, "-m", "services.persister"],
    "gateway": [sys.executable, "-m", "services.gateway"],
}


@dataclass(frozen=True)
class Stack:
    gateway_url: str
    simulator_url: str
    health_urls: dict[str, str]
    nats_url: str
    database_url: str
    log_path: Path

    def token(self, user_id: object = None) -> str:
        return mint_dev_token(JWT_SECRET, user_id)  # type: ignore[arg-type]

    def simulator(self) -> httpx.Client:
        return httpx.Client(base_url=self.simulator_url, timeout=10)


@pytest.fixture(scope="session")
def stack(nats_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_path = tmp_path_factory.mktemp("stack") / "services.log"
    sim_port, gateway_port = free_port(), free_port()
    health_ports = {name: free_port() for name in ("planner", "profiler", "persister")}
    base_env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
        "OPENAI_API_KEY": "sim-e2e",
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_HOST": "127.0.0.1",
        "HEALTH_HOST": "127.0.0.1",
        "SHUTDOWN_GRACE_SECONDS": "2",
        # A short lease, so the slow-plan test proves heartbeats in seconds rather than minutes.
        "CONSUMER_ACK_WAIT_SECONDS": "3",
        "SIM_TOKENS_PER_SECOND": "20000",
        "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.05",
    }
    with log_path.open("w") as log:
        supervisor = Supervisor(log, color=False)
        try:
            supervisor.start(
                "simulator",
                [sys.executable, "-m", "llm_simulator", "--host", "127.0.0.1", "--port", str(sim_port)],
                env=base_env,
                cwd=REPO_ROOT,
            )
            for name, argv in SERVICES.items():
                env = {**base_env, "HEALTH_PORT": str(health_ports.get(name, 0))}
                supervisor.start(name, argv, env=env, cwd=REPO_ROOT)
            health_urls = {name: f"http://127.0.0.1:{port}" for name, port in health_ports.items()}
            health_urls["gateway"] = f"http://127.0.0.1:{gateway_port}"
            health_urls["simulator"] = f"http://127.0.0.1:{sim_port}"
            for name, url in health_urls.items():
                path = "/healthz" if name == "simulator" else "/readyz"
                wait_until(
                    lambda url=url, path=path: http_ok(url + path),  # type: ignore[misc]
                    timeout=60,
                    what=name,
                    alive=lambda: supervisor.first_exited() is None,
                    details=lambda: log_path.read_text()[-4000:],
                )
            yield Stack(
                gateway_url=health_urls["gateway"],
                simulator_url=health_urls["simulator"],
                health_urls=health_urls,
                nats_url=nats_url,
                database_url=database_url,
                log_path=log_path,
            )
        finally:
            supervisor.stop_all(timeout=15)
