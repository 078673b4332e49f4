"""An embedded Postgres, from the ``pgserver`` wheel's bundled binaries or an ``initdb`` on PATH.

Postgres refuses to run as root. When we are root (CI, containers) the server runs as an
unprivileged account instead, the way ``pgserver`` does it: the data directory is handed to that
account and the directories above it are made traversable (search bit only, never readable).
"""

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from devstack._processes import children_of, end_stray, kill_pids, log_tail, read_pid_file, stop_process
from devstack._readiness import wait_until
from devstack.lifecycle import StartStop
from devstack.ports import LOOPBACK, free_port

__all__ = ["ALWAYS_SETTINGS", "FAST_UNSAFE_SETTINGS", "PostgresServer", "find_postgres_bin", "stop_leftover"]

logger = logging.getLogger(__name__)

FAST_UNSAFE_SETTINGS: Mapping[str, str] = {
    # Tests throw the data away, so skip the flushes to disk. A killed server still keeps every
    # acknowledged commit (the WAL is written, just not fsynced: it sits in the OS page cache); only
    # an OS crash could lose data. synchronous_commit stays on on purpose: with it off, commits are
    # acknowledged before their WAL is even written, and a server killed by a fault test would lose them.
    "fsync": "off",
    "full_page_writes": "off",
}

# Every server, durable or not. A fresh cluster has no old WAL segments to recycle, so it creates
# each 16 MB segment as its WAL grows, and by default zero-fills and fsyncs it while the commits
# behind it wait: at 500 accepts/s (one segment every ~25 s) the gateway's slowest requests were
# those commits, 40-70 ms (p999 60 ms, against 22-26 ms with this off; docs/benchmarks/notes.md).
# A long-running server recycles old segments at checkpoints and pays neither. Off, a new segment
# is created by writing its last byte; on ext4 its blocks are allocated as WAL reaches them, which
# cost no measurable commit time.
ALWAYS_SETTINGS: Mapping[str, str] = {"wal_init_zero": "off"}

SUPERUSER = "postgres"

# Accounts tried, in order, for running the server when we are root. "postgres" is the distribution's
# own account when one is installed, "pgserver" is the one the pgserver wheel creates, "nobody" exists
# nearly everywhere. If none exists we create "pgserver".
_ACCOUNTS = ("postgres", "pgserver", "nobody")
_CREATED_ACCOUNT = "pgserver"

# sun_path is 108 bytes on Linux (104 on macOS); Postgres appends "/.s.PGSQL.<port>.lock" to the directory.
_MAX_SOCKET_DIR = 104 - len("/.s.PGSQL.65535.lock")


def find_postgres_bin() -> Path:
    """The directory of ``initdb``, ``postgres`` and ``psql``: pgserver's bundle, else beside ``initdb`` on PATH."""
    # find_spec locates the wheel without importing it; importing pgserver does work at import time.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "pginstall" / "bin"
        if (bundled / "initdb").is_file():
            return bundled
    initdb = shutil.which("initdb")
    if initdb is None:
        raise FileNotFoundError("no Postgres binaries: install the stack group (`uv sync`) or put initdb on PATH")
    # Distributions link initdb into PATH; postgres and psql sit beside the link's target.
    return Path(initdb).resolve().parent


def stop_leftover(directory: Path) -> bool:
    """Stop a server that a killed owner left running on ``directory/data``; return whether there was one."""
    data_dir = Path(directory).resolve() / "data"
    pid = read_pid_file(data_dir / "postmaster.pid")
    # SIGINT is Postgres's fast shutdown: a clean stop that does not wait for clients.
    return pid is not None and end_stray(pid, str(data_dir), sig=signal.SIGINT)


@dataclass(frozen=True)
class _Account:
    """Who the server runs as; ``None`` in its place means "as ourselves"."""

    name: str
    uid: int
    gid: int


