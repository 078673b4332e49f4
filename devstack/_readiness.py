"""Bounded waits for servers to come up."""

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

__all__ = ["NotReadyError", "http_ok", "tcp_accepts", "wait_until"]


class NotReadyError(RuntimeError):
    """A server did not become ready within its deadline (or died while starting)."""


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 200."""
    # No proxies: an HTTP_PROXY in the environment must not route probes of 127.0.0.1 elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        # The URLs are built from 127.0.0.1 and a port we chose, never from user input.
        with opener.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        # HTTPError (503 while starting) is a URLError; refused connections are OSErrors.
        return False


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    details: Callable[[], str] = lambda: "",
    interval: float = 0.05,
) -> None:
    """Poll ``ready`` until it is true; raise NotReadyError on timeout or once ``alive`` turns false.

    ``details`` is called only on failure, to append e.g. the tail of the server's log.
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if not alive():
            raise NotReadyError(f"{what} exited while starting{_suffix(details())}")
        if time.monotonic() >= deadline:
            raise NotReadyError(f"{what} was not ready after {timeout:.0f} s{_suffix(details())}")
        time.sleep(interval)


def _suffix(details: str) -> str:
    return f"\n{details}" if details else ""
