"""The gateway called the way a Supabase app calls an Edge Function: ``functions.invoke``.

The real client library (supabase-py 2.34.1) against the real gateway served over HTTP, with a
real NATS JetStream and Postgres; the client's URL is the gateway's, as ``SUPABASE_URL``. Browser
behaviour (CORS preflights, readable errors) is driven with the headers supabase-js sends. The
forwarding Edge Function in ``deploy/supabase`` has no Deno here: its header lists are checked
against the gateway's by reading the file, and, where Node is installed, the function itself runs
under Node (its few type annotations stripped, ``Deno.env``/``Deno.serve`` shimmed) against the
real gateway.
"""

import asyncio
import json
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from supabase import AsyncClient, AsyncClientOptions, FunctionsHttpError, acreate_client
from supabase_functions.utils import FunctionRegion

from services.gateway.app import CORS_ALLOWED_HEADERS, create_app
from services.gateway.devtoken import mint_dev_token
from services.gateway.settings import GatewaySettings
from tests.integration.gateway_client import (
    ACCEPTED,
    OTHER_SECRET,
    PROFILE,
    SECRET,
    bearer,
    error_of,
    serving_over_http,
    wrong_audience_token,
)

pytestmark = pytest.mark.integration

FUNCTION = "trigger-workout-plan"
APP_ORIGIN = "https://app.example"
# What supabase-js (functions-js FunctionsClient.invoke, fetchWithAuth) puts on a call from a
# browser, so what the browser asks a preflight for.
SUPABASE_JS_HEADERS = "authorization, x-client-info, apikey, content-type"
EDGE_FUNCTION = Path(__file__).parents[2] / "deploy" / "supabase" / "functions" / FUNCTION / "index.ts"


def settings(nats_url: str, database_url: str) -> GatewaySettings:
    return GatewaySettings(
        nats_url=nats_url, database_url=database_url, supabase_jwt_secret=SECRET, cors_origins=APP_ORIGIN
    )


