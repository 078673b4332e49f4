"""``python -m devstack demo``: one request through the running stack, end to end, narrated."""

import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import httpx

__all__ = ["DEFAULT_PROFILE", "run_demo", "summarize_plan"]

DEFAULT_PROFILE = "I want to build muscle, 3x per week, I have a full gym"
_TERMINAL = {"completed", "failed", "cancelled"}


def run_demo(
    *,
    gateway: str,
    token: str,
    profile: str = DEFAULT_PROFILE,
    timeout: float = 600.0,
    poll_interval: float = 0.5,
    out: TextIO,
) -> int:
    """Trigger a plan, follow the request until it finishes, print the plan's summary; return the exit code."""

    def say(line: str = "") -> None:
        out.write(line + "\n")
        out.flush()

    headers = {"Authorization": f"Bearer {token}"}
    # trust_env=False: the target is the local stack; a proxy from the environment would only get in the way.
    with httpx.Client(base_url=gateway, headers=headers, timeout=30.0, trust_env=False) as client:
        try:
            return _follow(client, profile, timeout, poll_interval, say)
        except httpx.TransportError as error:
            say(f"cannot reach the gateway at {gateway} ({error!r}); is `make run` running?")
            return 1


def _follow(client: httpx.Client, profile: str, timeout: float, poll_interval: float, say: Callable[..., None]) -> int:
    started = time.perf_counter()
    response = client.post("/functions/v1/trigger-workout-plan", json={"userProfile": profile})
    latency_ms = (time.perf_counter() - started) * 1000
    say(f"POST /functions/v1/trigger-workout-plan -> {response.status_code} in {latency_ms:.0f} ms")
    say(f"  {response.text}")
    if response.status_code != 202:
        return 1
    body = response.json()
    request_id = body.get("request_id") or body.get("requestId")
    if not request_id:
        say("the response has no request_id")
        return 1

    last: tuple[str, str] | None = None
    deadline = started + timeout
    while time.perf_counter() < deadline:
        response = client.get(f"/v1/requests/{request_id}")
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            # 404 until the request row is written; anything else is worth showing but may pass.
            if response.status_code != 404:
                say(f"[{elapsed:6.1f} s] GET /v1/requests/{request_id} -> {response.status_code} {response.text}")
            time.sleep(poll_interval)
            continue
        request = response.json()
        now = (str(request.get("status")), str(request.get("stage")))
        if now != last:
            error = f"  error: {request['error']}" if request.get("error") else ""
            say(f"[{elapsed:6.1f} s] status={now[0]} stage={now[1]}{error}")
            last = now
        if now[0] in _TERMINAL:
            if now[0] != "completed":
                return 1
            plan = client.get(f"/v1/plans/{request['plan_id']}")
            if plan.status_code != 200:
                say(f"GET /v1/plans/{request['plan_id']} -> {plan.status_code} {plan.text}")
                return 1
            say()
            for line in summarize_plan(plan.json()):
                say(line)
            return 0
        time.sleep(poll_interval)
    say(f"gave up after {timeout:.0f} s (last seen: {last})")
    return 1


def summarize_plan(plan: Mapping[str, Any]) -> list[str]:
    """A few lines describing a plan as served by ``GET /v1/plans/{plan_id}``."""
    weeks = plan.get("weeks") or []
    days_per_week = [len(week.get("days") or []) for week in weeks]
    entries = [entry for week in weeks for day in week.get("days") or [] for entry in day.get("entries") or []]
    exercises = {entry["exercise"]["key"]: entry["exercise"] for entry in entries}
    profiled = sum(1 for exercise in exercises.values() if exercise.get("profile"))
    lines = [
        f"plan {plan.get('plan_id')}: {plan.get('title')}",
        f"  {plan.get('summary')}",
        f"  {len(weeks)} weeks, training days per week: {' '.join(map(str, days_per_week)) or '-'}",
        f"  {len(entries)} entries, {len(exercises)} distinct exercises, {profiled} with a profile",
    ]
    first_week = weeks[0] if weeks else {}
    first_day = (first_week.get("days") or [None])[0]
    if first_day:
        lines.append(
            f"  week {first_week.get('week')} ({first_week.get('theme')}), day {first_day.get('day')}: "
            f"{first_day.get('focus')}"
        )
        for entry in first_day.get("entries") or []:
            rest = f", rest {entry['rest_seconds']} s" if entry.get("rest_seconds") is not None else ""
            notes = f"  ({entry['notes']})" if entry.get("notes") else ""
            lines.append(
                f"    {entry.get('position')}. {entry['exercise'].get('name')}: "
                f"{entry.get('sets')} x {entry.get('reps')}{rest}{notes}"
            )
    return lines
