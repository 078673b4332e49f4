"""What /proc says about processes: CPU seconds and memory of a process and all its descendants.

Postgres serves each connection from its own backend process, and Celery's prefork pool is a
parent and its children, so a figure for "the database" or "the worker" is a process tree. Live
processes count ``utime + stime + cutime + cstime``: the ``c`` fields hold the CPU of children
already reaped, so a backend that exited during the run still counts, and nothing counts twice.
"""

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessSample", "TreeSample", "peak_rss", "process_tree", "sample_process", "sample_tree"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class TreeSample:
    """One look at a process tree: CPU seconds so far, resident and proportional memory now."""

    cpu_seconds: float
    rss_bytes: int
    pss_bytes: int
    processes: int


@dataclass(frozen=True)
class ProcessSample:
    """One look at one process: its own CPU seconds so far and resident memory now."""

    cpu_seconds: float
    rss_bytes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command (field 2) may hold spaces and parentheses; everything after the last ")" is fixed.
    return stat[stat.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _pss(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them (forked pools)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def sample_tree(root: int, *, with_pss: bool = False) -> TreeSample:
    """CPU seconds (including reaped children) and memory of ``root``'s tree, now."""
    cpu = 0.0
    rss = pss = count = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat; after the command, 11-14.
        cpu += sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS
        rss += int(fields[21]) * _PAGE
        if with_pss:
            pss += _pss(pid)
        count += 1
    return TreeSample(cpu, rss, pss, count)


def sample_process(pid: int) -> ProcessSample | None:
    """``pid``'s own CPU seconds (utime + stime) and resident memory now; None once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # utime, stime are fields 14-15 of stat and rss (pages) field 24; after the command, 11-12 and 21.
    return ProcessSample((int(fields[11]) + int(fields[12])) / _CLOCK_TICKS, int(fields[21]) * _PAGE)


def peak_rss(pid: int) -> int | None:
    """VmHWM: the kernel's own high-water mark of one process's resident set."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
