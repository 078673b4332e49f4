"""The gateway's composition root: the only place that reads settings and builds clients."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware

from service_runtime import outbox
from service_runtime.bus import EventBus, EventPublisher
from service_runtime.health import ReadinessCheck, health_routes
from service_runtime.http_metrics import HttpMetrics
from service_runtime.metrics import watch_pool
from service_runtime.periodic import every
from service_runtime.tracing import instrument_app
from services.gateway import api, steering_routes, trigger
from services.gateway.auth import SharedSecretVerifier, SupabaseVerifier, TokenVerifier
from services.gateway.context import InFlight
from services.gateway.errors import InternalErrors, install_error_handlers
from services.gateway.intake import Limits
from services.gateway.jwks import JwksVerifier
from services.gateway.live import JetStreamProgressFeed
from services.gateway.postgres import PostgresRequests, open_pool
from services.gateway.replies import NoStore
from services.gateway.requests import PlanRequests, Quotas, StagedEvents
from services.gateway.settings import GatewaySettings
from services.gateway.steering import PlanSteering

__all__ = ["CORS_ALLOWED_HEADERS", "create_app", "openapi_document"]

log = logging.getLogger(__name__)

# What a browser may send us cross-origin: what Supabase's clients send to an Edge Function
# (supabase-js's functions-js and supabase-py's supabase_functions: ``authorization``,
# ``apikey``, ``x-client-info``, ``content-type``, ``x-region`` when a region is chosen, and
# ``traceparent``/``tracestate``/``baggage`` when supabase-js propagates traces), plus our own
# ``idempotency-key`` and ``last-event-id``. Without them a preflight from a Supabase app is
# refused ("Disallowed CORS headers"). ``apikey`` is accepted and ignored: the Bearer token is
# our auth. deploy/supabase's forwarding function allows the same list (a test compares them).
CORS_ALLOWED_HEADERS = (
    "authorization",
    "apikey",
    "x-client-info",
    "content-type",
    "x-region",
    "idempotency-key",
    "last-event-id",
    "traceparent",
    "tracestate",
    "baggage",
)
# Readable by a browser app on any answer (the status and the JSON body always are):
# Retry-After of a 429 or 503, and why a token was refused.
_CORS_EXPOSED_HEADERS = ("Retry-After", "WWW-Authenticate")


@dataclass
class _Clients:
    """The clients the lifespan opened, for the readiness checks."""

    pool: "asyncpg.Pool[asyncpg.Record] | None" = None
    bus: EventBus | None = None


def create_app(settings: GatewaySettings | None = None, *, publisher: EventPublisher | None = None) -> FastAPI:
    """The gateway app. Clients are opened in its lifespan, never here or at import.

    Pass ``publisher`` to replace how events reach JetStream (tests do, to take the broker away
    from the request path); progress notices and live streams still use the real connection.
    """
    settings = settings or GatewaySettings()
    verifier, jwks = _verifiers_from(settings)
    limits = Limits(
        max_user_profile_chars=settings.max_user_profile_chars,
        max_system_prompt_chars=settings.max_system_prompt_chars,
    )
    quotas = Quotas(
        max_active=settings.max_active_requests_per_user,
        max_per_day=settings.max_requests_per_day_per_user,
        active_retry_after_seconds=settings.active_cap_retry_after_seconds,
        user_daily_budget_usd=settings.user_daily_budget_usd,
        global_daily_budget_usd=settings.global_daily_budget_usd,
        plan_cost_estimate_usd=settings.plan_cost_estimate_usd,
    )
    clients = _Clients()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if jwks is not None:
                stack.push_async_callback(jwks.aclose)
            bus = clients.bus = EventBus(
                settings.nats_url,
                client_name="gateway",
                publish_timeout_seconds=settings.publish_timeout_seconds,
                replicas=settings.stream_replicas,
            )
            await bus.start()
            stack.push_async_callback(bus.stop)
            events = publisher or bus
            pool = clients.pool = await open_pool(
                settings.database_url.get_secret_value(),
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                timeout_seconds=settings.db_timeout_seconds,
            )
            stack.push_async_callback(pool.close)
            watch_pool(pool)
            repository = PostgresRequests(
                pool,
                acquire_timeout_seconds=settings.db_timeout_seconds,
                accept_writers=settings.accept_writers,
                accepts_per_write=settings.accepts_per_write,
                accept_linger_seconds=settings.accept_linger_seconds,
            )
            # Before the pool closes (callbacks run last-in, first-out): the last confirmations go out.
            stack.push_async_callback(repository.drain)
            requests = PlanRequests(
                repository,
                events,
                bus,
                quotas,
                publish_wait_seconds=settings.publish_wait_seconds,
                default_review_seconds=settings.skeleton_review_seconds,
            )
            relay = partial(outbox.relay, pool, events, older_than_seconds=settings.outbox_relay_after_seconds)
            await stack.enter_async_context(every(settings.outbox_relay_interval_seconds, relay, name="outbox-relay"))
            staged = StagedEvents(repository, events, wait_seconds=settings.publish_wait_seconds)
            app.state.gateway = api.GatewayContext(
                requests=requests,
                steering=PlanSteering(repository, staged, bus, quotas),
                verifier=verifier,
                limits=limits,
                feed=JetStreamProgressFeed(lambda: bus.jetstream),
                stream_recheck_seconds=settings.stream_recheck_seconds,
                stream_ping_seconds=settings.stream_ping_seconds,
                accepts=InFlight(settings.max_accepts_in_flight),
            )
            log.info("gateway ready")
            try:
                yield
            finally:
                del app.state.gateway

    app = _bare_app(lifespan)
    # The app's own middleware, outermost first. InternalErrors sits inside CORS, so a bug's 500
    # still carries CORS headers and a browser app sees it as an HTTP error (supabase-js:
    # FunctionsHttpError), not as a network failure.
    layers = [
        Middleware(NoStore),
        Middleware(HttpMetrics),
        *_cors(settings.cors_origins),
        Middleware(InternalErrors),
    ]
    # In front of them, the accepts' fast lane through the same layers (see trigger.py).
    front = Middleware(trigger.AcceptFront, layers=layers, routes=app.routes, exception_handlers=app.exception_handlers)
    app.user_middleware = [front, *layers]
    app.router.routes.extend(health_routes(_readiness_checks(clients)))
    instrument_app(app)
    return app


def _cors(origins: tuple[str, ...]) -> list[Middleware]:
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=list(CORS_ALLOWED_HEADERS),
            expose_headers=list(_CORS_EXPOSED_HEADERS),
            max_age=600,
        )
    ]


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, built without settings or clients (``python -m services.gateway openapi``)."""
    return _bare_app(None).openapi()


