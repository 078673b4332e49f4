"""Who is calling: verify a Supabase access token and name the user behind it.

Routes depend only on the ``TokenVerifier`` port. Today's adapter checks HS256 tokens against the
project's shared JWT secret; a ``JwksVerifier`` (ES256/RS256 keys from the project's JWKS URL via
PyJWT's ``PyJWKClient``) slots in beside it, reusing ``principal_from_claims``. PyJWKClient
fetches keys with blocking IO, so that adapter must serve keys from a cache the event loop never
waits on.
"""

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import jwt

__all__ = ["InvalidToken", "Principal", "SharedSecretVerifier", "TokenVerifier", "principal_from_claims"]

# HS256 needs a key at least as long as its 256-bit output (RFC 7518 section 3.2); Supabase
# project secrets are longer still.
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ("exp", "sub", "aud")


@dataclass(frozen=True)
class Principal:
    """The signed-in user a request acts for."""

    user_id: UUID
    role: str


class InvalidToken(Exception):
    """The token cannot be trusted; ``reason`` is short and safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenVerifier(Protocol):
    """Port: turn a bearer token into a ``Principal`` or raise ``InvalidToken``."""

    def verify(self, token: str) -> Principal: ...


class SharedSecretVerifier:
    """Verifies HS256 tokens signed with the Supabase project's JWT secret."""

    def __init__(self, secret: str, *, audience: str, leeway_seconds: float = 10.0) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes long")
        self._secret = secret
        self._audience = audience
        # Small: it only absorbs clock skew between Supabase Auth and us.
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Principal:
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
            raise InvalidToken(_reason(exc)) from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The principal named by verified claims: ``sub`` must be the user's UUID."""
    try:
        user_id = UUID(str(claims["sub"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("subject is not a user id") from exc
    role = claims.get("role", "")
    if not isinstance(role, str):
        raise InvalidToken("role is not a string")
    return Principal(user_id=user_id, role=role)


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
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
