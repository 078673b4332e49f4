"""Where a process spends its time: py-spy sampling a running service, summarised into top entries.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;...;leaf count``). Idle
threads are not sampled, so the counts are time on the CPU (or holding the GIL). *Self* entries
are the leaf frames (where the CPU actually was); *own code* entries are the innermost frame from
this repository's packages on each stack, which says which of our functions the time is spent
under, libraries included.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["py_spy", "summarise", "top_entries"]

_OWN = ("contracts/", "service_runtime/", "services/", "llm_simulator/")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _py_spy_binary() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: run `make benchmarks` (it syncs the bench group)")
    return found


@contextmanager
def py_spy(pids: Mapping[str, int], out_dir: Path, *, rate: int = 97) -> Iterator[dict[str, Path]]:
    """Sample each process while the block runs; yield where each one's collapsed stacks will be."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {name: out_dir / f"{name}.txt" for name in pids}
    recorders = [
        subprocess.Popen(
            [
                _py_spy_binary(),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--output",
                str(outputs[name]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(out_dir / f"{name}.log").open("w"),
        )
        for name, pid in pids.items()
    ]
    try:
        yield outputs
    finally:
        for recorder in recorders:
            # py-spy writes its file on SIGINT, as on Ctrl-C.
            with contextlib.suppress(ProcessLookupError):
                os.kill(recorder.pid, signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in (*_OWN, "site-packages/"):
        if marker in path:
            path = path[path.index(marker) :].removeprefix("site-packages/")
            break
    else:
        path = Path(path).name
    return f"{match['func']} ({path})"


def top_entries(collapsed: str, *, limit: int = 8) -> dict[str, Any]:
    """The ``limit`` heaviest self (leaf) frames and own-code frames, as shares of all samples."""
    own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame.strip()]
        # The first entry may be the process/thread label, not a frame.
        frames = [frame for frame in frames if "(" in frame] or frames
        total += count
        leaf[_short(frames[-1])] += count
        for frame in reversed(frames):
            if any(marker in frame for marker in _OWN):
                own[_short(frame)] += count
                break
        else:
            own["(no frame of ours on the stack)"] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * count / total, 1)) for name, count in counter.most_common(limit)] if total else []

    return {"samples": total, "self": shares(leaf), "own_code": shares(own)}


def summarise(outputs: Mapping[str, Path], *, limit: int = 8) -> dict[str, Any]:
    """``top_entries`` for each recorded process (missing files become empty summaries)."""
    summary: dict[str, Any] = {}
    for name, path in outputs.items():
        text = path.read_text(errors="replace") if path.exists() else ""
        summary[name] = top_entries(text, limit=limit)
    return summary
