"""Prompt caching as OpenAI's prompt-caching guide describes it.

"Caching is enabled automatically for prompts that are 1024 tokens or longer", "with cache hits
occurring in increments of 128 tokens. Therefore, the number of cached tokens in a request will
always fall within the following sequence: 1024, 1152, 1280, 1408, and so on", and "Cache hits are
only possible for exact prefix matches". A request's ``cached_tokens`` is the longest prefix, at one
of those boundaries, that an earlier request of the same model (and the same ``prompt_cache_key``,
when one is set) wrote; the request that writes a prefix first gets 0. A prefix is written by its
writer's prefill, so it is readable only once the writer's first token is out (``ready_after``):
requests sent at the same instant all miss, as they do at the provider. "Cached prefixes generally
remain active for 5 to 10 minutes of inactivity": an entry lives ``ttl`` seconds after its last use.

The prompt is linearised exactly as ``pacing.prompt_tokens`` counts it: each message is 4 tokens
of framing (carrying its role) and then its text, 4 characters a token (the last one padded), and
3 tokens of reply priming end it. So token ``n`` ends at character ``4n`` of the linear text, and
each boundary's key is a running hash of the text up to it: one pass over the prompt, a dictionary
lookup per boundary. Entries are kept in least-recently-used order and capped, so memory stays
bounded however many distinct prompts arrive.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Iterable

from llm_simulator.pacing import CHARS_PER_TOKEN

MIN_CACHED_TOKENS = 1024
INCREMENT_TOKENS = 128
DEFAULT_MAX_ENTRIES = 200_000

_FRAME_CHARS = 4 * CHARS_PER_TOKEN  # the 4 tokens of framing a message costs in ``prompt_tokens``
_PAD = "\x1f"
_PRIMING = _PAD * (3 * CHARS_PER_TOKEN)  # the 3 tokens that prime the reply


def linearised(messages: Iterable[tuple[str, str]]) -> str:
    """``(role, text)`` messages as one string of exactly ``4 * prompt_tokens`` characters."""
    parts: list[str] = []
    for role, text in messages:
        parts.append((_PAD + role)[:_FRAME_CHARS].ljust(_FRAME_CHARS, _PAD))
        parts.append(text)
        parts.append(_PAD * (-len(text) % CHARS_PER_TOKEN))
    parts.append(_PRIMING)
    return "".join(parts)


class PromptCache:
    """Cached prompt prefixes of every model, keyed by a hash of (model, cache key, prefix)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        # key -> when it was last used; oldest first.
        self._last_used: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last_used)

    def clear(self) -> None:
        self._last_used.clear()

    def cached_tokens(
        self,
        model: str,
        cache_key: str | None,
        messages: Iterable[tuple[str, str]],
        now: float,
        ttl: float,
        *,
        ready_after: float = 0.0,
    ) -> int:
        """How many of this prompt's tokens were cached; then cache (or refresh) every prefix of it,
        a new one readable ``ready_after`` seconds from now (when this request's prefill is done)."""
        if ttl <= 0:
            return 0
        text = linearised(messages)
        total_tokens = len(text) // CHARS_PER_TOKEN
        if total_tokens < MIN_CACHED_TOKENS:
            return 0
        self._expire(now, ttl)
        keys = _prefix_keys(model, cache_key, text, total_tokens)
        hit = 0
        for boundary, key in reversed(keys):
            used = self._last_used.get(key)
            if used is not None and used <= now and now - used <= ttl:
                hit = boundary
                break
        for _, key in keys:
            used = self._last_used.get(key)
            # A prefix still being written stays unreadable until then; a readable one is refreshed.
            self._last_used[key] = now + ready_after if used is None or now - used > ttl else max(now, used)
            self._last_used.move_to_end(key)
        while len(self._last_used) > self._max_entries:
            self._last_used.popitem(last=False)
        return hit

    def _expire(self, now: float, ttl: float) -> None:
        """Drop entries unused for longer than ``ttl``: they are the oldest, so at the front."""
        while self._last_used:
            key, used = next(iter(self._last_used.items()))
            if now - used <= ttl:
                return
            del self._last_used[key]


def _prefix_keys(model: str, cache_key: str | None, text: str, total_tokens: int) -> list[tuple[int, bytes]]:
    """``(boundary, key)`` for every cacheable boundary of ``text``: 1024, 1152, ... tokens."""
    running = hashlib.blake2b(digest_size=16)
    scope = f"{model}\x00" + ("\x00" if cache_key is None else f"\x01{cache_key}")
    running.update(scope.encode("utf-8", "surrogatepass") + b"\x00")
    keys: list[tuple[int, bytes]] = []
    hashed = 0
    for boundary in range(MIN_CACHED_TOKENS, total_tokens + 1, INCREMENT_TOKENS):
        end = boundary * CHARS_PER_TOKEN
        running.update(text[hashed:end].encode("utf-8", "surrogatepass"))
        hashed = end
        keys.append((boundary, running.digest()))
    return keys
