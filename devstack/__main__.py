"""``python -m devstack {run,demo,token,url}``; see devstack/README.md."""

import argparse
import os
import sys
import uuid

from devstack.state import DEV_USER_ID, NotRunningError, SecretNotFoundError, jwt_secret, running_gateway_url, state_dir

TOKEN_TTL_SECONDS = 24 * 3600


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start NATS, Postgres, the simulator and every service (make run)")
    run.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for /readyz (default 60)")

    demo = commands.add_parser("demo", help="trigger one plan through the running stack and follow it (make demo)")
    demo.add_argument("--gateway", default=None, help="gateway base URL (default: the one `make run` serves)")
    demo.add_argument("--profile", default=None, help="the userProfile text to send")
    demo.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the plan (default 600)")

    token = commands.add_parser("token", help="print a dev access token for the gateway (make token)")
    who = token.add_mutually_exclusive_group()
    who.add_argument("--sub", type=uuid.UUID, default=None, help="user id (default: a fresh random user)")
    who.add_argument(
        "--dev-user", action="store_true", help=f"the fixed development user {DEV_USER_ID} (make dev-user-token)"
    )
    token.add_argument("--ttl", type=int, default=TOKEN_TTL_SECONDS, help="lifetime in seconds (default 24 h)")

    commands.add_parser("url", help="print the gateway URL of the running `make run` (make url)")

    args = parser.parse_args(argv)
    if args.command == "run":
        from devstack.run import run_stack  # noqa: PLC0415 - each command imports only what it uses

        return run_stack(ready_timeout=args.ready_timeout)

    if args.command == "url":
        try:
            print(running_gateway_url(state_dir()))
        except NotRunningError as error:
            print(error, file=sys.stderr)
            return 2
        return 0

    # Imported here: PyJWT and the gateway package are not needed to start the stack.
    from services.gateway.devtoken import mint_dev_token  # noqa: PLC0415

    try:
        secret = jwt_secret(os.environ, state_dir())
    except SecretNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    if args.command == "token":
        print(mint_dev_token(secret, DEV_USER_ID if args.dev_user else args.sub or uuid.uuid4(), args.ttl))
        return 0

    from devstack.demo import DEFAULT_PROFILE, run_demo  # noqa: PLC0415

    gateway = args.gateway
    if gateway is None:
        try:
            gateway = running_gateway_url(state_dir())
        except NotRunningError as error:
            print(error, file=sys.stderr)
            return 2
    return run_demo(
        gateway=gateway,
        # The demo's own user, so its request neither counts against nor shows among anyone else's.
        token=mint_dev_token(secret, uuid.uuid4(), TOKEN_TTL_SECONDS),
        profile=args.profile or DEFAULT_PROFILE,
        timeout=args.timeout,
        out=sys.stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
