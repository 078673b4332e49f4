"""Run child processes side by side with labelled output, notice when one dies, stop them all."""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from devstack._processes import wait_group_gone

__all__ = ["Child", "Supervisor"]

# ANSI foreground colours, one per child in start order, when writing to a terminal.
_COLORS = ("36", "33", "35", "32", "34", "91", "96", "93")


@dataclass
class Child:
    """A started child: its name, its process and the thread copying its output."""

    name: str
    process: "subprocess.Popen[bytes]"
    pump: threading.Thread = field(repr=False)

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None."""
        return self.process.poll()


class Supervisor:
    """Starts children in their own sessions and prints their output line by line, prefixed by name.

    Each child is a process-group leader, so ``stop_all`` reaches whatever it spawned, and a Ctrl-C
    in the terminal reaches only us: we decide the order things stop in.
    """

    def __init__(self, out: TextIO, *, width: int = 10, color: bool | None = None) -> None:
        self._out = out
        self._width = width
        self._color = out.isatty() if color is None else color
        self._lock = threading.Lock()
        self._children: list[Child] = []
        self._colors: dict[str, str] = {}

    @property
    def children(self) -> Sequence[Child]:
        """Children started so far, in start order."""
        return tuple(self._children)

    def say(self, name: str, line: str) -> None:
        """Print ``line`` prefixed with ``name``, padded and coloured like a child's output."""
        label = name.ljust(self._width)
        if self._color:
            code = self._colors.setdefault(name, _COLORS[len(self._colors) % len(_COLORS)])
            label = f"\x1b[{code}m{label}\x1b[0m"
        with self._lock:
            self._out.write(f"{label} | {line}\n")
            self._out.flush()

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> Child:
        """Start ``argv`` as ``name``; its stdout and stderr are shown through ``say``."""
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        pump = threading.Thread(target=self._pump, args=(name, process.stdout), name=f"output-{name}", daemon=True)
        child = Child(name, process, pump)
        self._children.append(child)
        pump.start()
        return child

    def first_exited(self) -> Child | None:
        """A child that has exited, if any."""
        return next((child for child in self._children if child.returncode is not None), None)

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child's process group, wait up to ``timeout`` seconds in total, then SIGKILL the rest."""
        for child in self._children:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self._children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(child.name, f"did not stop within {timeout:.0f} s, killing it")
                _signal_group(child, signal.SIGKILL)
                child.process.wait()
        for child in self._children:
            # The leader is gone; anything it left in its group would otherwise outlive us.
            _signal_group(child, signal.SIGKILL)
            wait_group_gone(child.process.pid)
            child.pump.join(timeout=2.0)
            if child.process.stdout is not None:
                child.process.stdout.close()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us during stop_all
            for raw in iter(stream.readline, b""):
                self.say(name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, sig)
