"""Issue 13: every input answered without a 5xx, and replies that say the truth.

In-process (httpx.ASGITransport) against the real app on the session's Postgres and a NATS of
this module's own (so accepted requests never reach the end-to-end tests' planner).
"""

import asyncio
import json
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from devstack import NatsServer
from services.gateway.app import create_app
from services.gateway.devtoken import mint_dev_token
from services.gateway.settings import GatewaySettings
from tests.integration.gateway_client import PROFILE, SECRET, error_of

pytestmark = pytest.mark.integration

T = TypeVar("T")
EXAMPLES_PER_ROUTE = 1000
USER = uuid.uuid4()
# The generated requests come from a user of their own, so every row of theirs is one they made.
FUZZ_USER = uuid.uuid4()
TOKEN = mint_dev_token(SECRET, FUZZ_USER, 3600)


class Portal:
    """The app, its lifespan and an ASGI client on a loop of their own, called from sync tests."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._app = app
        self._lifespan = app.router.lifespan_context(app)
        self.call(self._lifespan.__aenter__())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=10)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.call(self.client.aclose())
        self.call(self._lifespan.__aexit__(None, None, None))
        self.call(_cancel_the_rest())  # e.g. sse-starlette's per-loop shutdown watcher
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def portal(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    nats = NatsServer(tmp_path_factory.mktemp("hardening-nats"))
    nats.start()
    config = GatewaySettings(
        nats_url=nats.url,
        database_url=database_url,
        supabase_jwt_secret=SECRET,
        max_active_requests_per_user=100_000,
        max_requests_per_day_per_user=100_000,
        user_daily_budget_usd="off",
        stream_recheck_seconds=0.05,
    )
    portal = Portal(create_app(config))
    try:
        yield portal
    finally:
        portal.close()
        nats.stop()


def rows(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def auth(user: uuid.UUID = USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(SECRET, user, 600)}"}


# --- item 1: characters Postgres cannot store, strict Last-Event-ID ---------------------------


@pytest.mark.parametrize("field", ["userProfile", "systemPrompt"])
@pytest.mark.parametrize("path", ["/functions/v1/trigger-workout-plan", "/v1/plans"])
def test_a_nul_in_a_text_field_is_a_422_naming_the_field_and_stores_nothing(
    portal: Portal, database_url: str, field: str, path: str
) -> None:
    user = uuid.uuid4()
    body = {"userProfile": PROFILE, field: "lift \u0000 heavy"}

    response = portal.call(portal.client.post(path, headers=auth(user), content=json.dumps(body)))

    assert response.status_code == 422
    assert [detail["loc"] for detail in error_of(response)["details"]] == [["body", field]]
    assert rows(database_url, "SELECT id FROM workout_plan_requests WHERE user_id = $1", user) == []


def test_a_lone_surrogate_escape_is_a_422(portal: Portal) -> None:
    content = '{"userProfile": "lift \\ud800 heavy"}'
    response = portal.call(portal.client.post("/v1/plans", headers=auth(), content=content))
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"


@pytest.mark.parametrize(
    "value", ["²".encode(), b"18446744073709551617", b"1" * 19, b"-1", b"1e3", b"0x10", "\u0661\u0662".encode()]
)
def test_a_last_event_id_that_is_not_one_of_ours_is_a_422_before_any_stream(portal: Portal, value: bytes) -> None:
    created = portal.call(portal.client.post("/v1/plans", headers=auth(), json={"userProfile": PROFILE}))
    request_id = created.json()["request_id"]

    response = portal.call(
        portal.client.get(f"/v1/requests/{request_id}/events", headers={**auth(), "Last-Event-ID": value})
    )

    assert response.status_code == 422
    assert error_of(response)["details"][0]["loc"] == ["header", "Last-Event-ID"]


# --- item 3: replies say the truth ------------------------------------------------------------


def test_an_idempotent_retry_of_a_cancelled_request_says_cancelled(portal: Portal) -> None:
    headers = {**auth(), "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = portal.call(portal.client.post("/v1/plans", headers=headers, json={"userProfile": PROFILE}))
    request_id = first.json()["request_id"]
    assert (first.status_code, first.json()["status"]) == (202, "processing")
    assert portal.call(portal.client.delete(f"/v1/requests/{request_id}", headers=auth())).status_code == 200

    retry = portal.call(portal.client.post("/v1/plans", headers=headers, json={"userProfile": PROFILE}))

    assert retry.status_code == 200
    assert (retry.json()["request_id"], retry.json()["status"]) == (request_id, "cancelled")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (f"/v1/requests/{uuid.uuid4()}", "DELETE, GET, OPTIONS"),
        # Served by a plain Starlette route in front of its FastAPI declaration (services/gateway/trigger.py).
        ("/functions/v1/trigger-workout-plan", "OPTIONS, POST"),
    ],
)
def test_allow_lists_every_method_the_path_serves_on_405_and_options(portal: Portal, path: str, allowed: str) -> None:
    options = portal.call(portal.client.options(path))
    refused = portal.call(portal.client.put(path, headers=auth()))

    assert options.status_code == 204
    assert options.headers["Allow"] == allowed
    assert refused.status_code == 405
    assert refused.headers["Allow"] == allowed
    assert error_of(refused)["code"] == "invalid_request"


def test_a_trailing_slash_is_not_found_and_never_redirected_to_the_callers_host(portal: Portal) -> None:
    response = portal.call(portal.client.get("/v1/requests/", headers={**auth(), "Host": "evil.example"}))

    assert response.status_code == 404
    assert "location" not in response.headers
    assert error_of(response)["code"] == "not_found"


def test_authenticated_replies_and_errors_are_no_store(portal: Portal) -> None:
    created = portal.call(portal.client.post("/v1/plans", headers=auth(), json={"userProfile": PROFILE}))
    snapshot = portal.call(portal.client.get(f"/v1/requests/{created.json()['request_id']}", headers=auth()))
    listing = portal.call(portal.client.get("/v1/requests", headers=auth()))
    missing = portal.call(portal.client.get(f"/v1/plans/{uuid.uuid4()}", headers=auth()))

    for reply in (created, snapshot, listing, missing):
        assert reply.headers["Cache-Control"] == "no-store", reply.request.url


# --- item 1: property-based, full Unicode and bad headers -------------------------------------

# What an HTTP parser lets through in a header value: tab, visible ASCII, obs-text (any byte
# >= 0x80, so UTF-8 of any character too), never CR, LF or NUL.
_header_bytes = st.binary(max_size=60).map(lambda raw: bytes(b for b in raw if b == 9 or b >= 32).strip(b" \t"))
_any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=60)
_header_value = st.one_of(
    _header_bytes,
    _any_text.map(lambda text: text.encode("utf-8", "surrogatepass")).map(
        lambda raw: bytes(b for b in raw if b == 9 or b >= 32).strip(b" \t")
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
    st.sampled_from(["²".encode(), "\u0661".encode(), b"9" * 18, b"9" * 19, str(2**63).encode(), b""]),
)
_authorization = st.one_of(
    st.just(f"Bearer {TOKEN}".encode()),
    st.just(f"Bearer {TOKEN}".encode()),
    _header_value.map(lambda raw: b"Bearer " + raw),
    _header_value,
)
_headers = st.fixed_dictionaries(
    {"Authorization": _authorization},
    optional={"Idempotency-Key": _header_value, "Last-Event-ID": _header_value, "Content-Type": _header_value},
)
# JSON carries any code point, lone surrogates included (as \\udXXX escapes).
_json_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=40)
_json_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _json_text)
_body = st.one_of(
    st.fixed_dictionaries(
        {"userProfile": st.one_of(_json_text, _json_value)},
        optional={"systemPrompt": st.one_of(_json_text, _json_value), "x\u0000": _json_text},
    ).map(lambda body: json.dumps(body).encode()),
    st.binary(max_size=80),
    _json_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
)
_path_id = st.one_of(
    st.uuids().map(str), _json_text.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe=""))
)

ROUTES = [
    ("POST", "/functions/v1/trigger-workout-plan"),
    ("POST", "/v1/plans"),
    ("GET", "/v1/requests/{id}"),
    ("DELETE", "/v1/requests/{id}"),
    ("GET", "/v1/requests/{id}/events"),
]
SENT: dict[str, list[int]] = {f"{method} {path}": [] for method, path in ROUTES}
ACCEPTED: set[str] = set()
CANCELLED: set[str] = set()


@pytest.mark.parametrize(("method", "template"), ROUTES)
def test_generated_requests_with_any_unicode_and_bad_headers_never_get_a_5xx(
    portal: Portal, method: str, template: str
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,
    )
    @given(headers=_headers, body=_body, path_id=_path_id, known=st.booleans())
    def one(headers: dict[str, bytes], body: bytes, path_id: str, known: bool) -> None:
        # Known ids: on the live-status route only ended ones, whose streams close at once.
        pool = sorted(CANCELLED if template.endswith("/events") else ACCEPTED)
        if known and pool:
            path_id = pool[len(path_id) % len(pool)]
        path = template.replace("{id}", path_id.lstrip("/") or "x")
        raw_headers = [(name.encode(), value) for name, value in headers.items()]
        request = portal.client.build_request(method, path, content=body if method == "POST" else None)
        request.headers = httpx.Headers([*request.headers.raw, *raw_headers])
        response = portal.call(portal.client.send(request))
        SENT[f"{method} {template}"].append(response.status_code)
        assert response.status_code < 500, (path, headers, body, response.text)
        if response.status_code >= 400:
            error_of(response)
        if method == "POST" and response.status_code == 202:
            ACCEPTED.add(response.json()["request_id"])
        if method == "DELETE" and response.status_code == 200:
            CANCELLED.add(response.json()["request_id"])

    one()
    assert len(SENT[f"{method} {template}"]) >= EXAMPLES_PER_ROUTE


def test_refused_generated_requests_wrote_nothing(database_url: str) -> None:
    print({route: len(statuses) for route, statuses in SENT.items()}, f"accepted {len(ACCEPTED)}")
    assert all(len(statuses) >= EXAMPLES_PER_ROUTE for statuses in SENT.values())
    assert ACCEPTED
    stored = rows(database_url, "SELECT id, status FROM workout_plan_requests WHERE user_id = $1", FUZZ_USER)
    # Exactly the requests answered 202 exist; exactly those answered 200 to a DELETE are cancelled.
    assert {str(row["id"]) for row in stored} == ACCEPTED
    assert {str(row["id"]) for row in stored if row["status"] == "cancelled"} == CANCELLED
    outbox = rows(
        database_url,
        "SELECT payload::jsonb ->> 'request_id' AS id FROM outbox WHERE payload::jsonb ->> 'user_id' = $1",
        str(FUZZ_USER),
    )
    assert {row["id"] for row in outbox} <= ACCEPTED
