"""Apply the schema to a database with the real command (``python -m services.persister migrate``),
as a deployment's migration job does: for tests and benchmarks that bring their own Postgres."""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["migrate"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def migrate(database_url: str, environ: Mapping[str, str] | None = None) -> None:
    """Run the migrations against ``database_url``; raise with the command's output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "services.persister", "migrate"],
        cwd=REPO_ROOT,
        env={**(os.environ if environ is None else environ), "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`python -m services.persister migrate` exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
