"""Requests whose JSON body we build ourselves, sent through the SDK's request path.

The SDK's typed methods (``chat.completions.create``, ``responses.create``) walk every parameter
through a type-driven transform before sending it: the reply type's JSON schema included, key by
key, then deep-copy the body and encode it with the standard library. For a week's call that was
a quarter to a third of the planner's CPU (docs/benchmarks.md). ``post_json`` sends the same body
as orjson bytes through ``AsyncOpenAI.request`` with the options ``AsyncOpenAI.post`` would give
it, the path every SDK method ends in (same base URL, headers, auth, retries, timeouts, and HTTP
errors raised as ``APIStatusError``s), and hands the reply back
as it came, its body unread: read it as events (``sse.chunks_of``) or parse it into the SDK's
type (``read_model``). The body is the one the typed method would send: the simulator validates
each request against OpenAI's published OpenAPI description.

``get_raw`` does the same for a GET (``responses.retrieve`` also walks its query parameters
through the transform), and ``read_model`` builds the SDK's type from a reply as the SDK does
(leniently: a field or value the API adds later is kept, not refused) without the top-level
fields the caller never reads: a response echoes its request's reply format, JSON schema and all,
and building that, key by key in Python, was most of the cost of reading each poll.
"""

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import openai
import orjson
from openai._models import FinalRequestOptions

__all__ = ["STREAMED_AS_IS", "get_raw", "model_of", "post_json", "read_model", "read_object"]

M = TypeVar("M", bound=openai.BaseModel)

# How ``with_streaming_response`` asks the SDK for a response it has not read: with this header
# the SDK hands the response over as it came, its body still unread.
STREAMED_AS_IS = {"X-Stainless-Raw-Response": "stream"}

# The options ``AsyncOpenAI.post`` and ``.get`` build from their arguments before calling its
# ``request``, made once and copied per request with its URL and body: building them walks every
# field's default through a deep copy, ~70 µs a request (the SDK's ``request`` copies what it is
# given before changing anything, so the copies share nothing it writes to).
_POST = FinalRequestOptions.construct(
    method="post", url="", json_data=None, content=None, files=None, headers=STREAMED_AS_IS
)
_GET = FinalRequestOptions.construct(method="get", url="", headers=STREAMED_AS_IS)


async def post_json(
    client: openai.AsyncOpenAI, path: str, body: Mapping[str, object]
) -> "openai.AsyncAPIResponse[bytes]":
    """POST ``body`` (JSON-encodable) to ``path``; the reply, unread (close it, or read it to its end)."""
    options = _POST.model_copy(update={"url": _absolute(client, path), "content": orjson.dumps(body)})
    return await client.request(openai.AsyncAPIResponse[bytes], options)


async def get_raw(client: openai.AsyncOpenAI, path: str) -> "openai.AsyncAPIResponse[bytes]":
    """GET ``path``; the reply, unread."""
    return await client.request(
        openai.AsyncAPIResponse[bytes], _GET.model_copy(update={"url": _absolute(client, path)})
    )


def _absolute(client: openai.AsyncOpenAI, path: str) -> str:
    """The URL the SDK would make of ``path`` (its base URL always ends in a slash), given whole: a
    relative one is parsed, merged with the base URL and parsed again on every request."""
    return f"{client.base_url}{path.lstrip('/')}"


async def read_model(reply: "openai.AsyncAPIResponse[bytes]", model: type[M], *, unread: Iterable[str] = ()) -> M:
    """The reply's JSON object as ``model``, built as the SDK builds its replies, without its
    top-level fields named in ``unread`` (left at their defaults). A body that is not a JSON
    object raises ``ValueError``, as the SDK's own parsing does."""
    return model_of(await read_object(reply), model, unread=unread)


async def read_object(reply: "openai.AsyncAPIResponse[bytes]") -> dict[str, Any]:
    """The reply's body, a JSON object; ``ValueError`` for anything else."""
    data = orjson.loads(await reply.read())
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def model_of(data: dict[str, Any], model: type[M], *, unread: Iterable[str] = ()) -> M:
    """``data`` (changed in place) as ``model``, built as the SDK builds its replies, without the
    top-level fields named in ``unread``."""
    for name in unread:
        data.pop(name, None)
    return model.construct(**data)
