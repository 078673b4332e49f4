"""The LLM simulator served as its own process on a free port, for tests that talk to it over real HTTP."""

import copy
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pydantic

from devstack import free_port
from devstack._readiness import http_ok, wait_until
from llm_simulator import SimulatorConfig
from service_runtime.strict_schema import wire_schema

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)
REPO_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving_simulator(config: SimulatorConfig) -> Iterator[str]:
    """Serve the simulator until the block exits; yield its base URL (without ``/v1``).

    It runs as its own process (``python -m llm_simulator``, its knobs as ``SIM_*``), like a
    separate provider: it keeps generating while a test awaits the client, and its garbage
    collector never runs inside the tests' process (an in-process server thread once finalised
    an HTTP stream the test's loop was still using).
    """
    port = free_port()
    env = {**os.environ, **_knobs_as_env(config), "SIM_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "llm_simulator", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{url}/_sim/config"),
            timeout=30,
            what="the LLM simulator",
            alive=lambda: process.poll() is None,
            details=lambda: _stderr_of(process),
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _knobs_as_env(config: SimulatorConfig) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, value in config.model_dump().items():
        if value is None:
            continue
        env[f"SIM_{name.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
    return env


def _stderr_of(process: "subprocess.Popen[bytes]") -> str:
    if process.poll() is None or process.stderr is None:
        return ""
    return process.stderr.read().decode(errors="replace")[-2000:]


async def reset_simulator(admin: httpx.AsyncClient, knobs: Mapping[str, Any]) -> None:
    """Set every knob to its default but ``knobs``, forget every stored response and zero the stats
    (restarting a seeded sequence): a test starts from the same simulator whatever ran before it."""
    (await admin.patch("/_sim/config", json={**SimulatorConfig().model_dump(mode="json"), **knobs})).raise_for_status()
    (await admin.delete("/_sim/responses")).raise_for_status()
    (await admin.post("/_sim/reset")).raise_for_status()


async def simulator_stats(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/_sim/stats")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def as_sent(reply_type: type[ReplyT]) -> type[ReplyT]:
    """``reply_type`` for the SDK's ``.parse(response_format=...)`` / ``text_format=``, sending what
    the services send: its strict wire schema (``service_runtime.strict_schema.wire_schema``)
    under its own name, while the reply is still parsed back with the model's full constraints.

    The SDK builds the schema it sends from ``model_json_schema()``; with the plain model that
    schema keeps keywords (``maxLength``) the API, and so the simulator, refuses under strict."""
    schema = wire_schema(reply_type)

    def sent_schema(cls: type[ReplyT], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(dict(schema))  # the SDK edits what it gets; the cached one is shared

    return type(reply_type.__name__, (reply_type,), {"model_json_schema": classmethod(sent_schema)})
