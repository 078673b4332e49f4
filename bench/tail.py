"""Where the gateway's slowest accepts fall in time, beside what Postgres was waiting on then.

``python -m bench.tail [--alone] [--rate 500] [--seconds 8]``: the gateway section's setup
(``bench.gateway_latency``: the gateway alone on NATS and Postgres, or the whole stack) and its
ramp (100 and 250 accepts a second first, as the report runs them), then ``--rate`` accepts a
second while a thread reads ``pg_stat_activity`` every 10 ms. Prints the percentiles, the
requests at or over the p99 grouped by the tenth of a second they were due in, and the Postgres
waits seen from just before each group to just after it (a backend on the CPU or waiting for
its client is left out, and a commit's WAL flush unless one is seen for 30 ms).

Groups that line up with one wait event are a stall: this is how new WAL segments' zero-fill was
found (``IO:WALInitSync``, 40-70 ms, docs/benchmarks.md). Slow requests spread evenly over the
run, with no wait beside them, are the cores being shared.
"""

import argparse
import asyncio
import math
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import asyncpg

from bench.gateway_latency import BODY, GATEWAY_ENV, TRIGGER, gateway_under_test, load
from bench.loadgen import LoadSpec
from bench.workdirs import workdir_or_scratch
from services.gateway.devtoken import mint_dev_token
from tests.stack import JWT_SECRET

__all__ = ["main"]

_WAITS = """
SELECT pid,
    -- An autovacuum worker's query names its table ("autovacuum: VACUUM public.outbox").
    CASE WHEN backend_type = 'autovacuum worker' THEN query ELSE backend_type END AS backend,
    coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND (state = 'active' OR backend_type <> 'client backend')
"""
_PLANS_PER_USER = 25
# The rates run first, each below the one measured (as the gateway section ramps).
_RAMP = (100.0, 250.0)
_IGNORED = frozenset({"CPU", "Client:ClientRead"})
# A commit's WAL flush: reported only when one backend is seen in it this many samples in a row.
_FLUSHES = frozenset({"IO:WALSync", "IO:WALWrite", "LWLock:WALWrite"})
_LONG_FLUSH_SAMPLES = 3
# How far before and after a group's tenth of a second a wait counts as beside it.
_BEFORE, _AFTER = 0.1, 0.3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tail", description=__doc__.split("\n")[0])
    parser.add_argument("--alone", action="store_true", help="the gateway on NATS and Postgres only")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    waits: list[tuple[float, str, str]] = []
    with (
        workdir_or_scratch(None, "bench-tail-") as work,
        gateway_under_test(work, GATEWAY_ENV, args.alone) as (url, _, database_url),
    ):
        host, port = url.removeprefix("http://").split(":")
        # Enough users that none reaches the default daily budget (50 plans at $0.02 of $1.00):
        # a refusal is a 429 left out of the figures.
        ramp = [rate for rate in _RAMP if rate < args.rate]
        sent = 200 + sum(ramp) * args.seconds + args.rate * args.seconds
        users = max(1000, math.ceil(sent / _PLANS_PER_USER))
        tokens = tuple(mint_dev_token(JWT_SECRET, uuid.uuid4()) for _ in range(users))
        load(LoadSpec(host, int(port), "POST", TRIGGER, 100, 2.0, tokens, BODY), work)
        for rate in ramp:
            load(LoadSpec(host, int(port), "POST", TRIGGER, rate, args.seconds, tokens, BODY), work)
        stop = threading.Event()
        sampler = threading.Thread(target=lambda: asyncio.run(_sample(database_url, stop, waits)))
        sampler.start()
        try:
            spec = LoadSpec(host, int(port), "POST", TRIGGER, args.rate, args.seconds, tokens, BODY, series=True)
            figures = load(spec, work)
        finally:
            stop.set()
            sampler.join()
    print(_report(figures, waits, stack="the gateway alone" if args.alone else "the whole stack"))


async def _sample(database_url: str, stop: threading.Event, waits: list[tuple[float, str, str]]) -> None:
    """Every 10 ms until ``stop``: the waits worth seeing, as (epoch seconds, backend type, wait)."""
    conn = await asyncpg.connect(database_url)
    streaks: dict[tuple[int, str], int] = {}
    try:
        while not stop.is_set():
            rows = await conn.fetch(_WAITS)
            now = time.time()
            seen: dict[tuple[int, str], int] = {}
            for row in rows:
                wait = row["wait"]
                count = seen[row["pid"], wait] = streaks.get((row["pid"], wait), 0) + 1
                if wait in _FLUSHES:
                    if count == _LONG_FLUSH_SAMPLES:
                        waits.append((now, row["backend"], f"{wait} (one flush over {10 * count} ms)"))
                elif wait not in _IGNORED and not wait.startswith("Activity:"):
                    waits.append((now, row["backend"], wait))
            streaks = seen
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


def _report(figures: dict[str, Any], waits: list[tuple[float, str, str]], *, stack: str) -> str:
    latency = figures["latency_ms"]
    lines = [
        f"{figures['target_rate']:.0f} accepts/s for {figures['seconds']:.0f} s, {stack}: {figures['ok']}/"
        f"{figures['sent']} accepted, p50 {latency['p50']} p99 {latency['p99']} p999 {latency['p999']}"
        f" max {latency['max']} ms",
        "requests at or over the p99, by the tenth of a second they were due in; Postgres's waits beside them:",
    ]
    p99 = latency["p99"] / 1000
    groups: dict[float, list[float]] = defaultdict(list)
    for due, took in figures["series"]:
        if took >= p99:
            groups[int(due * 10) / 10].append(took)
    started = figures["started_at_epoch"]
    for at in sorted(groups):
        beside = Counter(
            f"{backend} {wait}" for when, backend, wait in waits if at - _BEFORE <= when - started <= at + _AFTER
        )
        seen = ", ".join(f"{name} x{count}" for name, count in beside.most_common()) or "none"
        lines.append(f"  {at:5.1f} s  {len(groups[at]):3d} requests, slowest {1000 * max(groups[at]):6.1f} ms  {seen}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
