"""The machine and the versions a benchmark ran on, for the report's header."""

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from devstack.nats import find_nats_server
from devstack.postgres import find_postgres_bin

__all__ = ["busy_cores_since", "cpu_jiffies", "describe_machine", "load_average", "versions"]

_PACKAGES = (
    "fastapi",
    "uvicorn",
    "uvloop",
    "faststream",
    "nats-py",
    "asyncpg",
    "pydantic",
    "openai",
    "orjson",
    "httpx",
    "celery",
    "redis",
    "py-spy",
    "matplotlib",
)


def describe_machine() -> dict[str, Any]:
    """Cores, CPU model, memory and kernel of this box."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "unknown"


def versions(redis_server: Path | None = None) -> dict[str, str]:
    """Versions of the servers and of the Python packages on the measured paths."""
    found: dict[str, str] = {
        "nats-server": _command_version([str(find_nats_server()), "--version"]),
        "postgres": _command_version([str(find_postgres_bin() / "postgres"), "--version"]),
    }
    if redis_server is not None:
        found["redis-server"] = _command_version([str(redis_server), "--version"])
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # user .. steal; guest time is already inside user
    return total - idle, total


def busy_cores_since(start: tuple[int, int]) -> float:
    """Average cores busy (every process on the machine, ours or not) since ``start``."""
    busy, total = cpu_jiffies()
    cores = os.cpu_count() or 1
    return round(cores * (busy - start[0]) / max(1, total - start[1]), 2)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])
