"""Mint a Supabase-style access token for local development (``python -m services.gateway token``)."""

import time
import uuid

import jwt

AUDIENCE = "authenticated"


def mint_dev_token(
    secret: str, user_id: uuid.UUID | None = None, ttl_seconds: int = 3600, *, lane: str | None = None
) -> str:
    """An HS256 token shaped like the ones Supabase Auth issues to a signed-in user (with
    ``app_metadata.lane`` when ``lane`` is given, as the operator's backend would set it)."""
    now = int(time.time())
    claims = {
        "sub": str(user_id or uuid.uuid4()),
        "aud": AUDIENCE,
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if lane is not None:
        claims["app_metadata"] = {"lane": lane}
    return jwt.encode(claims, secret, algorithm="HS256")
