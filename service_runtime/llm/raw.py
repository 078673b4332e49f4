"""Requests whose JSON body we build ourselves, sent through the SDK's request path.

The SDK's typed methods (``chat.completions.create``, ``responses.create``) walk every parameter
through a type-driven transform before sending it: the reply type's JSON schema included, key by
key, then deep-copy the body and encode it with the standard library. For a week's call that was
a quarter to a third of the planner's CPU (docs/benchmarks.md). ``post_json`` sends the same body
as orjson bytes through ``AsyncOpenAI.post``, the path every SDK method ends in (same base URL,
headers, auth, timeouts, and HTTP errors raised as ``APIStatusError``s), and hands the reply back
as it came, its body unread: read it as events (``sse.chunks_of``) or parse it into the SDK's
type (``await reply.parse(to=Response)``). The body is the one the typed method would send: the
simulator validates each request against OpenAI's published OpenAPI description.
"""

from collections.abc import Mapping

import openai
import orjson

__all__ = ["STREAMED_AS_IS", "post_json"]

# How ``with_streaming_response`` asks the SDK for a response it has not read: with this header
# the SDK hands the response over as it came, its body still unread.
STREAMED_AS_IS = {"X-Stainless-Raw-Response": "stream"}


async def post_json(
    client: openai.AsyncOpenAI, path: str, body: Mapping[str, object]
) -> "openai.AsyncAPIResponse[bytes]":
    """POST ``body`` (JSON-encodable) to ``path``; the reply, unread (close it, or read it to its end)."""
    return await client.post(
        path, content=orjson.dumps(body), cast_to=openai.AsyncAPIResponse[bytes], options={"headers": STREAMED_AS_IS}
    )
