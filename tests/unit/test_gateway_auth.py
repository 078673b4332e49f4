"""The gateway's HS256 token verifier: Supabase-shaped tokens in, a principal or InvalidToken out."""

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from services.gateway.auth import InvalidToken, Principal, SharedSecretVerifier, SupabaseVerifier, token_header
from services.gateway.devtoken import mint_dev_token

SECRET = "unit-test-secret-that-is-at-least-32-bytes"
OTHER_SECRET = "another-secret-that-is-also-32-bytes-long"


def verifier() -> SharedSecretVerifier:
    return SharedSecretVerifier(SECRET, audience="authenticated")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def signed(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def unsigned(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


async def test_a_valid_token_names_its_user_and_role() -> None:
    user_id = uuid.uuid4()

    principal = await verifier().verify(mint_dev_token(SECRET, user_id))

    assert principal == Principal(user_id=user_id, role="authenticated")


async def test_the_priority_lane_is_a_claim_only_the_operator_sets() -> None:
    assert (await verifier().verify(mint_dev_token(SECRET, lane="priority"))).lane == "priority"
    assert (await verifier().verify(mint_dev_token(SECRET))).lane == "standard"
    # user_metadata is the user's own to edit: it cannot put them in the priority lane.
    assert (await verifier().verify(signed(claims(user_metadata={"lane": "priority"})))).lane == "standard"
    assert (await verifier().verify(signed(claims(app_metadata={"lane": "gold"})))).lane == "standard"


async def test_a_token_within_the_clock_skew_leeway_is_still_accepted() -> None:
    token = signed(claims(exp=int(time.time()) - 2))

    assert (await verifier().verify(token)).role == "authenticated"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(mint_dev_token(SECRET, ttl_seconds=-60), "token expired", id="expired"),
        pytest.param(signed(claims(aud="anon")), "wrong audience", id="wrong-audience"),
        pytest.param(signed(claims(aud=None)), "missing claim 'aud'", id="missing-audience"),
        pytest.param(mint_dev_token(OTHER_SECRET), "bad signature", id="wrong-secret"),
        pytest.param(unsigned(claims()), "algorithm not allowed", id="alg-none"),
        pytest.param(signed(claims(sub=None)), "missing claim 'sub'", id="missing-sub"),
        pytest.param(signed(claims(exp=None)), "missing claim 'exp'", id="missing-exp"),
        pytest.param(signed(claims(sub="not-a-uuid")), "subject is not a user id", id="non-uuid-sub"),
        pytest.param("garbage", "malformed token", id="garbage"),
        pytest.param("a.b.c", "malformed token", id="garbage-segments"),
        pytest.param("", "malformed token", id="empty"),
    ],
)
async def test_an_untrustworthy_token_is_rejected_with_its_reason(token: str, reason: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        await verifier().verify(token)

    assert caught.value.reason == reason


async def test_a_token_signed_with_an_asymmetric_algorithm_is_rejected() -> None:
    header = {"alg": "RS256", "typ": "JWT"}
    forged = unsigned(claims()).split(".")
    forged[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()

    with pytest.raises(InvalidToken):
        await verifier().verify(".".join([*forged[:2], "c2lnbmF0dXJl"]))


def test_a_secret_too_short_for_hs256_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SharedSecretVerifier("short", audience="authenticated")


async def test_a_remembered_token_is_still_refused_once_it_expires() -> None:
    strict = SharedSecretVerifier(SECRET, audience="authenticated", leeway_seconds=0)
    token = signed(claims(exp=int(time.time()) + 1))
    assert (await strict.verify(token)).role == "authenticated"

    await asyncio.sleep(1.1)

    with pytest.raises(InvalidToken, match="token expired"):
        await strict.verify(token)


async def test_a_token_is_remembered_only_byte_for_byte() -> None:
    shared = verifier()
    token = mint_dev_token(SECRET, uuid.uuid4())
    await shared.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}AA"

    with pytest.raises(InvalidToken):
        await shared.verify(forged)


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("onlyone", id="one-segment"),
        pytest.param(f"{_segment(b'{}')}.e30", id="two-segments"),
        pytest.param(f"{_segment(b'{}')}.e30.c2ln.extra", id="four-segments"),
        pytest.param("!!!!.e30.c2ln", id="not-base64url"),
        pytest.param("abcde.e30.c2ln", id="impossible-length"),
        pytest.param(f"{_segment(b'{}')}==.e30.c2ln", id="wrongly-padded"),
        pytest.param(f"{_segment(b'not json')}.e30.c2ln", id="not-json"),
        pytest.param(f"{_segment(b'[1, 2]')}.e30.c2ln", id="not-an-object"),
    ],
)
async def test_the_header_that_picks_the_verifier_is_read_strictly(token: str) -> None:
    # SupabaseVerifier reads the header itself (cheaper than PyJWT's reading of all three
    # segments); whatever PyJWT would call malformed there is malformed here too.
    with pytest.raises(jwt.PyJWTError):
        jwt.get_unverified_header(token)
    with pytest.raises(InvalidToken) as caught:
        token_header(token)
    assert caught.value.reason == "malformed token"
    with pytest.raises(InvalidToken) as routed:
        await SupabaseVerifier(shared_secret=verifier(), jwks=None).verify(token)
    assert routed.value.reason == "malformed token"


def test_the_header_read_is_the_one_pyjwt_reads_padded_or_not() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "key-1"})
    head, rest = token.split(".", 1)
    padded = f"{head}{'=' * (-len(head) % 4)}.{rest}"
    assert padded != token  # this header's length needs padding
    assert token_header(token) == jwt.get_unverified_header(token)
    assert token_header(padded) == jwt.get_unverified_header(padded) == token_header(token)
