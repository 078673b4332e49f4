"""What our asyncpg pools do when a connection comes back: roll back what is open, nothing more.

asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
ALL;`` on every release: one more round trip per unit of work, a fifth of the accept path's
statements. Our sessions hold nothing those undo: locks are transaction-scoped
(``pg_advisory_xact_lock``), settings are ``SET LOCAL`` if any, there are no cursors outside a
transaction and no ``LISTEN``. asyncpg still rolls back a transaction left open before calling
``reset`` (``Connection._reset``), so a connection never goes back mid-transaction.
"""

import asyncpg

__all__ = ["nothing_to_reset"]


async def nothing_to_reset(conn: "asyncpg.Connection[asyncpg.Record]") -> None:
    """``create_pool(reset=...)``: the session keeps no state a next user could trip over."""
