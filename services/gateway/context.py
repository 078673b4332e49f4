"""What every route needs: the gateway's context (built at startup) and the caller's principal."""

from dataclasses import dataclass

from starlette.requests import Request

from services.gateway.auth import InvalidToken, Principal, TokenVerifier
from services.gateway.errors import ApiError
from services.gateway.intake import Limits
from services.gateway.live import ProgressFeed
from services.gateway.requests import PlanRequests
from services.gateway.steering import PlanSteering

__all__ = ["GatewayContext", "InFlight", "gateway_context", "principal"]


class InFlight:
    """How many accepts this process is serving; ``enter`` refuses one past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.now = 0

    def enter(self) -> bool:
        if self.now >= self.limit:
            return False
        self.now += 1
        return True

    def leave(self) -> None:
        self.now -= 1


@dataclass(frozen=True)
class GatewayContext:
    """What the routes need, built by ``create_app`` and set on ``app.state.gateway`` at startup."""

    requests: PlanRequests
    steering: PlanSteering
    verifier: TokenVerifier
    limits: Limits
    feed: ProgressFeed
    accepts: InFlight
    stream_recheck_seconds: float = 15.0
    stream_ping_seconds: float = 15.0


# async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop
# (and GIL hand-over) on every request for what is an attribute read.
async def gateway_context(request: Request) -> GatewayContext:
    context = getattr(request.app.state, "gateway", None)
    if not isinstance(context, GatewayContext):
        raise RuntimeError("the gateway is not started: enter the app's lifespan first")
    return context


async def principal(context: GatewayContext, bearer_token: str | None) -> Principal:
    """The caller behind ``bearer_token``, or 401 with ``WWW-Authenticate: Bearer``."""
    if bearer_token is None:
        raise ApiError(
            401, "unauthorized", "A bearer access token is required.", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return await context.verifier.verify(bearer_token)
    except InvalidToken as exc:
        raise ApiError(
            401,
            "unauthorized",
            f"The access token is not valid: {exc.reason}.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
