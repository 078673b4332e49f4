"""The chat adapter's reading of a streamed reply: events split as the WHATWG format says, errors
raised as the SDK's stream raises them."""

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import httpx2
import openai
import orjson
import pytest

from service_runtime.llm.sse import chunks_of

REQUEST = httpx2.Request("POST", "http://llm.test/v1/chat/completions")


class Body:
    """What ``chunks_of`` reads of the SDK's response: its bytes, in the pieces given."""

    def __init__(self, pieces: Sequence[bytes], fail: Exception | None = None) -> None:
        self._pieces = pieces
        self._fail = fail
        self.read: list[bytes] = []
        self.http_request = REQUEST

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            self.read.append(piece)
            yield piece
        if self._fail is not None:
            raise self._fail


async def chunks(body: Body) -> list[dict[str, Any]]:
    return [chunk async for chunk in chunks_of(cast("openai.AsyncAPIResponse[bytes]", body))]


def event(data: object) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def test_events_split_anywhere_are_read_whole_until_done_and_the_body_is_read_to_its_end() -> None:
    stream = event({"n": 1}) + b": a comment\n\n" + event({"n": 2}) + b"data: [DONE]\n\n"
    pieces = [stream[i : i + 7] for i in range(0, len(stream), 7)] + [b"after done"]
    body = Body(pieces)

    assert await chunks(body) == [{"n": 1}, {"n": 2}]
    assert body.read == pieces  # drained, so the connection can be reused


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr", "lf"])
async def test_any_line_ending_and_data_over_several_lines(newline: bytes) -> None:
    stream = b"event: x" + newline + b'data: {"a":' + newline + b"data:1}" + newline + newline
    assert await chunks(Body([stream, b"data: [DONE]" + newline + newline])) == [{"a": 1}]


async def test_a_last_event_without_its_blank_line_still_counts() -> None:
    assert await chunks(Body([b'data: {"last": true}'])) == [{"last": True}]


async def test_an_error_event_is_raised_with_its_message_as_the_sdk_raises_it() -> None:
    body = Body([event({"n": 1}), event({"error": {"message": "The server had an error", "type": "server_error"}})])
    with pytest.raises(openai.APIError) as caught:
        await chunks(body)
    assert caught.value.message == "The server had an error"
    assert caught.value.body == {"message": "The server had an error", "type": "server_error"}

    with pytest.raises(openai.APIError) as bare:
        await chunks(Body([event({"error": "boom"})]))
    assert bare.value.message == "An error occurred during streaming"


async def test_an_event_that_is_not_json_is_refused_and_one_that_is_not_an_object_carries_nothing() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        await chunks(Body([b"data: {not json\n\n"]))
    assert await chunks(Body([event([1, 2]), event({"n": 1})])) == [{}, {"n": 1}]


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (httpx2.ReadTimeout("slow", request=REQUEST), openai.APITimeoutError),
        (httpx2.RemoteProtocolError("peer closed", request=REQUEST), openai.APIConnectionError),
    ],
    ids=["timeout", "dropped"],
)
async def test_a_failure_while_reading_is_raised_as_the_sdk_raises_it(failure: Exception, raised: type) -> None:
    with pytest.raises(raised):
        await chunks(Body([event({"n": 1})], fail=failure))
