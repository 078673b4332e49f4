"""Session fixtures for every test layer: a real NATS and Postgres, started once per session.

Set NATS_URL / DATABASE_URL to use servers of your own instead; the ``nats_server`` and
``postgres_server`` fixtures are then None (tests that restart or kill the broker skip on None).
"""

import os
from collections.abc import Iterator

import pytest

from devstack import NatsServer, PostgresServer, migrate


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer | None]:
    """The NATS server (JetStream on) started for this session, or None when NATS_URL is set."""
    if os.environ.get("NATS_URL"):
        yield None
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer | None) -> str:
    """``nats://...`` of the session's broker."""
    return nats_server.url if nats_server is not None else os.environ["NATS_URL"]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    """The Postgres started for this session (fsync off: the data is thrown away), or None when DATABASE_URL is set."""
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer | None) -> str:
    """``postgresql://...`` of the session's database, with the migrations applied."""
    url = postgres_server.url if postgres_server is not None else os.environ["DATABASE_URL"]
    # The real command, as `make run` and a deployment run it, so the tests cover it too.
    migrate(url)
    return url