def _bare_app(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None) -> FastAPI:
    """The routes and error handlers, without middleware or health routes."""
    app = FastAPI(
        title="Workout plans gateway",
        version="0.2.0",
        summary="Accepts workout-plan requests and serves their status, live progress and finished plans.",
        lifespan=lifespan,
        # Starlette's slash redirect builds its Location from the request's Host header: a
        # redirect anyone can aim anywhere. A path with a trailing slash is simply not found.
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry layer: off, since ``instrument_app`` gives the SERVER spans
        # when tracing is on. Left on, it looks up the global providers on every request (~4 % of
        # the gateway's CPU per accept) to find them unconfigured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(steering_routes.router)
    return app


def _verifiers_from(settings: GatewaySettings) -> tuple[TokenVerifier, JwksVerifier | None]:
    """The token verifier, and the JWKS client the lifespan must close (if one is configured)."""
    shared = (
        SharedSecretVerifier(settings.supabase_jwt_secret.get_secret_value(), audience=settings.jwt_audience)
        if settings.supabase_jwt_secret is not None
        else None
    )
    jwks = (
        JwksVerifier(settings.supabase_jwks_url, audience=settings.jwt_audience, issuer=settings.jwt_issuer)
        if settings.supabase_jwks_url is not None
        else None
    )
    return SupabaseVerifier(shared_secret=shared, jwks=jwks), jwks


def _readiness_checks(clients: _Clients) -> dict[str, ReadinessCheck]:
    async def postgres() -> bool:
        if clients.pool is None:
            return False
        await clients.pool.fetchval("SELECT 1")
        return True

    async def nats() -> bool:
        return clients.bus is not None and clients.bus.is_connected

    return {"postgres": postgres, "nats": nats}
