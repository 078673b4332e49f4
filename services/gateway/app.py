"""The gateway's composition root: the only place that reads settings and builds clients."""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import asyncpg
from fastapi import FastAPI

from service_runtime import outbox
from service_runtime.bus import EventBus, EventPublisher
from service_runtime.health import ReadinessCheck, health_routes
from service_runtime.periodic import every
from services.gateway import api
from services.gateway.auth import SharedSecretVerifier, SupabaseVerifier, TokenVerifier
from services.gateway.errors import install_error_handlers
from services.gateway.intake import Limits
from services.gateway.jwks import JwksVerifier
from services.gateway.settings import GatewaySettings
from services.gateway.store import PostgresRequestStore, RequestStore, open_pool

__all__ = ["create_app"]

log = logging.getLogger(__name__)


@dataclass
class _Clients:
    """The clients the lifespan opened, for the readiness checks."""

    pool: "asyncpg.Pool[asyncpg.Record] | None" = None
    bus: EventBus | None = None


def create_app(
    settings: GatewaySettings | None = None,
    *,
    store: RequestStore | None = None,
    publisher: EventPublisher | None = None,
    verifier: TokenVerifier | None = None,
) -> FastAPI:
    """The gateway app. Clients are opened in its lifespan, never here or at import.

    Pass ``store``, ``publisher`` or ``verifier`` to replace the real adapter (tests do): with
    ``store`` no database pool is opened; with ``store`` or ``publisher`` no NATS connection is.
    """
    settings = settings or GatewaySettings()
    jwks: JwksVerifier | None = None
    if verifier is None:
        verifier, jwks = _verifiers_from(settings)
    limits = Limits(
        max_user_profile_chars=settings.max_user_profile_chars,
        max_system_prompt_chars=settings.max_system_prompt_chars,
    )
    clients = _Clients()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if jwks is not None:
                stack.push_async_callback(jwks.aclose)
            active_store = store
            if active_store is None:
                active_publisher = publisher
                if active_publisher is None:
                    clients.bus = EventBus(
                        settings.nats_url,
                        client_name="gateway",
                        publish_timeout_seconds=settings.publish_timeout_seconds,
                    )
                    await clients.bus.start()
                    stack.push_async_callback(clients.bus.stop)
                    active_publisher = clients.bus
                clients.pool = await open_pool(
                    settings.database_url.get_secret_value(),
                    min_size=settings.db_pool_min_size,
                    max_size=settings.db_pool_max_size,
                    timeout_seconds=settings.db_timeout_seconds,
                )
                stack.push_async_callback(clients.pool.close)
                active_store = PostgresRequestStore(
                    clients.pool,
                    active_publisher,
                    acquire_timeout_seconds=settings.db_timeout_seconds,
                    publish_wait_seconds=settings.publish_wait_seconds,
                )
                relay = partial(
                    outbox.relay,
                    clients.pool,
                    active_publisher,
                    older_than_seconds=settings.outbox_relay_after_seconds,
                )
                await stack.enter_async_context(
                    every(settings.outbox_relay_interval_seconds, relay, name="outbox-relay")
                )
            app.state.gateway = api.GatewayContext(store=active_store, verifier=verifier, limits=limits)
            log.info("gateway ready")
            try:
                yield
            finally:
                del app.state.gateway

    app = FastAPI(
        title="Workout plans gateway",
        version="0.1.0",
        summary="Accepts workout-plan requests and serves their status and finished plans.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(api.router)
    app.router.routes.extend(health_routes(_readiness_checks(clients, store=store, publisher=publisher)))
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


def _readiness_checks(
    clients: _Clients, *, store: RequestStore | None, publisher: EventPublisher | None
) -> dict[str, ReadinessCheck]:
    """Checks for the clients this app will open itself; injected adapters are the injector's concern."""

    async def postgres() -> bool:
        if clients.pool is None:
            return False
        await clients.pool.fetchval("SELECT 1")
        return True

    async def nats() -> bool:
        return clients.bus is not None and clients.bus.is_connected

    checks: dict[str, ReadinessCheck] = {}
    if store is None:
        checks["postgres"] = postgres
        if publisher is None:
            checks["nats"] = nats
    return checks
