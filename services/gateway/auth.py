"""Who is calling: verify a Supabase access token and name the user behind it.

Routes depend only on the ``TokenVerifier`` port. ``SharedSecretVerifier`` checks HS256 tokens
against the project's legacy JWT secret; ``services.gateway.jwks.JwksVerifier`` checks ES256/RS256
tokens against the project's signing keys; ``SupabaseVerifier`` picks one by the token's algorithm,
among those configured.
"""

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import jwt

from contracts.events import Lane

__all__ = [
    "InvalidToken",
    "Principal",
    "SharedSecretVerifier",
    "SupabaseVerifier",
    "TokenVerifier",
    "principal_from_claims",
    "reason_for",
    "token_header",
]

# HS256 needs a key at least as long as its 256-bit output (RFC 7518 section 3.2); Supabase
# project secrets are longer still.
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ("exp", "sub", "aud")
# An app sends the same access token with every call for up to an hour; verifying its signature
# once and remembering the result (until it expires) saves most of what authentication costs.
VERIFIED_TOKENS_KEPT = 10_000
SIGNED_IN_ROLE = "authenticated"
# A compact JWS's header segment: base64url (RFC 7515 section 2), trailing "=" allowed as PyJWT
# allows it (some issuers pad).
_HEADER_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Principal:
    """The signed-in user a request acts for."""

    user_id: UUID
    role: str
    # "priority" when the token's app_metadata says so (set by the operator's backend, never by the
    # user: Supabase lets users edit only user_metadata).
    lane: Lane = "standard"


class InvalidToken(Exception):
    """The token cannot be trusted; ``reason`` is short and safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenVerifier(Protocol):
    """Port: turn a bearer token into a ``Principal`` or raise ``InvalidToken``."""

    async def verify(self, token: str) -> Principal: ...


class SupabaseVerifier:
    """Routes each token to the verifier for its algorithm: HS256 to the shared secret, ES256 and
    RS256 to the JWKS. An algorithm with no configured verifier (or ``none``) is refused."""

    def __init__(self, *, shared_secret: TokenVerifier | None, jwks: TokenVerifier | None) -> None:
        self._shared_secret = shared_secret
        self._jwks = jwks

    async def verify(self, token: str) -> Principal:
        algorithm = token_header(token).get("alg")
        verifier = (
            self._shared_secret if algorithm == "HS256" else self._jwks if algorithm in ("ES256", "RS256") else None
        )
        if verifier is None:
            raise InvalidToken("algorithm not allowed")
        return await verifier.verify(token)


class SharedSecretVerifier:
    """Verifies HS256 tokens signed with the Supabase project's JWT secret."""

    def __init__(self, secret: str, *, audience: str, leeway_seconds: float = 10.0) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes long")
        self._secret = secret
        self._audience = audience
        # Small: it only absorbs clock skew between Supabase Auth and us.
        self._leeway = leeway_seconds
        # token -> (principal, exp). Keyed by the whole token, signature included, so a hit is a
        # token whose signature, audience and claims were verified; only its expiry can change.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            principal, expires_at = known
            if time.time() < expires_at + self._leeway:
                return principal
            del self._verified[token]
            raise InvalidToken("token expired")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                # Only HS256: never let the token's header pick the algorithm ("none", or an
                # asymmetric one fed our secret as a public key).
                algorithms=["HS256"],
                audience=self._audience,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(reason_for(exc)) from exc
        principal = principal_from_claims(claims)
        self._verified[token] = (principal, float(claims["exp"]))
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)  # the oldest verified first
        return principal


def token_header(token: str) -> dict[str, Any]:
    """The header of a compact JWS, unverified (it only says which key to verify with), or
    ``InvalidToken("malformed token")``. Read here rather than with ``jwt.get_unverified_header``,
    which decodes and checks all three segments character by character in Python (47 µs for a
    248-character token, more for longer ones; this reads one segment in 9 µs), on every request,
    the cached ones included. The whole token is checked when it is verified."""
    segments = token.split(".")
    head = segments[0].rstrip("=")
    padding = len(segments[0]) - len(head)
    if len(segments) != 3 or padding > 2 or (padding and len(segments[0]) % 4) or len(head) % 4 == 1:
        raise InvalidToken("malformed token")
    if not _HEADER_SEGMENT.fullmatch(head):
        raise InvalidToken("malformed token")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The principal named by verified claims: ``sub`` must be the user's UUID."""
    try:
        user_id = UUID(str(claims["sub"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("subject is not a user id") from exc
    role = claims.get("role")
    # Plans belong to signed-in users: an anon key's token (or a service key's) is not one.
    if role != SIGNED_IN_ROLE:
        raise InvalidToken("not a signed-in user's token")
    app_metadata = claims.get("app_metadata")
    lane: Lane = "priority" if isinstance(app_metadata, dict) and app_metadata.get("lane") == "priority" else "standard"
    return Principal(user_id=user_id, role=role, lane=lane)


def reason_for(exc: jwt.PyJWTError) -> str:
    """A short reason, safe to show the caller."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm not allowed"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim!r}"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return "invalid token"