def _boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
async def gateway(nats_url: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on a real port; ``/functions/v1/boom`` is a bug, for the 500 path."""
    app: FastAPI = create_app(settings(nats_url, database_url))
    app.router.add_api_route("/functions/v1/boom", _boom, methods=["POST"])
    async with serving_over_http(app) as client:
        yield client


Sent = list[httpx.Request]
Supabase = Callable[..., Awaitable[tuple[AsyncClient, Sent]]]


@pytest.fixture
async def supabase(gateway: httpx.AsyncClient) -> AsyncIterator[Supabase]:
    """``supabase(access_token=None)``: a supabase-py client whose SUPABASE_URL is the gateway.

    The key is an anon-role JWT, as a project's anon key is. The user's token goes in the
    Authorization header, as a server passes it; without one the client sends its key as the
    Bearer, as it does before sign-in. Returns the client and the requests it sent.
    """
    opened: list[httpx.AsyncClient] = []

    async def make(access_token: str | None = None) -> tuple[AsyncClient, Sent]:
        sent: Sent = []

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        # Our own httpx client: supabase-py passes a deprecated ``timeout`` to the functions
        # client (a DeprecationWarning, an error here) unless it is given one.
        http = httpx.AsyncClient(timeout=20, event_hooks={"request": [record]})
        opened.append(http)
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        options = AsyncClientOptions(httpx_client=http, headers={**AsyncClientOptions().headers, **headers})
        client = await acreate_client(str(gateway.base_url), wrong_audience_token(), options)
        return client, sent

    yield make
    for http in opened:
        await http.aclose()


async def stored(db: asyncpg.Connection, user_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT id, user_id, status, user_profile FROM workout_plan_requests WHERE user_id = $1", user_id
    )
    return rows


@asynccontextmanager
async def raised_http_error() -> AsyncIterator[list[FunctionsHttpError]]:
    caught: list[FunctionsHttpError] = []
    with pytest.raises(FunctionsHttpError) as excinfo:
        yield caught
    caught.append(excinfo.value)


# functions.invoke -------------------------------------------------------------------------------


async def test_functions_invoke_gets_the_202_body_unchanged_and_the_request_is_stored(
    supabase: Supabase, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    token = mint_dev_token(SECRET, user_id)
    client, sent = await supabase(token)

    reply = await client.functions.invoke(FUNCTION, invoke_options={"body": {"userProfile": PROFILE}})

    assert isinstance(reply, bytes)  # supabase-py's default responseType hands back the raw body
    body = json.loads(reply)
    assert body == {"request_id": body["request_id"], "status": "processing", "message": ACCEPTED}
    rows = await stored(db, user_id)
    assert [(row["id"], row["status"], row["user_profile"]) for row in rows] == [
        (uuid.UUID(body["request_id"]), "processing", PROFILE)
    ]
    (request,) = sent
    assert (request.method, request.url.path) == ("POST", f"/functions/v1/{FUNCTION}")
    # The headers a Supabase client sends: all accepted, apikey ignored.
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["apikey"] == client.supabase_key
    assert request.headers["x-client-info"].startswith("supabase-py/")
    assert request.headers["content-type"] == "application/json"


async def test_invoke_with_a_json_response_type_and_a_region_is_accepted(
    supabase: Supabase, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    client, sent = await supabase(mint_dev_token(SECRET, user_id))

    body = await client.functions.invoke(
        FUNCTION,
        invoke_options={
            "body": {"userProfile": PROFILE, "systemPrompt": "Keep it short."},
            "responseType": "json",
            "region": FunctionRegion.EuWest1,
        },
    )

    assert isinstance(body, dict)
    assert (body["status"], body["message"]) == ("processing", ACCEPTED)
    assert [row["id"] for row in await stored(db, user_id)] == [uuid.UUID(body["request_id"])]
    # A region adds a header and a query parameter; both are ignored.
    assert sent[0].headers["x-region"] == "eu-west-1"
    assert sent[0].url.params["forceFunctionRegion"] == "eu-west-1"


async def test_an_idempotency_key_given_to_invoke_returns_the_first_request(
    supabase: Supabase, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    client, _ = await supabase(mint_dev_token(SECRET, user_id))
    options = {
        "body": {"userProfile": PROFILE},
        "headers": {"Idempotency-Key": "signup-plan-1"},
        "responseType": "json",
    }

    first = await client.functions.invoke(FUNCTION, invoke_options=options)
    again = await client.functions.invoke(FUNCTION, invoke_options=options)

    assert isinstance(first, dict) and isinstance(again, dict)
    assert again["request_id"] == first["request_id"]
    assert len(await stored(db, user_id)) == 1


async def test_a_bad_body_raises_functions_http_error_carrying_our_error(
    supabase: Supabase, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    client, _ = await supabase(mint_dev_token(SECRET, user_id))

    async with raised_http_error() as caught:
        await client.functions.invoke(FUNCTION, invoke_options={"body": {"userProfile": "   "}})

    (error,) = caught
    assert (error.name, error.status) == ("FunctionsHttpError", 422)
    # supabase-py surfaces our body's "error" object as the exception's message.
    details: Any = error.message
    assert set(details) == {"code", "message", "details"}
    assert details["code"] == "invalid_request"
    assert [detail["loc"] for detail in details["details"]] == [["body", "userProfile"]]
    assert await stored(db, user_id) == []


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-jwt", id="malformed"),
        pytest.param(mint_dev_token(OTHER_SECRET), id="another-projects-secret"),
        pytest.param(mint_dev_token(SECRET, ttl_seconds=-60), id="expired"),
    ],
)
async def test_a_bad_token_raises_functions_http_error_carrying_our_401(supabase: Supabase, token: str) -> None:
    client, _ = await supabase()
    client.functions.set_auth(token)

    async with raised_http_error() as caught:
        await client.functions.invoke(FUNCTION, invoke_options={"body": {"userProfile": PROFILE}})

    (error,) = caught
    assert error.status == 401
    assert error.to_dict()["name"] == "FunctionsHttpError"
    details: Any = error.message
    assert details["code"] == "unauthorized"
    assert details["message"].startswith("The access token is not valid")


async def test_before_sign_in_the_anon_key_sent_as_the_bearer_is_refused(supabase: Supabase) -> None:
    client, sent = await supabase()

    async with raised_http_error() as caught:
        await client.functions.invoke(FUNCTION, invoke_options={"body": {"userProfile": PROFILE}})

    (error,) = caught
    details: Any = error.message
    assert (error.status, details["code"]) == (401, "unauthorized")
    assert sent[0].headers["authorization"] == f"Bearer {client.supabase_key}"


async def test_a_bug_raises_functions_http_error_with_our_500_and_is_logged(
    supabase: Supabase, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await supabase(mint_dev_token(SECRET))

    with caplog.at_level(logging.ERROR, logger="services.gateway.errors"):
        async with raised_http_error() as caught:
            await client.functions.invoke("boom", invoke_options={"body": {}})

    (error,) = caught
    details: Any = error.message
    assert (error.status, details) == (500, {"code": "internal", "message": "Internal error.", "details": []})
    (logged,) = [record for record in caplog.records if record.name == "services.gateway.errors"]
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], RuntimeError)


# From a browser (the headers supabase-js sends) ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "requested"),
    [
        (f"/functions/v1/{FUNCTION}", "POST", SUPABASE_JS_HEADERS),
        (f"/functions/v1/{FUNCTION}", "POST", f"{SUPABASE_JS_HEADERS}, x-region, idempotency-key"),
        (f"/functions/v1/{FUNCTION}", "POST", f"{SUPABASE_JS_HEADERS}, traceparent, tracestate, baggage"),
        ("/v1/plans", "POST", f"{SUPABASE_JS_HEADERS}, idempotency-key"),
        ("/v1/requests", "GET", "authorization, x-client-info, apikey"),
        (f"/v1/requests/{uuid.uuid4()}/events", "GET", "authorization, apikey, last-event-id"),
        (f"/v1/requests/{uuid.uuid4()}", "DELETE", "authorization, x-client-info, apikey"),
    ],
)
async def test_a_browser_preflight_for_the_headers_supabase_clients_send_is_allowed(
    gateway: httpx.AsyncClient, path: str, method: str, requested: str
) -> None:
    response = await gateway.options(
        path,
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": requested,
        },
    )

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert method in response.headers["access-control-allow-methods"].split(", ")
    allowed = {header.strip().lower() for header in response.headers["access-control-allow-headers"].split(",")}
    assert {header.strip() for header in requested.split(",")} <= allowed


async def test_a_preflight_from_an_origin_not_configured_is_refused(gateway: httpx.AsyncClient) -> None:
    response = await gateway.options(
        f"/functions/v1/{FUNCTION}",
        headers={
            "Origin": "https://elsewhere.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": SUPABASE_JS_HEADERS,
        },
    )

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def browser_headers(authorization: dict[str, str]) -> dict[str, str]:
    return {
        **authorization,
        "Origin": APP_ORIGIN,
        "apikey": "the-projects-anon-key",
        "x-client-info": "supabase-js/2.95.3; runtime=web",
        "x-region": "eu-west-1",
        "Content-Type": "application/json",
    }


async def test_a_browser_call_with_those_headers_is_accepted_and_readable(
    gateway: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()

    response = await gateway.post(
        f"/functions/v1/{FUNCTION}",
        headers={**browser_headers(bearer(user_id)), "Idempotency-Key": "k-1"},
        content=json.dumps({"userProfile": PROFILE}),
    )

    assert response.status_code == 202, response.text
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    # functions-js parses the body as JSON only when the reply says it is JSON.
    assert response.headers["content-type"] == "application/json"
    assert [row["id"] for row in await stored(db, user_id)] == [uuid.UUID(response.json()["request_id"])]


@pytest.mark.parametrize(
    ("path", "authorization", "body", "expected"),
    [
        pytest.param(
            f"/functions/v1/{FUNCTION}",
            {"Authorization": "Bearer x"},
            {"userProfile": PROFILE},
            (401, "unauthorized"),
            id="401",
        ),
        pytest.param(f"/functions/v1/{FUNCTION}", bearer(), {"userProfile": ""}, (422, "invalid_request"), id="422"),
        pytest.param("/functions/v1/boom", bearer(), {}, (500, "internal"), id="500"),
    ],
)
async def test_a_browser_can_read_every_error_as_our_json(
    gateway: httpx.AsyncClient, path: str, authorization: dict[str, str], body: Any, expected: tuple[int, str]
) -> None:
    # supabase-js raises FunctionsHttpError on any non-2xx without ``x-relay-error: true`` and keeps
    # the Response as ``error.context``; a browser lets the app read it only with CORS headers.
    response = await gateway.post(path, headers=browser_headers(authorization), content=json.dumps(body))

    assert (response.status_code, error_of(response)["code"]) == expected
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["content-type"] == "application/json"
    assert "x-relay-error" not in response.headers
    exposed = {header.strip().lower() for header in response.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "www-authenticate"} <= exposed


# The forwarding Edge Function (deploy/supabase) -------------------------------------------------


def _string_array(source: str, name: str) -> list[str]:
    match = re.search(rf"const {name} = \[(.*?)\]", source, re.DOTALL)
    assert match is not None, f"{name} not found in {EDGE_FUNCTION}"
    return re.findall(r'"([^"]+)"', match.group(1))


def test_the_edge_function_allows_what_the_gateway_allows_and_forwards_what_a_plan_request_needs() -> None:
    source = EDGE_FUNCTION.read_text()
    allowed = _string_array(source, "ALLOWED_HEADERS")
    forwarded = _string_array(source, "FORWARDED_HEADERS")

    assert sorted(allowed) == sorted(CORS_ALLOWED_HEADERS)
    assert set(forwarded) <= set(allowed)
    assert {"authorization", "apikey", "x-client-info", "idempotency-key", "content-type"} <= set(forwarded)
    assert f"/functions/v1/{FUNCTION}" in source
    assert 'Deno.env.get("WORKOUT_GATEWAY_URL")' in source


# Node runs the function: strip the only TypeScript it uses (annotations of these types) and shim
# the two Deno APIs it calls. Each case is a Request init; the answers come back as JSON.
NODE = shutil.which("node")
_TYPE_ANNOTATION = re.compile(r":\s*(?:Promise<Response>|Request|Response|Headers|string)(?=[\s,)=;{])")
_DENO_SHIM = """
globalThis.Deno = { env: { get: (name) => process.env[name] }, serve: (handler) => { globalThis.handler = handler; } };
await import(process.argv[2]);
const url = "https://project.supabase.co/functions/v1/trigger-workout-plan";
const answers = [];
for (const init of JSON.parse(process.argv[3])) {
  const answer = await globalThis.handler(new Request(url, init));
  answers.push({ status: answer.status, headers: Object.fromEntries(answer.headers), body: await answer.text() });
}
console.log(JSON.stringify(answers));
"""


async def run_edge_function(tmp_path: Path, gateway_url: str, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    function = tmp_path / "function.mjs"
    function.write_text(_TYPE_ANNOTATION.sub("", EDGE_FUNCTION.read_text()))
    shim = tmp_path / "shim.mjs"
    shim.write_text(_DENO_SHIM)
    assert NODE is not None
    node = await asyncio.create_subprocess_exec(
        NODE,
        str(shim),
        function.as_uri(),
        json.dumps(requests),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "WORKOUT_GATEWAY_URL": gateway_url, "WORKOUT_CORS_ORIGINS": APP_ORIGIN},
    )
    out, err = await asyncio.wait_for(node.communicate(), 60)
    assert node.returncode == 0, err.decode()
    answers: list[dict[str, Any]] = json.loads(out)
    return answers


def plan_request(authorization: dict[str, str], body: Any, **headers: str) -> dict[str, Any]:
    sent = {
        **authorization,
        "Origin": APP_ORIGIN,
        "apikey": "the-projects-anon-key",
        "x-client-info": "supabase-js/2.95.3; runtime=web",
        "Content-Type": "application/json",
        **headers,
    }
    return {"method": "POST", "headers": sent, "body": json.dumps(body)}


@pytest.mark.skipif(NODE is None, reason="needs node to run the Edge Function")
async def test_the_edge_function_forwards_to_the_gateway_and_returns_its_answers_unchanged(
    gateway: httpx.AsyncClient, db: asyncpg.Connection, tmp_path: Path
) -> None:
    user_id = uuid.uuid4()
    token = bearer(user_id)
    preflight = {
        "method": "OPTIONS",
        "headers": {
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": SUPABASE_JS_HEADERS,
        },
    }

    answers = await run_edge_function(
        tmp_path,
        str(gateway.base_url),  # httpx ends it with a slash; the function drops it
        preflight,
        plan_request(token, {"userProfile": PROFILE}, **{"Idempotency-Key": "edge-1"}),
        plan_request(token, {"userProfile": PROFILE}, **{"Idempotency-Key": "edge-1"}),
        plan_request(token, {"userProfile": ""}),
        plan_request({"Authorization": "Bearer not-a-jwt"}, {"userProfile": PROFILE}),
    )

    options, accepted, retried, invalid, refused = answers
    assert options["status"] == 200
    assert options["headers"]["access-control-allow-origin"] == APP_ORIGIN
    assert set(SUPABASE_JS_HEADERS.split(", ")) <= set(options["headers"]["access-control-allow-headers"].split(", "))
    assert (accepted["status"], accepted["headers"]["content-type"]) == (202, "application/json")
    assert accepted["headers"]["access-control-allow-origin"] == APP_ORIGIN
    body = json.loads(accepted["body"])
    assert body == {"request_id": body["request_id"], "status": "processing", "message": ACCEPTED}
    assert json.loads(retried["body"]) == body  # Idempotency-Key reached the gateway
    assert [row["id"] for row in await stored(db, user_id)] == [uuid.UUID(body["request_id"])]
    assert (invalid["status"], json.loads(invalid["body"])["error"]["code"]) == (422, "invalid_request")
    assert (refused["status"], json.loads(refused["body"])["error"]["code"]) == (401, "unauthorized")
    assert refused["headers"]["www-authenticate"].startswith("Bearer")


@pytest.mark.skipif(NODE is None, reason="needs node to run the Edge Function")
async def test_the_edge_function_answers_503_in_our_shape_when_the_gateway_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"

    (answer,) = await run_edge_function(tmp_path, closed, plan_request(bearer(), {"userProfile": PROFILE}))

    assert (answer["status"], answer["headers"]["retry-after"]) == (503, "5")
    assert answer["headers"]["access-control-allow-origin"] == APP_ORIGIN
    assert json.loads(answer["body"])["error"]["code"] == "unavailable"
