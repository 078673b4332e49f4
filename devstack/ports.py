"""Pick TCP ports on the loopback interface for the local stack."""

import socket
from collections.abc import Collection

__all__ = ["LOOPBACK", "free_port", "port_is_free", "preferred_port"]

LOOPBACK = "127.0.0.1"


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could bind ``host:port`` right now.

    SO_REUSEADDR mirrors what NATS, Postgres and uvicorn set, so a port that only has connections
    in TIME_WAIT counts as free, while one with a live listener (even on 0.0.0.0) does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, *, exclude: Collection[int] = ()) -> int:
    """A port the kernel considers free now, not in ``exclude``.

    There is an unavoidable window between this call and the server binding the port; callers that
    pick several ports at once pass the ones already handed out as ``exclude``.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port: int = probe.getsockname()[1]
        if port not in exclude:
            return port


def preferred_port(preferred: int, host: str = LOOPBACK, *, exclude: Collection[int] = ()) -> int:
    """``preferred`` if it is free (and not excluded), else any free port."""
    if preferred not in exclude and port_is_free(preferred, host):
        return preferred
    return free_port(host, exclude=exclude)
