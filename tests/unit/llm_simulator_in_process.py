"""The LLM simulator as an in-process ASGI app with a clock the test steps, and the clients that
talk to it: the real ``openai`` SDK over its own HTTP stack, and plain HTTP for raw wire objects.

The stepped clock meters the rate limits and ages the prompt cache, so their arithmetic is exact;
pacing still sleeps in real time (the knobs below turn it off)."""

from typing import Any, Self

import httpx
import httpx2
import openai

from llm_simulator import SimulatorConfig, create_app

FAST: dict[str, Any] = {"tokens_per_second": 0, "first_token_delay_seconds": 0, "seed": 3}


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class InProcess:
    """A fresh simulator with ``knobs`` (on top of :data:`FAST`) and its two clients; use ``async with``."""

    def __init__(self, clock: Clock, **knobs: Any) -> None:
        app = create_app(SimulatorConfig(**{**FAST, **knobs}), clock=clock)
        http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=app))
        self.sdk = openai.AsyncOpenAI(base_url="http://sim/v1", api_key="k", http_client=http, max_retries=0)
        self.wire = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sim", headers={"Authorization": "Bearer k"}
        )

    async def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.wire.get("/_sim/stats")).json()
        return body

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.sdk.close()
        await self.wire.aclose()


def message(error: openai.APIStatusError) -> str:
    """The body's ``message`` (the SDK's ``.message`` prefixes the status)."""
    assert isinstance(error.body, dict)
    return str(error.body["message"])
