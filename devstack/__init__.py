"""The local stack: embedded NATS and Postgres, and the ``make run`` / ``make demo`` commands.

Importing this package starts nothing; servers start on ``start()`` or ``with``.
"""

from devstack.migrate import migrate
from devstack.nats import NatsServer
from devstack.ports import free_port, port_is_free, preferred_port
from devstack.postgres import FAST_UNSAFE_SETTINGS, PostgresServer

__all__ = [
    "FAST_UNSAFE_SETTINGS",
    "NatsServer",
    "PostgresServer",
    "free_port",
    "migrate",
    "port_is_free",
    "preferred_port",
]
