"""``python -m services.persister`` runs the worker; ``... migrate`` applies migrations;
``... costs [HOURS]`` prints the LLM cost report of the last HOURS hours (default 24); ``... quality
[HOURS]`` the plans' quality scores and cost per prompt version and model."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import asyncpg

from contracts import roster
from contracts.events import QUALITY_DIMENSIONS
from service_runtime.logs import configure_logging
from service_runtime.worker import run_worker
from services.persister.app import create_app
from services.persister.ledger import cost_report
from services.persister.migrations import apply_migrations
from services.persister.settings import PersisterSettings
from services.persister.variants import variant_report

T = TypeVar("T")


def main(argv: list[str]) -> int:
    settings = PersisterSettings()  # read from the environment
    configure_logging(roster.PERSISTER.name, settings.log_level, settings.log_format)
    if argv[:1] == ["migrate"]:
        applied = asyncio.run(apply_migrations(settings.database_url))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'schema is up to date'}")
        return 0
    if argv[:1] == ["costs"] and len(argv) <= 2:
        hours = float(argv[1]) if len(argv) == 2 else 24.0
        print(asyncio.run(_costs(settings.database_url, hours)))
        return 0
    if argv[:1] == ["quality"] and len(argv) <= 2:
        hours = float(argv[1]) if len(argv) == 2 else 24.0
        print(asyncio.run(_quality(settings.database_url, hours)))
        return 0
    if argv:
        print("usage: python -m services.persister [migrate | costs [HOURS] | quality [HOURS]]", file=sys.stderr)
        return 2
    run_worker(roster.PERSISTER, settings, create_app)
    return 0


async def _window(
    dsn: str, hours: float, report: Callable[[asyncpg.Connection, datetime, datetime], Awaitable[T]]
) -> tuple[datetime, datetime, T]:
    """``report`` over the last ``hours`` hours: (since, until, its lines)."""
    until = datetime.now(UTC)
    since = until - timedelta(hours=hours)
    conn = await asyncpg.connect(dsn)
    try:
        return since, until, await report(conn, since, until)
    finally:
        await conn.close()


async def _costs(dsn: str, hours: float) -> str:
    since, until, lines = await _window(dsn, hours, cost_report)
    out = [f"LLM costs {since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M} UTC", ""]
    out.append(
        f"{'stage':<10} {'model':<24} {'tier':<8} {'calls':>7} {'requests':>8} {'prompt':>10} {'cached':>10}"
        f" {'completion':>11} {'USD':>12}"
    )
    for line in lines:
        out.append(
            f"{line.stage:<10} {line.model:<24} {line.service_tier:<8} {line.calls:>7} {line.requests:>8}"
            f" {line.prompt_tokens:>10} {line.cached_tokens:>10} {line.completion_tokens:>11} {line.cost_usd:>12.6f}"
        )
    total = sum((line.cost_usd for line in lines), start=Decimal(0))
    requests = max((line.requests for line in lines if line.stage == "planner"), default=0)
    out += ["", f"total ${total:.6f}" + (f", ${total / requests:.6f} per planned request" if requests else "")]
    return "\n".join(out)


async def _quality(dsn: str, hours: float) -> str:
    since, until, lines = await _window(dsn, hours, variant_report)
    dimensions = ("overall", *QUALITY_DIMENSIONS)
    out = [f"Plan quality and cost {since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M} UTC", ""]
    heads = " ".join(f"{d[:8]:>8}" for d in dimensions)
    width = max([len("prompt version"), *(len(line.prompt_version) for line in lines)])
    out.append(f"{'prompt version':<{width}} {'model':<18} {'plans':>6} {'USD/plan':>9} {heads}")
    for line in lines:
        cost = f"{line.cost_usd:>9.5f}" if line.cost_usd is not None else f"{'-':>9}"
        scores = " ".join(f"{line.scores[d]:>8.3f}" if d in line.scores else f"{'-':>8}" for d in dimensions)
        out.append(f"{line.prompt_version:<{width}} {line.model:<18} {line.plans:>6} {cost} {scores}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
