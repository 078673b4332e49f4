"""Supabase Realtime reads changes from a logical replication slot on the ``supabase_realtime``
publication. On a Postgres with ``wal_level=logical`` (its own server: the session's has the
default), the change the persister's completing transaction makes is decoded from such a slot
with pgoutput, Postgres's own decoder for publications: the request's UPDATE, with the new status
and user_id (what the app filters on), and, with REPLICA IDENTITY FULL, the whole old row too; the
plan's own tables stay out of the stream."""

import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from devstack import PostgresServer
from services.gateway.postgres import PostgresRequests
from services.gateway.requests import PlanRequests, Quotas
from services.persister.postgres import PostgresPlanStore, create_pool
from tests.fakes import RecordingPublisher
from tests.integration.seeding import events_for, fresh_names
from tests.supabase_like import SUPABASE_LIKE, add_auth_user, new_database, run_migrations

pytestmark = pytest.mark.integration

SLOT = "realtime_test"


@pytest.fixture(scope="module")
def logical_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("logical"), durable=False, settings={"wal_level": "logical"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def supabase(logical_server: PostgresServer) -> AsyncIterator[str]:
    async with new_database(logical_server.url, SUPABASE_LIKE) as url:
        await run_migrations(url)
        yield url


@dataclass
class Change:
    table: str
    kind: str
    new: dict[str, str | None]
    old: dict[str, str | None] = field(default_factory=dict)


class PgOutput:
    """Just enough of pgoutput's protocol (version 1) to read relations, inserts and updates."""

    def __init__(self) -> None:
        self.relations: dict[int, tuple[str, list[str]]] = {}

    def decode(self, message: bytes) -> Change | None:
        kind, body = chr(message[0]), memoryview(message)[1:]
        if kind == "R":
            (relid,) = struct.unpack_from(">I", body)
            namespace, offset = _string(body, 4)
            name, offset = _string(body, offset)
            offset += 1  # replica identity setting
            (ncols,) = struct.unpack_from(">H", body, offset)
            offset += 2
            columns = []
            for _ in range(ncols):
                column, offset = _string(body, offset + 1)  # after the flags byte
                offset += 8  # type oid, type modifier
                columns.append(column)
            self.relations[relid] = (f"{namespace}.{name}", columns)
        elif kind in "IU":
            (relid,) = struct.unpack_from(">I", body)
            table, columns = self.relations[relid]
            offset, old = 4, {}
            if chr(body[offset]) in "KO":
                old, offset = _tuple(body, offset + 1, columns)
            assert chr(body[offset]) == "N"
            new, _ = _tuple(body, offset + 1, columns)
            return Change(table, kind, new, old)
        return None


def _string(body: memoryview, offset: int) -> tuple[str, int]:
    end = bytes(body[offset:]).index(b"\0") + offset
    return bytes(body[offset:end]).decode(), end + 1


def _tuple(body: memoryview, offset: int, columns: list[str]) -> tuple[dict[str, str | None], int]:
    (ncols,) = struct.unpack_from(">H", body, offset)
    offset += 2
    values: dict[str, str | None] = {}
    for column in columns[:ncols]:
        kind = chr(body[offset])
        offset += 1
        if kind == "t":
            (length,) = struct.unpack_from(">I", body, offset)
            values[column] = bytes(body[offset + 4 : offset + 4 + length]).decode()
            offset += 4 + length
        else:  # 'n' null, 'u' unchanged TOASTed value
            values[column] = None
    return values, offset


async def test_the_completing_update_reaches_the_realtime_publication_with_status_and_user(supabase: str) -> None:
    user_id = uuid.uuid4()
    pool = await create_pool(supabase, 1, 2)
    admin = await asyncpg.connect(supabase)
    try:
        await add_auth_user(admin, user_id)
        publisher = RecordingPublisher()
        gateway = PlanRequests(PostgresRequests(pool), publisher, publisher, Quotas(max_active=3, max_per_day=20))
        request_id = await gateway.create_request(user_id=user_id, user_profile="3x a week", system_prompt=None)
        generated, profiled = events_for(request_id, user_id, fresh_names(2))
        persister = PostgresPlanStore(pool)
        await persister.store_plan(generated)
        await admin.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", SLOT)
        try:
            for event in profiled:
                await persister.store_profile(event)
            rows = await admin.fetch(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,"
                " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
                SLOT,
            )
        finally:
            await admin.execute("SELECT pg_drop_replication_slot($1)", SLOT)
        plan_id = await admin.fetchval("SELECT plan_id FROM workout_plan_requests WHERE id = $1", request_id)
    finally:
        await admin.close()
        await pool.close()

    decoder = PgOutput()
    changes = [c for c in (decoder.decode(bytes(r["data"])) for r in rows) if c is not None]
    assert {c.table for c in changes} == {"public.workout_plan_requests"}  # plans and entries are not published
    completed = [c for c in changes if c.kind == "U" and c.new["status"] == "completed"]
    assert len(completed) == 1
    change = completed[0]
    assert change.new["request_id"] == change.new["id"] == str(request_id)
    assert change.new["user_id"] == str(user_id)
    assert change.new["workout_plan_id"] == str(plan_id)
    assert change.new["completed_at"] is not None
    # REPLICA IDENTITY FULL: the old row, whole, with the user it belongs to.
    assert change.old["status"] == "processing" and change.old["user_id"] == str(user_id)
    assert change.old["workout_plan_id"] is None
