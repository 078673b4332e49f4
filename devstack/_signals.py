"""``make run``'s stop signals: SIGINT, SIGTERM and SIGHUP raise ``StopRequested`` in the runner
while the stack runs, whatever dispositions it inherited."""

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["StopRequested", "signals_raise_stop"]


class StopRequested(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived."""


@contextlib.contextmanager
def signals_raise_stop() -> Iterator[Callable[[], None]]:
    """Turn SIGINT, SIGTERM and SIGHUP into StopRequested while the stack runs; yield a "stop listening" switch.

    Installed even over an inherited SIG_IGN: a non-interactive shell starts `make run &` with SIGINT
    ignored, and then nothing could stop it but SIGTERM or SIGKILL. (So `nohup make run` stops on
    SIGHUP too; `setsid` or tmux keep a stack running after its terminal closes.) SIGHUP matters: closing
    the terminal must not orphan the children, which sit in their own sessions. The children start
    with the default dispositions, as a caught signal is reset by exec where an ignored one is not.
    """
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in watched}

    def stop(signum: int, frame: FrameType | None) -> None:
        raise StopRequested(signal.Signals(signum).name)

    def quiet() -> None:
        for sig in watched:
            signal.signal(sig, signal.SIG_IGN)

    for sig in watched:
        signal.signal(sig, stop)
    try:
        yield quiet
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