class PostgresServer(StartStop):
    """One Postgres cluster in ``directory/data``, listening on 127.0.0.1, logging to ``directory/postgres.log``.

    ``durable=False`` turns on FAST_UNSAFE_SETTINGS (and skips initdb's fsync); meant for tests.
    ALWAYS_SETTINGS apply to every server. ``settings`` are extra ``-c name=value`` server settings.
    ``system_user`` picks the account used when we are root (default: the first of postgres,
    pgserver, nobody that exists).
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        database: str = "workouts",
        durable: bool = True,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        bin_dir: Path | None = None,
        system_user: str | None = None,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.port = port if port is not None else free_port()
        self.database = database
        self.durable = durable
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self._bin_dir = bin_dir
        self._system_user = system_user
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/DATABASE`` (trust auth, no password)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        """The cluster's PGDATA."""
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        """initdb's and the server's output; restarts append to it."""
        return self.directory / "postgres.log"

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._process.pid if self.running and self._process else None

    def start(self) -> None:
        """initdb if needed, start the server, wait until it accepts connections, create the database."""
        if self.running:
            return
        bin_dir = self._bin_dir or find_postgres_bin()
        account = self._account()
        self.directory.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.directory)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            self._hand_over(bin_dir, account)
        if fresh:
            self._initdb(bin_dir, account)
        self._launch(bin_dir, account)
        try:
            wait_until(
                self._postmaster_ready,
                timeout=self.start_timeout,
                what=f"postgres on port {self.port}",
                alive=lambda: self.running,
                details=lambda: log_tail(self.log_path),
            )
            self._create_database(bin_dir)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: abort open transactions, checkpoint, exit); SIGKILL after ``timeout``."""
        if self._process is not None:
            backends = children_of(self._process.pid)
            stop_process(self._process, sig=signal.SIGINT, timeout=timeout)
            self._process = None
            # Only reached with live backends if the postmaster had to be SIGKILLed.
            kill_pids(backends)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would; the next start runs crash recovery."""
        if self._process is not None:
            # Backends make themselves process-group leaders, so killing the group would miss them;
            # any left attached to shared memory would stop the next postmaster from starting.
            backends = children_of(self._process.pid)
            stop_process(self._process, sig=signal.SIGKILL, timeout=5.0)
            self._process = None
            kill_pids(backends)

    def restart(self) -> None:
        """Stop (if running) and start again with the same port and data."""
        self.stop()
        self.start()

    def __repr__(self) -> str:
        return f"PostgresServer(url={self.url!r}, directory={str(self.directory)!r}, running={self.running})"

    def _account(self) -> _Account | None:
        if os.geteuid() != 0:
            return None
        names = (self._system_user,) if self._system_user else _ACCOUNTS
        for name in names:
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                if entry.pw_uid != 0:
                    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
        if self._system_user:
            raise LookupError(f"system user {self._system_user!r} does not exist or is root")
        return _create_account(_CREATED_ACCOUNT)

    def _initdb(self, bin_dir: Path, account: _Account | None) -> None:
        argv = [
            str(bin_dir / "initdb"),
            "--pgdata", str(self.data_dir),
            "--username", SUPERUSER,
            "--encoding", "UTF8",
            # The C locale exists everywhere; a missing system locale would make initdb fail.
            "--locale", "C",
            "--auth", "trust",
        ]  # fmt: skip
        if not self.durable:
            argv.append("--no-sync")
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_clean_env(),
                timeout=300, check=False, **_as_account(account),
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed with exit code {result.returncode}\n{log_tail(self.log_path)}")

    def _hand_over(self, bin_dir: Path, account: _Account) -> None:
        """Let ``account`` own the data and reach it and the binaries."""
        if self.data_dir.stat().st_uid != account.uid:
            # A cluster first created under another account (or by hand): Postgres insists on owning it all.
            _chown_tree(self.data_dir, account)
        for target in (self.data_dir, bin_dir):
            _make_traversable(target, account)

    def _launch(self, bin_dir: Path, account: _Account | None) -> None:
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) <= _MAX_SOCKET_DIR else ""
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}",
            # Our own socket directory: the default (/var/run/postgresql) may not exist or be writable.
            # An empty value (path too long for a unix socket) means TCP only, which is all we use.
            "-c", f"unix_socket_directories={socket_dir}",
        ]  # fmt: skip
        settings = {**ALWAYS_SETTINGS, **(FAST_UNSAFE_SETTINGS if not self.durable else {}), **self.settings}
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches only the owner, which stops us in order.
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_clean_env(),
                start_new_session=True, **_as_account(account),
            )  # fmt: skip

    def _postmaster_ready(self) -> bool:
        # postmaster.pid line 1 is the pid, line 8 the status; "ready" means accepting connections.
        # Checking the pid rules out a stale file left by a killed server.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and self._process is not None
            and lines[0].strip() == str(self._process.pid)
            and lines[7].strip() == "ready"
        )

    def _create_database(self, bin_dir: Path) -> None:
        psql = bin_dir / "psql"
        script = (
            "SELECT format('CREATE DATABASE %I', :'db')"
            " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec\n"
        )
        result = subprocess.run(
            [
                str(psql if psql.is_file() else shutil.which("psql") or "psql"),
                "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--set", f"db={self.database}",
                "--host", LOOPBACK, "--port", str(self.port), "--username", SUPERUSER, "--dbname", "postgres",
            ],
            input=script.encode(), capture_output=True, env={**_clean_env(), "PGCONNECT_TIMEOUT": "10"},
            timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"creating database {self.database!r} failed: {result.stderr.decode(errors='replace').strip()}"
            )


def _clean_env() -> dict[str, str]:
    # PG* variables from the caller's shell (PGDATA, PGHOST, PGOPTIONS...) would override our arguments.
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


class _Credentials(TypedDict):
    user: int | None
    group: int | None
    extra_groups: list[int] | None


def _as_account(account: _Account | None) -> _Credentials:
    """subprocess arguments that drop root in the child (setgroups, setgid, setuid, in that order)."""
    if account is None:
        return {"user": None, "group": None, "extra_groups": None}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def _create_account(name: str) -> _Account:
    logger.warning("creating system user %r to run Postgres (it refuses to run as root)", name)
    try:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/bin/false", name],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"no unprivileged user to run Postgres as, and creating {name!r} failed: {error}") from error
    entry = pwd.getpwnam(name)
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _chown_tree(root: Path, account: _Account) -> None:
    os.chown(root, account.uid, account.gid)
    for parent, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(Path(parent) / name, account.uid, account.gid, follow_symlinks=False)


def _make_traversable(target: Path, account: _Account) -> None:
    """Add the search bit for others on each ancestor ``account`` could not otherwise pass.

    Only the x bit: others may then reach named paths below, not list the directories. pytest's
    0700 temp roots and a checkout under /root are the usual cases.
    """
    for ancestor in target.resolve().parents:
        info = ancestor.stat()
        if info.st_uid == account.uid or info.st_mode & stat.S_IXOTH:
            continue
        ancestor.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
        logger.info("made %s traversable (o+x) so %r can reach %s", ancestor, account.name, target)
