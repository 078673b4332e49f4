"""The whole system as separate processes, each started by its documented command (see tests/stack.py)."""

from collections.abc import Iterator

import pytest

from devstack import NatsServer
from tests.stack import ServiceStack

# The tests annotate their fixture with this name.
Stack = ServiceStack

E2E_ENV = {
    # A short lease, so the slow-plan test proves heartbeats in seconds rather than minutes.
    "CONSUMER_ACK_WAIT_SECONDS": "3",
    "SIM_TOKENS_PER_SECOND": "20000",
    "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.05",
    "PLANNER_PREFIX_WARMUP_SECONDS": "0.1",
    # A skeleton left unreviewed goes on within a second of its time running out.
    "PERSISTER_SWEEP_INTERVAL_SECONDS": "1",
}


@pytest.fixture(scope="session")
def stack(
    nats_server: NatsServer | None, nats_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceStack]:
    workdir = tmp_path_factory.mktemp("stack")
    if nats_server is None:  # NATS_URL names a broker of the caller's own
        with ServiceStack(
            nats_url=nats_url, database_url=database_url, log_path=workdir / "services.log", env=E2E_ENV
        ) as services:
            yield services
        return
    # A broker of its own: the session's holds what the integration tests published (requests,
    # cancels, failures), which these services would otherwise work through while the tests run.
    with (
        NatsServer(workdir / "nats") as nats,
        ServiceStack(
            nats_url=nats.url, database_url=database_url, log_path=workdir / "services.log", env=E2E_ENV
        ) as services,
    ):
        yield services
