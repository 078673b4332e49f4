"""Time-to-plan: one plan written in a single call, skeleton-then-weeks and progressively, in one run.

Starts the LLM simulator (``python -m llm_simulator``) paced at ``--tokens-per-second`` with
``--note-sentences`` extra coaching sentences per exercise (about 2.1k tokens each on a 3-day plan,
so 5 gives a ~16k-token plan), then runs the planner's strategies side by side through the real
``openai`` client: ``SingleCall`` (one streamed call); ``SkeletonThenWeeks`` (a skeleton, then the
eight weeks at once) and ``ProgressiveWeeks`` (a short outline, then every week in parts, week 1
first), each streamed and over background responses (the re-attaching mode, polls at most
``--poll-seconds`` apart), cold and after one plan (``_warm``: its polls have learnt when parts of
each kind finish). All plans pass the same quality checks. Prints a JSON report per mode: seconds,
when the first week was done and when each week was, tokens and calls.

    python -m bench.time_to_plan                      # every mode, 60 tokens/s, ~16k-token plans
    python -m bench.time_to_plan --modes progressive,parallel
    python -m bench.time_to_plan --tokens-per-second 400 --note-sentences 0
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import openai

from contracts.progress import PlanProgress
from devstack import free_port
from devstack._readiness import tcp_accepts, wait_until
from devstack.supervisor import Supervisor
from service_runtime.llm import StructuredCalls
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.response_ids import InMemoryResponseIds
from service_runtime.llm.responses import BackgroundResponses
from services.planner.planning import INSTRUCTIONS, CheckedPlan, PlanPrompt, PlanWriter
from services.planner.progressive import ProgressiveWeeks
from services.planner.quality import plan_problems
from services.planner.settings import PlannerSettings
from services.planner.single import SingleCall
from services.planner.skeleton_weeks import SkeletonThenWeeks
from services.planner.state import KeptPart

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILE = "I want to build muscle, 3x per week, I have a full gym"
PROMPT = PlanPrompt([INSTRUCTIONS], PROFILE)


class _Parts:
    """Parts kept in memory: the benchmark has no crash to survive."""

    def __init__(self) -> None:
        self._parts: dict[str, KeptPart] = {}

    async def get(self, request_id: uuid.UUID, part: str) -> KeptPart | None:
        return self._parts.get(f"{request_id}.{part}")

    async def put(self, request_id: uuid.UUID, part: str, kept: KeptPart) -> None:
        self._parts[f"{request_id}.{part}"] = kept


class _FirstWeek:
    """Progress notices, for when each week was written (the first: what the app could show first)."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.weeks_at: list[float] = []

    async def announce(self, progress: PlanProgress) -> None:
        if progress.weeks_done:
            self.weeks_at.append(time.perf_counter())
            if self.at is None:
                self.at = self.weeks_at[0]


async def _timed(
    name: str, writer: PlanWriter, *, after: int = 0, first_week: _FirstWeek | None = None
) -> dict[str, Any]:
    """One plan, timed; ``after`` plans written first (untimed), as a process that has been running."""
    for _ in range(after):
        await writer.write(uuid.uuid4(), PROMPT)
    if first_week is not None:
        first_week.at = None
        first_week.weeks_at.clear()
    started = time.perf_counter()
    draft: CheckedPlan = await writer.write(uuid.uuid4(), PROMPT)
    seconds = time.perf_counter() - started
    first = first_week.at if first_week is not None else None
    problems = plan_problems(draft.plan, profile=PROFILE)
    return {
        "mode": name,
        "seconds": round(seconds, 1),
        # Parallel modes: the first of the eight weeks done (a single call has them all at the end).
        "first_week_seconds": round(first - started, 1) if first is not None else None,
        "weeks_done_seconds": [round(at - started, 1) for at in first_week.weeks_at] if first_week else [],
        "completion_tokens": draft.usage.completion_tokens,
        "prompt_tokens": draft.usage.prompt_tokens,
        "calls": draft.usage.calls,
        "weeks": len(draft.plan.weeks),
        "quality_problems": problems,
    }


