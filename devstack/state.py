"""Where ``make run`` keeps what must survive a restart: ``.run/`` at the repository root."""

import os
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEV_USER_ID", "SecretNotFoundError", "jwt_secret", "load_or_create_jwt_secret", "repo_root", "state_dir"]

# One stable user for tokens minted here, so a developer's requests and plans add up across runs.
DEV_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")

_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret


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
