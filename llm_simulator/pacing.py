"""Token estimates and the timing of generated text: a first-token delay, then a steady token rate."""

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

CHARS_PER_TOKEN = 4
# OpenAI bills a few tokens of framing per message, plus a few to prime the reply.
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REPLY = 3
# Text due within one slice goes out as one piece: at thousands of tokens per second, one
# chunk per token would cost more than the generation it simulates.
SLICE_SECONDS = 0.05
# Unpaced, text still goes out in several chunks so clients exercise their stream handling.
_UNPACED_PIECE_CHARS = 2048


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens ``text`` is (OpenAI's rule of thumb: about 4 characters each)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def prompt_tokens(texts: list[str]) -> int:
    """The prompt's size in tokens: each message's text plus its framing, plus the reply's priming."""
    return sum(estimate_tokens(t) + _TOKENS_PER_MESSAGE for t in texts) + _TOKENS_PER_REPLY


@dataclass(frozen=True)
class Pace:
    """How fast text is produced. ``tokens_per_second <= 0`` means as fast as possible."""

    tokens_per_second: float
    first_token_delay_seconds: float
    # At most this many tokens per piece (0: whatever has come due).
    chunk_tokens: int = 0

    def total_seconds(self, text: str) -> float:
        """How long producing all of ``text`` takes, first-token delay included."""
        if self.tokens_per_second <= 0:
            return self.first_token_delay_seconds
        return self.first_token_delay_seconds + estimate_tokens(text) / self.tokens_per_second


async def paced_pieces(text: str, pace: Pace) -> AsyncIterator[str]:
    """Yield ``text`` in pieces at ``pace``: after the first-token delay, each ~50 ms slice
    yields everything that has come due. Only async sleeps, so the event loop never blocks."""
    await asyncio.sleep(pace.first_token_delay_seconds)
    piece_chars = pace.chunk_tokens * CHARS_PER_TOKEN
    if pace.tokens_per_second <= 0:
        step = piece_chars or _UNPACED_PIECE_CHARS
        for start in range(0, len(text), step):
            yield text[start : start + step]
            await asyncio.sleep(0)
        return
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    while sent < len(text):
        elapsed = loop.time() - started
        # The first token is due at once, then one every 1/rate seconds.
        due_tokens = math.floor(elapsed * pace.tokens_per_second) + 1
        due_chars = min(len(text), due_tokens * CHARS_PER_TOKEN)
        if due_chars > sent:
            step = piece_chars or due_chars - sent
            for start in range(sent, due_chars, step):
                yield text[start : min(start + step, due_chars)]
            sent = due_chars
        if sent < len(text):
            next_token_at = (sent // CHARS_PER_TOKEN) / pace.tokens_per_second
            await asyncio.sleep(max(SLICE_SECONDS, next_token_at - (loop.time() - started)))
