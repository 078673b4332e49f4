"""Schema migrations: numbered SQL files applied once each, in order, under an advisory lock
so that several replicas (or a replica and ``make run``) starting together apply them once.

Applied migrations are recorded by name only (no checksum): an edited file is not applied again
where it already ran, so an edit must leave such a database to reach the same schema through
the later files (0001's edit for the original app's database is one; 0008 converges).
Then the files in ``migrations/always/`` run, every time, in the same lock: idempotent steps that
must also cover what later migrations add (locking our internal tables away from Supabase's API).
"""

import logging
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ALWAYS_DIR = MIGRATIONS_DIR / "always"
_LOCK_KEY = 7_340_021  # any constant shared by every migrator of this schema


async def apply_migrations(dsn: str) -> list[str]:
    """Apply the pending migrations; return the names applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
                if path.stem in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
                log.info("applied migration %s", path.stem)
                applied.append(path.stem)
            for path in sorted(ALWAYS_DIR.glob("*.sql")):
                async with conn.transaction():
                    await conn.execute(path.read_text())
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
