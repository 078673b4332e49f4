"""``python -m services.gateway [serve]`` serves the API; ``... token`` prints a dev access token;
``... openapi`` writes the committed OpenAPI document."""

import argparse
import json
import os
import uuid
from pathlib import Path

from service_runtime.health import serve
from service_runtime.logs import configure_logging
from service_runtime.tracing import configure_tracing
from services.gateway.app import create_app, openapi_document
from services.gateway.deadlines import deadline_protocol
from services.gateway.devtoken import mint_dev_token
from services.gateway.settings import GatewaySettings

OPENAPI_PATH = Path(__file__).parent / "openapi.json"


def render_openapi() -> str:
    """The OpenAPI document as committed: stable key order, one trailing newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    token = commands.add_parser("token", help="print a dev access token signed with SUPABASE_JWT_SECRET")
    token.add_argument("--sub", type=uuid.UUID, default=None, help="the user id (default: a new random one)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires (default: 3600)")
    openapi = commands.add_parser("openapi", help="write the OpenAPI document (default: the committed copy)")
    openapi.add_argument("--output", type=Path, default=OPENAPI_PATH, help=f"where to write (default: {OPENAPI_PATH})")
    args = parser.parse_args(argv)

    if args.command == "openapi":
        args.output.write_text(render_openapi())
        print(f"wrote {args.output}")
        return

    if args.command == "token":
        secret = os.environ.get("SUPABASE_JWT_SECRET")
        if not secret:
            parser.error("SUPABASE_JWT_SECRET is not set")
        print(mint_dev_token(secret, args.sub, args.ttl))
        return

    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    configure_tracing("gateway")  # before create_app, which instruments the app when tracing is on
    serve(
        create_app(settings),
        settings.gateway_host,
        settings.gateway_port,
        settings.log_level,
        http=deadline_protocol(
            header_seconds=settings.header_timeout_seconds, body_seconds=settings.body_timeout_seconds
        ),
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_seconds,
    )


if __name__ == "__main__":
    main()
