"""Signal, stop and find the server processes the stack starts.

Everything here is POSIX; the /proc lookups degrade to "nothing found" where /proc is missing (macOS).
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "children_of",
    "end_stray",
    "is_gone",
    "kill_pids",
    "log_tail",
    "read_pid_file",
    "stop_process",
    "wait_group_gone",
]

_PROC = Path("/proc")


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, labelled, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}"


def stop_process(
    process: "subprocess.Popen[bytes]",
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 10.0,
    group: bool = False,
) -> int:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL; return the exit code.

    With ``group`` the signals go to the process group (the child must have been started with
    ``start_new_session=True``), so helpers the child spawned go too.
    """
    _send(process, sig, group=group)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        _send(process, signal.SIGKILL, group=group)
        return process.wait()
    finally:
        if group:
            # Whatever is left in the group once the leader exited would be orphaned.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            wait_group_gone(process.pid)


def _send(process: "subprocess.Popen[bytes]", sig: signal.Signals, *, group: bool) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)


def read_pid_file(path: Path) -> int | None:
    """The pid on the first line of ``path`` (postmaster.pid, nats-server's -P file), if any."""
    try:
        first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def is_gone(pid: int) -> bool:
    """Whether ``pid`` has exited; a zombie counts as gone, it holds no ports, files or memory."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _state(pid) in {None, "Z", "X"}


def end_stray(pid: int, marker: str, *, sig: signal.Signals, timeout: float = 10.0, group: bool = False) -> bool:
    """Stop a process left running by an earlier owner of our directory (e.g. a killed ``make run``).

    Only a live process whose command line contains ``marker`` (our data directory, or the exact
    command) is touched, so a recycled pid belonging to something else is left alone. With ``group``
    its whole process group is signalled. Returns whether one was stopped.
    """
    if pid == os.getpid() or is_gone(pid) or marker not in _cmdline(pid):
        return False
    send = os.killpg if group else os.kill
    with contextlib.suppress(ProcessLookupError, PermissionError):
        send(pid, sig)
    deadline = time.monotonic() + timeout
    while not is_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Unconditional for a group: members may outlive the leader.
        if group or not is_gone(pid):
            send(pid, signal.SIGKILL)
    _wait_gone([pid], 5.0)
    return True


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Postgres backends make themselves group leaders, so killpg misses them)."""
    if not _PROC.is_dir():
        return []
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and _ppid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def wait_group_gone(pgid: int, timeout: float = 5.0) -> None:
    """Wait (bounded) until no live process is left in group ``pgid``, e.g. after a SIGKILL to the group.

    SIGKILL is delivered asynchronously; without this a caller could return while members still run.
    """
    if not _PROC.is_dir():
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = (int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit())
        if not any(_pgid(pid) == pgid and not is_gone(pid) for pid in members):
            return
        time.sleep(0.02)


def kill_pids(pids: Iterable[int], *, wait: float = 5.0) -> None:
    """SIGKILL each pid and wait (bounded) until they are gone."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(pids, wait)


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(not is_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _cmdline(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is parenthesised and may contain spaces; split after it.
    return raw[raw.rfind(")") + 2 :].split()


def _state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    if fields is None:
        # Without /proc we only know the pid exists.
        return "?" if not _PROC.is_dir() else None
    return fields[0]


def _ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _pgid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None
