"""A newcomer's first ten minutes, scripted: a fresh clone, `make run` in the background, then the
README's "Calling the API" commands exactly as written, then `make demo` and the commands it prints.

Twice: with the port `make run` asks for free, and with port 8000 taken by another program. The
commands are read from the README at run time, so the test fails as soon as the README drifts from
what works. The clone shares this checkout's installed environment (its `.venv/` is links to ours
with its own up-to-date stamp), so `make` installs nothing; everything else is the clone's own.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import free_port
from devstack._processes import is_gone, kill_pids

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def readme_commands(section: str = "## Calling the API") -> str:
    """The first ```sh block after ``section`` in the clone's README, as the newcomer reads it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text[text.index(section) :]
    match = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert match is not None, f"no sh block under {section!r}"
    return match.group(1)


def _clone(into: Path) -> Path:
    checkout = into / "workout-plans"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(checkout)], check=True, timeout=60)
    venv = checkout / ".venv"
    venv.mkdir()
    for entry in (REPO / ".venv").iterdir():
        if entry.name != ".synced":
            (venv / entry.name).symlink_to(entry)
    (venv / ".synced").touch()  # newer than the clone's pyproject.toml and uv.lock: nothing to install
    (checkout / ".tools").symlink_to(REPO / ".tools")
    return checkout


def _newcomer_env(**extra: str) -> dict[str, str]:
    """A shell's environment without anything this test session set (no NATS_URL, no make's flags)."""
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "TERM")
    return {**{key: os.environ[key] for key in kept if key in os.environ}, **extra}


def _ours(checkout: Path) -> list[int]:
    """Live processes started from the clone: its servers, services and simulator all name it."""
    marker = str(checkout).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes() and (entry / "stat").read_text().split()[2] != "Z":
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def _port_8000_taken() -> Iterator[None]:
    """Port 8000 held by another program: us, unless something on this machine already holds it."""
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 8000))
            holder.listen()
        except OSError:
            pass  # taken already, which is the point
        yield


def _wait_for(path: Path, text: str, run: "subprocess.Popen[bytes]", timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text(encoding="utf-8", errors="replace")
        if text in output:
            return output
        if run.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"`make run` never printed {text!r}:\n{path.read_text(errors='replace')[-5000:]}")


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_gone(pid):
        assert time.monotonic() < deadline, f"`make run` (pid {pid}) did not stop within {timeout:.0f} s"
        time.sleep(0.1)


def _shell(script: str, checkout: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout\n{done.stdout[-5000:]}\n--- stderr\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(240)
@pytest.mark.parametrize("port", ["free", "8000-taken"])
def test_a_newcomer_follows_the_readme_without_editing_a_command(tmp_path: Path, port: str) -> None:
    checkout = _clone(tmp_path)
    # Free: a port this machine is not using, asked for as a newcomer would (8000 may be in use here).
    env = _newcomer_env(GATEWAY_PORT=str(free_port())) if port == "free" else _newcomer_env()
    log = tmp_path / "make-run.log"
    with log.open("wb") as output, _port_8000_taken() if port == "8000-taken" else contextlib.nullcontext():
        # `make run &` from a script: the shell starts it with SIGINT ignored.
        run = subprocess.Popen(
            ["sh", "-c", "make run &\nwait"],
            cwd=checkout,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            started = _wait_for(log, "Ctrl-C stops everything.", run, timeout=120)
            said = _shell(readme_commands() + 'echo "ids: $REQUEST_ID $PLAN_ID"\n', checkout, env)
            demo = _shell("make demo", checkout, env)
            follow_up = demo.split("Look at it yourself", 1)[1].splitlines()[1:]
            followed = _shell("\n".join(follow_up), checkout, env)

            # Stop it as a newcomer would: Ctrl-C on the runner itself, or closing the terminal.
            runner = int((checkout / ".run" / "run.lock").read_text())
            before = _ours(checkout)
            if port == "free":
                os.kill(runner, signal.SIGINT)
            else:
                os.killpg(run.pid, signal.SIGHUP)  # the shell dies at once; `make run` takes its time to stop
            _wait_gone(runner, timeout=60)
            run.wait(timeout=10)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
            leftovers = _ours(checkout)
            kill_pids(leftovers)

    assert not leftovers, f"left running after `make run` stopped: {leftovers}\n{log.read_text()[-3000:]}"
    assert len(before) >= 7  # the runner, NATS, Postgres, the simulator and four services were running
    stopped = log.read_text()
    assert "services stopped" in stopped
    assert "NATS stopped" in stopped

    gateway = re.search(r"gateway   (http://127\.0\.0\.1:(\d+))", started)
    assert gateway is not None
    if port == "8000-taken":
        assert gateway.group(2) != "8000"
        announced = f"!! port 8000 (GATEWAY_PORT) is taken by another program: the gateway serves on {gateway[2]}."
        assert announced in started
    else:
        assert gateway.group(2) == env["GATEWAY_PORT"]
        assert "!!" not in started

    # The README's commands: accepted, followed live to the end, the plan read, listed, not cancellable.
    ids = re.search(rf"ids: ({_UUID}) ({_UUID})", said)
    assert ids is not None, said[-3000:]
    request_id, plan_id = ids.groups()
    assert f'{{"request_id":"{request_id}","status":"processing"' in said
    assert '"status":"completed"' in said
    assert f'{{"plan_id":"{plan_id}","request_id":"{request_id}"' in said
    assert '"code":"not_cancellable"' in said

    # `make demo`: its own user, the follow-up commands work as printed.
    assert "completed | completed" in demo
    demo_request = re.search(rf"/v1/requests/({_UUID})", "\n".join(follow_up))
    assert demo_request is not None
    assert demo_request.group(1) != request_id
    assert f'"request_id":"{demo_request.group(1)}","status":"completed"' in followed
    assert request_id not in followed  # another user's list: the README's request is not in it
    assert '"code":"not_cancellable"' in followed
    assert uuid.UUID(plan_id)
