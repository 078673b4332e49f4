"""``python -m services.profiler``: run the profiler worker.

``python -m services.profiler prefill FILE``: profile the exercises named in FILE (one per line,
``-`` for standard input) that the cache lacks, in one batch through the Batch API, and wait for
it; prints what it did as JSON, and exits 1 when some replies were unusable (a rerun asks for
those again and nothing else), 3 when the batch could not be made or failed as a whole.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts import roster
from service_runtime.logs import configure_logging
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater
from service_runtime.worker import run_worker
from services.profiler.app import create_app, prefill_catalogue
from services.profiler.settings import ProfilerSettings


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["prefill"]:
        sys.exit(prefill(argv[1:]))
    run_worker(roster.PROFILER, ProfilerSettings(), create_app)  # settings read from the environment


def prefill(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.profiler prefill",
        description="Profile, in one batch through the Batch API, the exercises the profile cache lacks.",
    )
    parser.add_argument("file", help="exercise names, one per line (# comments and blank lines skipped); - for stdin")
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        parser.error(f"cannot read {args.file}: {exc.strerror}")
    settings = ProfilerSettings()  # read from the environment
    configure_logging(f"{roster.PROFILER.name}-prefill", settings.log_level, settings.log_format)
    try:
        report = asyncio.run(prefill_catalogue(text.splitlines(), settings))
    except (GiveUp, RetryLater, Misconfigured) as exc:
        # The batch could not be made, or the provider failed it as a whole: nothing was kept.
        print(f"prefill: {exc}", file=sys.stderr)
        return 3
    summary = {
        "exercises": report.asked,
        "already_cached": len(report.cached),
        "profiled": report.profiled,
        "kept_written_meanwhile": report.kept,
        "unusable": report.unusable,
        "request_id": str(report.request_id) if report.request_id else None,
        "batches": report.batch_ids,
    }
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    return 1 if report.unusable else 0


if __name__ == "__main__":
    main()
