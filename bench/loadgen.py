"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, not when replies come back.

Request *i* is due at ``start + i / rate``. Its latency is measured from that due time, so time
spent waiting for a free connection (the server falling behind) counts against the server, not
silently against the schedule ("coordinated omission"). Connections are kept alive and pooled, up
to ``max_connections``; a new one opens when none is idle.

It speaks just enough HTTP/1.1 (preformatted requests, ``Content-Length`` replies) to stay cheap:
a general client such as httpx spends more CPU per request than the gateway's no-op route does,
and on a 2-core box the generator's CPU is taken from the server it measures. It runs in its own
process (``python -m bench.loadgen SPEC.json``) on uvloop and prints its figures as JSON.
"""

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

__all__ = ["LoadSpec", "percentiles", "run_load"]

# Past this a request counts as failed: at overload the queue would otherwise take minutes to drain.
_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    method: str
    path: str
    rate: float
    seconds: float
    # One per simulated user, used round-robin; a body of "" sends none.
    tokens: tuple[str, ...] = ()
    body: str = ""
    max_connections: int = 256
    # Each request's (seconds after the start it was due, latency) in the figures, for ``bench.tail``.
    series: bool = False

    def requests(self) -> list[bytes]:
        body = self.body.encode()
        base = f"{self.method} {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body:
            base += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        tokens = self.tokens or ("",)
        return [
            (base + (f"Authorization: Bearer {token}\r\n" if token else "") + "\r\n").encode() + body
            for token in tokens
        ]


@dataclass
class _Figures:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    send_lag: list[float] = field(default_factory=list)
    connections_opened: int = 0
    last_done: float = 0.0
    series: list[tuple[float, float]] = field(default_factory=list)


class _Pool:
    def __init__(self, host: str, port: int, limit: int, figures: _Figures) -> None:
        self._host, self._port, self._limit = host, port, limit
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._open = 0
        self._freed = asyncio.Condition()
        self._figures = figures

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._freed:
            while True:
                while not self._idle and self._open >= self._limit:
                    await self._freed.wait()
                if not self._idle:
                    break
                reader, writer = self._idle.pop()
                if not reader.at_eof() and not writer.is_closing():
                    return reader, writer
                # The server closed it while idle (its keep-alive timeout): as an HTTP client
                # library does, drop it rather than send a request into a closed connection.
                writer.close()
                self._open -= 1
            self._open += 1
        try:
            connection = await asyncio.open_connection(self._host, self._port)
        except BaseException:
            await self.discard()
            raise
        self._figures.connections_opened += 1
        return connection

    async def put(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        async with self._freed:
            self._idle.append(connection)
            self._freed.notify()

    async def discard(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None) -> None:
        if connection is not None:
            connection[1].close()
        async with self._freed:
            self._open -= 1
            self._freed.notify()

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    # uvloop's loop.time() ticks in whole milliseconds: too coarse for latencies of a few ms.
    clock = time.perf_counter
    figures = _Figures()
    pool = _Pool(spec.host, spec.port, spec.max_connections, figures)
    requests = spec.requests()
    total = int(spec.rate * spec.seconds)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, due: float) -> None:
        figures.send_lag.append(clock() - due)
        connection = None
        try:
            async with asyncio.timeout(_TIMEOUT_SECONDS):
                connection = await pool.get()
                status, keep = await _exchange(*connection, requests[index % len(requests)])
            latency = clock() - due
            figures.latencies.append(latency)
            if spec.series:
                figures.series.append((due - start, latency))
            figures.statuses[str(status)] += 1
            figures.last_done = clock()
            if keep:
                await pool.put(connection)
            else:
                await pool.discard(connection)
        except Exception as exc:
            figures.statuses[type(exc).__name__] += 1
            if connection is not None:
                await pool.discard(connection)

    start = clock() + 0.05
    started_at_epoch = time.time() + (start - clock())
    sent = 0
    while sent < total:
        due_now = min(total, int((clock() - start) * spec.rate) + 1)
        while sent < due_now:
            task = asyncio.create_task(one(sent, start + sent / spec.rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / spec.rate - clock()))
    if tasks:
        await asyncio.wait(set(tasks), timeout=_TIMEOUT_SECONDS + 5)
    pool.close()
    ok = sum(count for status, count in figures.statuses.items() if status.isdigit() and status.startswith("2"))
    elapsed = max(1e-9, (figures.last_done or clock()) - start)
    series = (
        {"started_at_epoch": started_at_epoch, "series": [[round(t, 4), round(d, 5)] for t, d in figures.series]}
        if spec.series
        else {}
    )
    return {
        **series,
        "target_rate": spec.rate,
        "seconds": spec.seconds,
        "sent": total,
        "statuses": dict(figures.statuses),
        "ok": ok,
        "throughput_ok_per_s": round(ok / elapsed, 1),
        "connections_opened": figures.connections_opened,
        "latency_ms": percentiles(figures.latencies),
        "send_lag_ms_p99": percentiles(figures.send_lag)["p99"],
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 ... max of ``values`` (seconds) in milliseconds."""
    if not values:
        return {
            "p50": float("nan"),
            "p95": float("nan"),
            "p99": float("nan"),
            "p999": float("nan"),
            "max": float("nan"),
        }
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "p999": at(0.999), "max": round(1000 * ordered[-1], 2)}


def main() -> None:
    spec = LoadSpec(**json.loads(Path(sys.argv[1]).read_text()))
    started = time.process_time()
    figures = uvloop.run(run_load(spec))
    figures["generator_cpu_seconds"] = round(time.process_time() - started, 2)
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
