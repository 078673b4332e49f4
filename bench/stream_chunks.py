"""What streaming costs the planner per chunk: CPU per plan at the simulator's chunk sizes.

A provider streams a chunk per token or two; the simulator, unpaced, sends a reply in a few large
pieces unless ``stream_chunk_tokens`` says otherwise. This writes plans with the planner's own
strategy (skeleton, then eight weeks at once) over its streamed-chat adapter and the real SDK, to
the simulator in its own process answering at once, and reports this process's CPU per plan at
each chunk size. With ``--pipeline``, also the whole pipeline (``bench.pipeline`` at quick sizes)
at one token a chunk, streamed and with background responses.

    python -m bench.stream_chunks [--plans 100] [--chunks 0,2,1] [--pipeline]
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

import openai

from bench.cached_share import PROFILES, _Quiet
from bench.pipeline import measure_pipeline
from bench.time_to_plan import _Parts
from llm_simulator import SimulatorConfig
from service_runtime.llm.chat import ChatCompletions
from services.planner.planning import INSTRUCTIONS, PlanPrompt
from services.planner.skeleton_weeks import SkeletonThenWeeks
from tests.simulator_server import serving_simulator

_AT_ONCE = 10  # plans written together, as a planner holds several


async def _cpu_per_plan(url: str, plans: int) -> float:
    client = openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="sim", max_retries=0, http_client=openai.DefaultAioHttpClient()
    )
    async with client:
        calls = ChatCompletions(client, model="gpt-4o-mini", deadline_seconds=120, stream=True)

        async def one(index: int) -> None:
            writer = SkeletonThenWeeks(calls, _Parts(), _Quiet(), tries=2, max_concurrent_calls=16)
            await writer.write(uuid.uuid4(), PlanPrompt([INSTRUCTIONS], PROFILES[index % len(PROFILES)]))

        await asyncio.gather(*(one(i) for i in range(_AT_ONCE)))  # warm: connections, caches
        started = time.process_time()
        for first in range(0, plans, _AT_ONCE):
            await asyncio.gather(*(one(i) for i in range(first, min(plans, first + _AT_ONCE))))
        return 1000 * (time.process_time() - started) / plans


def _writing(chunks: list[int], plans: int) -> list[dict[str, Any]]:
    rows = []
    for chunk_tokens in chunks:
        config = SimulatorConfig(
            tokens_per_second=0, first_token_delay_seconds=0, seed=11, stream_chunk_tokens=chunk_tokens
        )
        with serving_simulator(config) as url:
            cpu = asyncio.run(_cpu_per_plan(url, plans))
        rows.append({"stream_chunk_tokens": chunk_tokens, "planner_cpu_ms_per_plan": round(cpu, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _pipelines() -> list[dict[str, Any]]:
    rows = []
    for mode in ("chat_stream", "responses_background"):
        env = {"SIM_STREAM_CHUNK_TOKENS": "1", "PLANNER_LLM_MODE": mode}
        measured = measure_pipeline(
            plans=200,
            rate=100,
            warmup_plans=20,
            profiled_plans=20,
            raw_plans=50,
            env=env,
        )["measured"]
        rows.append({**env, "plans_per_s": measured["plans_per_s"], "cpu_ms_per_plan": measured["cpu_ms_per_plan"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_chunks", description=__doc__)
    parser.add_argument("--plans", type=int, default=100, help="plans written at each chunk size")
    parser.add_argument("--chunks", default="0,2,1", help="stream_chunk_tokens values (0: the simulator's default)")
    parser.add_argument("--pipeline", action="store_true", help="also the whole pipeline at one token a chunk")
    args = parser.parse_args(argv)
    _writing([int(c) for c in args.chunks.split(",")], args.plans)
    if args.pipeline:
        _pipelines()
    return 0


if __name__ == "__main__":
    sys.exit(main())
