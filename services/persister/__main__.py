"""``python -m services.persister`` runs the worker; ``python -m services.persister migrate`` applies migrations."""

import asyncio
import sys

from service_runtime.health import serve
from service_runtime.logs import configure_logging
from service_runtime.tracing import configure_tracing
from services.persister.app import create_app
from services.persister.migrations import apply_migrations
from services.persister.settings import PersisterSettings


def main(argv: list[str]) -> int:
    settings = PersisterSettings()  # read from the environment
    configure_logging("persister", settings.log_level, settings.log_format)
    if argv[:1] == ["migrate"]:
        applied = asyncio.run(apply_migrations(settings.database_url))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'schema is up to date'}")
        return 0
    if argv:
        print("usage: python -m services.persister [migrate]", file=sys.stderr)
        return 2
    configure_tracing("persister")
    serve(create_app(settings), settings.health_host, settings.health_port, settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
