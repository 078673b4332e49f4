"""``python -m devstack {run,demo,token}``; see devstack/README.md."""

import argparse
import os
import sys
import uuid

from devstack.state import DEV_USER_ID, SecretNotFoundError, jwt_secret, state_dir


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start NATS, Postgres, the simulator and every service (make run)")
    run.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for /readyz (default 60)")

    demo = commands.add_parser("demo", help="trigger one plan through the running stack and follow it (make demo)")
    demo.add_argument("--gateway", default="http://127.0.0.1:8000", help="gateway base URL")
    demo.add_argument("--profile", default=None, help="the userProfile text to send")
    demo.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the plan (default 600)")

    token = commands.add_parser("token", help="print a dev access token for the gateway")
    token.add_argument("--sub", type=uuid.UUID, default=DEV_USER_ID, help="user id (default: the dev user)")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds (default 24 h)")

    args = parser.parse_args(argv)
    if args.command == "run":
        from devstack.run import run_stack  # noqa: PLC0415 - each command imports only what it uses

        return run_stack(ready_timeout=args.ready_timeout)

    # Imported here: PyJWT and the gateway package are not needed to start the stack.
    from services.gateway.devtoken import mint_dev_token  # noqa: PLC0415

    try:
        secret = jwt_secret(os.environ, state_dir())
    except SecretNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    if args.command == "token":
        print(mint_dev_token(secret, args.sub, args.ttl))
        return 0

    from devstack.demo import DEFAULT_PROFILE, run_demo  # noqa: PLC0415

    return run_demo(
        gateway=args.gateway,
        token=mint_dev_token(secret, DEV_USER_ID, 3600),
        profile=args.profile or DEFAULT_PROFILE,
        timeout=args.timeout,
        out=sys.stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
