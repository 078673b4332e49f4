"""Talking to a gateway app in tests: tokens, the error shape, and serving it in-process."""

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette

from services.gateway.devtoken import mint_dev_token

SECRET = "integration-test-secret-at-least-32-bytes"
OTHER_SECRET = "someone-elses-secret-also-at-least-32-bytes"
ACCEPTED = "Workout plan generation started. You will be notified when complete."
PLAN_PATHS = ["/functions/v1/trigger-workout-plan", "/v1/plans"]
PROFILE = "I want to build muscle, 3x per week, 45 minutes, dumbbells at home."


def bearer(user_id: uuid.UUID | None = None, secret: str = SECRET, ttl_seconds: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(secret, user_id, ttl_seconds)}"}


def wrong_audience_token() -> str:
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "aud": "anon", "role": "anon", "iat": now, "exp": now + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = body["error"]
    return error


@asynccontextmanager
async def serving(app: Starlette, root_path: str = "") -> AsyncIterator[httpx.AsyncClient]:
    """A client calling ``app`` in memory (no sockets); the app's lifespan runs around it.
    ``root_path``: as a proxy that mounts the app under that path would call it."""
    # ASGITransport does not run the lifespan; enter it as uvicorn would.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, root_path=root_path), base_url="http://gateway"
        ) as client,
    ):
        yield client


@asynccontextmanager
async def serving_over_http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling ``app`` served by uvicorn on a free port: for streamed responses (SSE)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert not task.done(), "the gateway stopped while starting"
            assert time.monotonic() < deadline, "the gateway did not start"
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
