"""Supabase's asymmetric signing keys: verify ES256/RS256 access tokens against the project's JWKS.

Keys are fetched with an async HTTP client (never blocking the event loop), cached for
``cache_seconds``, and refetched once when a token names a key id we do not know (key rotation),
at most every ``min_refetch_seconds`` so a flood of forged key ids cannot become a flood of fetches.
"""

import asyncio
import logging
import time

import httpx
import jwt

from service_runtime.logs import reason
from services.gateway.auth import (
    REQUIRED_CLAIMS,
    InvalidToken,
    Principal,
    principal_from_claims,
    reason_for,
    token_header,
)

__all__ = ["ASYMMETRIC_ALGORITHMS", "JwksVerifier"]

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")


class JwksVerifier:
    def __init__(
        self,
        jwks_url: str,
        *,
        audience: str,
        issuer: str | None = None,
        leeway_seconds: float = 10.0,
        cache_seconds: float = 600.0,
        min_refetch_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = jwks_url
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self._http = httpx.AsyncClient(transport=transport, timeout=5.0)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        header = token_header(token)
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        if not isinstance(kid, str):
            raise InvalidToken("no signing key id")
        key = await self._key(kid)
        if key.algorithm_name != algorithm:
            # The key decides the algorithm, never the token: no RS/ES/HS confusion.
            raise InvalidToken("algorithm not allowed")
        required = [*REQUIRED_CLAIMS, *(["iss"] if self._issuer else [])]
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": required},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(reason_for(exc)) from exc
        return principal_from_claims(claims)

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys or self._age() > self._cache_seconds:
            async with self._lock:  # one fetch at a time; the others reuse its result
                unknown = kid not in self._keys and self._age() >= self._min_refetch
                if unknown or self._age() > self._cache_seconds:
                    await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        return key

    def _age(self) -> float:
        return time.monotonic() - self._fetched_at

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            response = await self._http.get(self._url)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            # Keep the keys we had: a JWKS outage must not log everybody out.
            log.warning(
                "could not fetch the JWKS from %s (%s); keeping %d cached keys", self._url, reason(exc), len(self._keys)
            )
            return
        self._keys = {key.key_id: key for key in keys if key.key_id and key.algorithm_name in ASYMMETRIC_ALGORITHMS}
