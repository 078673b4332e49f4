"""The process's HTTP face for the platform: liveness, readiness and Prometheus metrics.

Workers are served by uvicorn too, with their consumers started and stopped by the ASGI
lifespan, so SIGTERM handling and graceful shutdown are uvicorn's well-trodden path.
"""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service_runtime.metrics import start_at_zero

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]


def health_routes(checks: Mapping[str, ReadinessCheck]) -> list[Route]:
    """``/healthz`` (the process runs), ``/readyz`` (its dependencies answer), ``/metrics``."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=2)
            except Exception:
                results[name] = False
        ready = all(results.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": results}, 200 if ready else 503)

    start_at_zero()

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


def worker_app(
    lifespan: Callable[[], AbstractAsyncContextManager[None]], checks: Mapping[str, ReadinessCheck]
) -> Starlette:
    """A worker process: its consumers live inside ``lifespan``; HTTP serves health and metrics."""

    @asynccontextmanager
    async def _lifespan(_: Starlette) -> AsyncIterator[None]:
        async with lifespan():
            yield

    return Starlette(routes=health_routes(checks), lifespan=_lifespan)


def serve(
    app: Starlette,
    host: str,
    port: int,
    log_level: str = "info",
    *,
    http: "type[asyncio.Protocol] | str" = "auto",
    limit_concurrency: int | None = None,
    timeout_keep_alive: int = 5,
) -> None:
    """Run the app under uvicorn on uvloop until SIGINT/SIGTERM, then shut down gracefully.

    ``http`` (a protocol class), ``limit_concurrency`` (connections past it get 503) and
    ``timeout_keep_alive`` go to uvicorn as they are; their defaults are uvicorn's.
    """
    # Everything loaded so far (modules, the app, its settings) lives as long as the process: out of
    # the cyclic collector's sight, each collection walks only what requests and messages allocate.
    # And collections are rarer than CPython's default (700, 10, 10): a streamed reply or a plan
    # allocates thousands of short-lived objects, almost none of them in cycles. Together ~20 % less
    # CPU per plan in the planner and persister (quick pipeline runs, docs/benchmarks.md).
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=http,
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=timeout_keep_alive,
        loop="uvloop",
        lifespan="on",
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
        log_config=None,
    )
