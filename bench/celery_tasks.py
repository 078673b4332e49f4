"""The Celery side of the baseline: one task that makes the planner's long call the prefork way.

A Celery worker finds its app by importing a module (``celery -A bench.celery_tasks worker``), so
the app is built here at import, from ``BENCH_CELERY_BROKER_URL``: the one module in this repository
that builds a client at import time, and only because Celery's CLI requires it. Benchmark only;
Celery is never a dependency of the services.

The task streams one structured-output chat completion from the simulator (``OPENAI_BASE_URL``),
reads every chunk, and validates the plan at the end, as the planner's ``chat_stream`` mode does,
with the synchronous openai client: a prefork child holds one call at a time.
"""

import os
from functools import cache

import openai
from celery import Celery

from contracts.plan import WorkoutPlan
from service_runtime.model_limits import output_cap
from service_runtime.strict_schema import chat_response_format

BROKER = os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
PROFILE = "I want to build muscle, 3x per week, I have a full gym"

app = Celery("bench", broker=BROKER, backend=BROKER)
app.conf.update(
    # The settings long tasks need on Celery: ack after the task, one message per child at a
    # time, and a visibility timeout longer than a call so Redis does not redeliver mid-call.
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": 3600},
    result_expires=3600,
    worker_hijack_root_logger=False,
)


@cache
def _client() -> openai.OpenAI:
    # One client per child, built on first use (after the fork, so no connection is shared).
    return openai.OpenAI(
        api_key=os.environ.get("OPENAI_API_KEY", "bench"),
        base_url=os.environ["OPENAI_BASE_URL"],
        max_retries=0,
        timeout=openai.Timeout(120.0, connect=10.0),
    )


@app.task(name="bench.write_plan")  # type: ignore[untyped-decorator]  # Celery ships no types
def write_plan() -> int:
    """Stream one plan from the simulator; return how many characters it had."""
    stream = _client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROFILE}],
        # The schema and cap the planner sends: the simulator refuses what OpenAI refuses.
        response_format=chat_response_format(WorkoutPlan),
        max_completion_tokens=output_cap("gpt-4o-mini", WorkoutPlan),
        stream=True,
    )
    parts: list[str] = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    text = "".join(parts)
    WorkoutPlan.model_validate_json(text)
    return len(text)