def _calls(client: openai.AsyncOpenAI, deadline: float, background_polls: float | None) -> StructuredCalls:
    """Streamed calls, or background responses polled at most ``background_polls`` apart."""
    if background_polls is None:
        return ChatCompletions(client, model="gpt-4o-mini", deadline_seconds=deadline, stream=True)
    return BackgroundResponses(
        client,
        InMemoryResponseIds(),
        model="gpt-4o-mini",
        deadline_seconds=deadline,
        poll_interval_seconds=background_polls,
    )


def _parallel(
    client: openai.AsyncOpenAI, deadline: float, first_week: _FirstWeek, background_polls: float | None = None
) -> SkeletonThenWeeks:
    """Skeleton then weeks."""
    calls = _calls(client, deadline, background_polls)
    return SkeletonThenWeeks(calls, _Parts(), first_week, tries=1, max_concurrent_calls=16)


def _progressive(
    client: openai.AsyncOpenAI, deadline: float, first_week: _FirstWeek, background_polls: float | None = None
) -> ProgressiveWeeks:
    """Outline, then every week in parts, week 1 in the smallest: the planner's defaults."""
    calls = _calls(client, deadline, background_polls)
    defaults = PlannerSettings.model_fields
    return ProgressiveWeeks(
        calls,
        _Parts(),
        first_week,
        tries=1,
        max_concurrent_calls=64,
        exercises_per_call=defaults["exercises_per_call"].default,
        first_week_exercises_per_call=defaults["first_week_exercises_per_call"].default,
    )


MODES = (
    "single",
    "parallel",
    "parallel_background",
    "parallel_background_warm",
    "progressive",
    "progressive_background",
    "progressive_background_warm",
)


async def _run(base_url: str, deadline: float, poll_seconds: float, modes: Sequence[str]) -> list[dict[str, Any]]:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="sim", max_retries=0, timeout=120)
    try:
        # gpt-4o-mini writes at most 16,384 output tokens, and a verbose single-call plan is ~17k:
        # it would be cut (finish_reason=length), as the real API cuts it. One call needs a model
        # that can write the whole plan; each of parallel mode's calls fits gpt-4o-mini easily.
        single = SingleCall(
            ChatCompletions(client, model="gpt-4.1-mini", deadline_seconds=deadline, stream=True), tries=1
        )
        strategies: dict[str, Callable[..., PlanWriter]] = {"parallel": _parallel, "progressive": _progressive}

        def run(mode: str) -> Awaitable[dict[str, Any]]:
            if mode == "single":
                return _timed(mode, single)
            # "<strategy>[_background[_warm]]": over background responses, and after one plan
            # (polls learn when calls of each kind finish: the timed plan is looked at on time).
            strategy, *rest = mode.split("_")
            first_week = _FirstWeek()
            polls = poll_seconds if rest else None
            writer = strategies[strategy](client, deadline, first_week, background_polls=polls)
            return _timed(mode, writer, after=1 if "warm" in rest else 0, first_week=first_week)

        # Side by side, so all see the same machine at the same moment.
        return list(await asyncio.gather(*(run(mode) for mode in modes)))
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.time_to_plan", description=__doc__)
    parser.add_argument("--tokens-per-second", type=float, default=60.0)
    parser.add_argument("--note-sentences", type=int, default=5)
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="PLANNER_POLL_INTERVAL_SECONDS")
    parser.add_argument("--report", type=Path, default=None, help="also write the JSON report here")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {', '.join(MODES)}")
    args = parser.parse_args(argv)
    modes = [mode for mode in args.modes.split(",") if mode]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")

    port = free_port()
    env = {
        **os.environ,
        "SIM_TOKENS_PER_SECOND": str(args.tokens_per_second),
        "SIM_PLAN_NOTE_SENTENCES": str(args.note_sentences),
        "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.3",
        "SIM_LOG_LEVEL": "WARNING",
    }
    supervisor = Supervisor(sys.stderr)
    simulator = supervisor.start(
        "simulator", [sys.executable, "-m", "llm_simulator", "--port", str(port)], env=env, cwd=REPO_ROOT
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: tcp_accepts("127.0.0.1", port),
            timeout=30,
            what="the simulator",
            alive=lambda: simulator.returncode is None,
        )
        results = asyncio.run(_run(base_url, deadline=1800, poll_seconds=args.poll_seconds, modes=modes))
    finally:
        supervisor.stop_all()
    report = {"tokens_per_second": args.tokens_per_second, "note_sentences": args.note_sentences, "runs": results}
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
