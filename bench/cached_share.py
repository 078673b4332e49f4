"""Cached share of week-call input and cost per plan by model and tier, against the simulator.

Starts the LLM simulator (its prompt cache as the provider's: 1,024-token minimum, 128-token steps,
per model and ``prompt_cache_key``, a prefix readable once its writer's first token is out) and
writes plans with the planner's own strategies and adapter, metered at list prices:

- parallel (skeleton, then eight week calls) and progressive (outline, then day parts), with the
  warm-up (``--warmup``, the planner's ``PLANNER_PREFIX_WARMUP_SECONDS``) and without it: the share
  of the week (or day-part) calls' input tokens the provider served from its cache;
- cost per plan on the ledger for gpt-4o-mini on Standard and Priority, and gpt-5-mini on Standard
  and Flex (gpt-4o-mini has no Flex).

    python -m bench.cached_share
"""

import argparse
import asyncio
import json
import sys
import uuid
from typing import Any

import openai

from bench.time_to_plan import _Parts
from contracts.progress import PlanProgress
from llm_simulator import SimulatorConfig
from service_runtime.llm.admission import Admitted, TierPolicy
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.metering import LlmMeter, collecting_calls
from service_runtime.llm.port import Prompt, StructuredReply
from service_runtime.llm.terms import calling_for
from service_runtime.logs import bind_request_id
from services.planner.planning import INSTRUCTIONS, PlanPrompt, PlanWriter
from services.planner.progressive import ProgressiveWeeks
from services.planner.skeleton_weeks import SkeletonThenWeeks
from tests.simulator_server import serving_simulator

PROFILES = (
    "I am 34, intermediate, gym, want to build muscle, 4 days a week",
    "Beginner, 52 years old, home with dumbbells, lose weight, 3x per week, bad knees",
    "Advanced lifter, strength focus, 5 days, full gym, 28 years old",
)


class _Quiet:
    async def publish(self, event: Any) -> None: ...

    async def announce(self, progress: PlanProgress) -> None: ...


class _Seen:
    """The adapter, noting each part's prompt and cached tokens."""

    def __init__(self, calls: ChatCompletions) -> None:
        self._calls = calls
        self.model = calls.model
        self.parts: list[tuple[str, int, int]] = []

    async def call(self, key: str, prompt: Prompt, reply_type: type[Any]) -> StructuredReply[Any]:
        reply = await self._calls.call(key, prompt, reply_type)
        self.parts.append((key, reply.usage.prompt_tokens, reply.usage.cached_tokens))
        return reply

    async def forget(self, key: str) -> None: ...

    async def abandon(self, key: str) -> None: ...


async def _plans(url: str, model: str, tier: str, generation: str, warmup: float) -> dict[str, float | int | str]:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sim", max_retries=0) as client:
        meter = LlmMeter("planner", ledger=_Quiet(), model=model)
        seen = _Seen(ChatCompletions(client, model=model, deadline_seconds=120, stream=True, meter=meter))
        policy = TierPolicy(by_lane={"standard": tier})  # type: ignore[dict-item]  # a tier from the table above
        calls = Admitted(seen, None, None, stage="planner", policy=policy)
        writer: PlanWriter = (
            SkeletonThenWeeks(calls, _Parts(), _Quiet(), tries=2, max_concurrent_calls=16, warmup_seconds=warmup)
            if generation == "parallel"
            else ProgressiveWeeks(
                calls,
                _Parts(),
                _Quiet(),
                tries=2,
                max_concurrent_calls=16,
                exercises_per_call=6,
                first_week_exercises_per_call=2,
                warmup_seconds=warmup,
            )
        )
        cost = 0.0
        for profile in PROFILES:
            request_id = uuid.uuid4()
            bind_request_id(request_id)
            with calling_for("bench"), collecting_calls() as paid:
                await writer.write(request_id, PlanPrompt([INSTRUCTIONS], profile))
            cost += sum(call.cost_usd for call in paid)
    weeks = [(prompt, cached) for key, prompt, cached in seen.parts if ".week" in key]
    return {
        "model": model,
        "tier": tier,
        "generation": generation,
        "warmup_seconds": warmup,
        "week_calls": len(weeks),
        "prompt_tokens_per_week_call": round(sum(p for p, _ in weeks) / len(weeks)),
        "cached_share": round(sum(c for _, c in weeks) / sum(p for p, _ in weeks), 3),
        "cost_per_plan_usd": round(cost / len(PROFILES), 5),
    }


async def _run(url: str, warmup: float) -> list[dict[str, Any]]:
    runs = [
        ("gpt-4o-mini", "default", "parallel", warmup),
        ("gpt-4o-mini", "default", "parallel", 0.0),
        ("gpt-4o-mini", "default", "progressive", warmup),
        ("gpt-4o-mini", "default", "progressive", 0.0),
        ("gpt-4o-mini", "priority", "parallel", warmup),
        ("gpt-5-mini", "default", "parallel", warmup),
        ("gpt-5-mini", "flex", "parallel", warmup),
    ]
    return [await _plans(url, *run) for run in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cached_share", description=__doc__)
    parser.add_argument("--warmup", type=float, default=1.0, help="PLANNER_PREFIX_WARMUP_SECONDS (its default)")
    parser.add_argument("--first-token", type=float, default=0.3, help="the simulator's time to first token")
    args = parser.parse_args(argv)
    config = SimulatorConfig(tokens_per_second=0, first_token_delay_seconds=args.first_token, seed=3)
    with serving_simulator(config) as url:
        print(json.dumps(asyncio.run(_run(url, args.warmup)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
