"""The LLM simulator served in-process on a free port, for tests that talk to it over real HTTP."""

import copy
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import pydantic
import uvicorn

from llm_simulator import SimulatorConfig, create_app
from service_runtime.strict_schema import wire_schema

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)


@contextmanager
def serving_simulator(config: SimulatorConfig) -> Iterator[str]:
    """Serve the simulator until the block exits; yield its base URL (without ``/v1``).

    It runs in its own thread and loop, like a separate provider: it keeps generating while a
    test awaits the client.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", ws="none", lifespan="off", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


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
