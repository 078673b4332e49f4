"""Supabase signing keys: ES256/RS256 tokens against a JWKS, and the attacks a token can carry.

The JWKS is served through httpx's MockTransport (httpx's own fake transport), so fetches are
counted; everything else is the real verifier and real PyJWT cryptography.
"""

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.gateway.auth import InvalidToken, SharedSecretVerifier, SupabaseVerifier
from services.gateway.jwks import JwksVerifier

AUDIENCE = "authenticated"
ISSUER = "https://project.supabase.co/auth/v1"
SECRET = "legacy-secret-that-is-long-enough-for-hs256-0123456789"

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.RSAAlgorithm
    public = json.loads(algorithm.to_jwk(private_key.public_key()))
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


class Jwks:
    """A project's JWKS endpoint whose keys can rotate; counts fetches."""

    def __init__(self) -> None:
        self.keys = [jwk(EC_KEY, "ec-1", "ES256"), jwk(RSA_KEY, "rsa-1", "RS256")]
        self.fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json={"keys": self.keys})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": str(uuid.uuid4()),
        "aud": AUDIENCE,
        "iss": ISSUER,
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any = EC_KEY, kid: str = "ec-1", alg: str = "ES256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def jwks() -> Jwks:
    return Jwks()


@pytest.fixture
def verifier(jwks: Jwks) -> SupabaseVerifier:
    keys = JwksVerifier(
        "https://project.supabase.co/auth/v1/.well-known/jwks.json",
        audience=AUDIENCE,
        issuer=ISSUER,
        transport=httpx.MockTransport(jwks.handler),
        min_refetch_seconds=0,
    )
    return SupabaseVerifier(shared_secret=SharedSecretVerifier(SECRET, audience=AUDIENCE), jwks=keys)


async def test_es256_and_rs256_tokens_from_the_jwks_are_accepted(verifier: SupabaseVerifier, jwks: Jwks) -> None:
    user = uuid.uuid4()
    assert (await verifier.verify(token(sub=str(user)))).user_id == user
    assert (await verifier.verify(token(RSA_KEY, "rsa-1", "RS256", sub=str(user)))).user_id == user
    assert jwks.fetches == 1  # cached


async def test_a_rotated_key_is_fetched_once_when_its_kid_first_appears(verifier: SupabaseVerifier, jwks: Jwks) -> None:
    await verifier.verify(token())
    jwks.keys = [*jwks.keys, jwk(ROTATED_KEY, "ec-2", "ES256")]
    await verifier.verify(token(ROTATED_KEY, "ec-2"))
    await verifier.verify(token(ROTATED_KEY, "ec-2"))
    assert jwks.fetches == 2


async def test_unknown_kids_do_not_become_a_flood_of_fetches(jwks: Jwks) -> None:
    keys = JwksVerifier(
        "https://x/jwks", audience=AUDIENCE, transport=httpx.MockTransport(jwks.handler), min_refetch_seconds=60
    )
    for i in range(20):
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await keys.verify(token(OTHER_KEY, f"forged-{i}"))
    assert jwks.fetches == 1
    await keys.aclose()


def _none_alg() -> str:
    header = jwt.utils.base64url_encode(json.dumps({"alg": "none", "typ": "JWT", "kid": "ec-1"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    return f"{header.decode()}.{body.decode()}."


def _hs_with_public_key() -> str:
    # HS/RS confusion: the RSA public key (which is public) used as an HMAC secret.
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    signing_input = header + b"." + body
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def _tampered() -> str:
    header, _, signature = token().split(".")
    forged = jwt.utils.base64url_encode(json.dumps(claims(role="service_role")).encode()).decode()
    return f"{header}.{forged}.{signature}"


ATTACKS = {
    "none algorithm": _none_alg,
    "HS/RS confusion": _hs_with_public_key,
    "ES256 kid with an RS256 token": lambda: token(RSA_KEY, "ec-1", "RS256"),
    "forged signature (other key, known kid)": lambda: token(OTHER_KEY, "ec-1"),
    "tampered payload": _tampered,
    "expired": lambda: token(exp=int(time.time()) - 3600),
    "not yet valid": lambda: token(nbf=int(time.time()) + 3600),
    "wrong audience": lambda: token(aud="anon"),
    "wrong issuer": lambda: token(iss="https://evil.example/auth/v1"),
    "missing sub": lambda: token(sub=None),
    "non-UUID sub": lambda: token(sub="admin"),
    "missing exp": lambda: token(exp=None),
    "unknown kid": lambda: token(OTHER_KEY, "nobody"),
    "no kid": lambda: jwt.encode(claims(), EC_KEY, algorithm="ES256"),
    "garbage": lambda: "not.a.jwt",
    "empty": lambda: "",
    "HS256 signed with a wrong secret": lambda: jwt.encode(claims(), "x" * 40, algorithm="HS256"),
    "anon role": lambda: token(role="anon"),
    "service_role": lambda: token(role="service_role"),
    "no role": lambda: token(role=None),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_every_attack_token_is_refused(verifier: SupabaseVerifier, attack: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(ATTACKS[attack]())


async def test_a_jwks_outage_keeps_the_cached_keys() -> None:
    served = {"up": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if served["up"]:
            return httpx.Response(200, json={"keys": [jwk(EC_KEY, "ec-1", "ES256")]})
        return httpx.Response(503)

    keys = JwksVerifier("https://x/jwks", audience=AUDIENCE, transport=httpx.MockTransport(handler), cache_seconds=0)
    await keys.verify(token(iss=None))
    served["up"] = False
    assert (await keys.verify(token(iss=None))).role == "authenticated"
    await keys.aclose()
