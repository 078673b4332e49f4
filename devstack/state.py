"""Where ``make run`` keeps what must survive a restart, and what it tells other commands: ``.run/``
at the repository root."""

import contextlib
import fcntl
import os
import secrets
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "DEV_USER_ID",
    "LOCK_FILE",
    "NotRunningError",
    "SecretNotFoundError",
    "forget_gateway_url",
    "hold_run_lock",
    "jwt_secret",
    "load_or_create_jwt_secret",
    "record_gateway_url",
    "repo_root",
    "running_gateway_url",
    "state_dir",
]

# The fixed development user (`make dev-user-token`), for a developer whose requests and plans should
# add up across runs. Plain `make token` and `make demo` use a fresh random user each time.
DEV_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")

LOCK_FILE = "run.lock"  # held by the running `python -m devstack run`, which writes its pid in it
_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret
_GATEWAY_URL_FILE = "gateway_url"


class SecretNotFoundError(LookupError):
    """Neither SUPABASE_JWT_SECRET nor ``.run/jwt_secret`` exists."""


def repo_root() -> Path:
    """The repository checkout this package lives in."""
    return Path(__file__).resolve().parent.parent


def state_dir(root: Path | None = None) -> Path:
    """``.run/`` under ``root`` (default: the repository root); gitignored."""
    return (root or repo_root()) / ".run"


def load_or_create_jwt_secret(state: Path) -> str:
    """The secret in ``state/jwt_secret``, generated on first use (readable by us only)."""
    path = state / _SECRET_FILE
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two runs racing keep the first secret rather than each writing their own.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def jwt_secret(environ: Mapping[str, str], state: Path) -> str:
    """SUPABASE_JWT_SECRET if set, else the one ``make run`` stored; never creates one."""
    if environ.get("SUPABASE_JWT_SECRET"):
        return environ["SUPABASE_JWT_SECRET"]
    path = state / _SECRET_FILE
    if not path.exists():
        raise SecretNotFoundError(f"set SUPABASE_JWT_SECRET or start the stack once (`make run`) to create {path}")
    return path.read_text(encoding="utf-8").strip()


class NotRunningError(LookupError):
    """No ``make run`` is serving from this state directory."""


def record_gateway_url(state: Path, url: str) -> None:
    """Tell ``make url`` and ``make demo`` where the running stack's gateway is (it may not be on 8000)."""
    (state / _GATEWAY_URL_FILE).write_text(url + "\n", encoding="utf-8")


def forget_gateway_url(state: Path) -> None:
    """The stack stopped: nothing serves at the recorded URL any more."""
    (state / _GATEWAY_URL_FILE).unlink(missing_ok=True)


def running_gateway_url(state: Path) -> str:
    """The gateway URL of the ``make run`` using ``state``; NotRunningError, saying why, if none is.

    The URL file alone could be a leftover of a run that was SIGKILLed, so the run's lock must be held too.
    """
    path = state / _GATEWAY_URL_FILE
    if not path.exists() or not _lock_is_held(state / LOCK_FILE):
        raise NotRunningError(f"no `make run` is serving from {state}: start it first (in another terminal)")
    return path.read_text(encoding="utf-8").strip()


@contextlib.contextmanager
def hold_run_lock(state: Path) -> Iterator[int | None]:
    """Hold ``state/run.lock`` for the run; yield None when we got it, else the holder's pid (0 if unknown).

    With the lock held, any server still running from ``state`` is a leftover of a killed run, which
    the server classes stop before starting their own.
    """
    with (state / LOCK_FILE).open("a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            text = lock.read().strip()
            yield int(text) if text.isdigit() else 0
            return
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield None
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _lock_is_held(path: Path) -> bool:
    try:
        lock = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_UN)
        return False
