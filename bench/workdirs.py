"""Where a measurement keeps its servers' data and logs."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["workdir_or_scratch"]


@contextmanager
def workdir_or_scratch(workdir: Path | None, prefix: str) -> Iterator[Path]:
    """``workdir``, kept for reading its logs afterwards; or, with none given, a scratch directory
    removed on exit (a measurement's Postgres data alone is 1-2 GB)."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
