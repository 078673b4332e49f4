"""``python -m devstack demo``: one request through the running stack, end to end, narrated."""

import json
import time
from collections.abc import Callable, Iterator, Mapping
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
            return _follow(client, profile, timeout, say)
        except httpx.TransportError as error:
            say(f"cannot reach the gateway at {gateway} ({error!r}); is `make run` running?")
            return 1


def _follow(client: httpx.Client, profile: str, timeout: float, say: Callable[..., None]) -> int:
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

    # Live status: the gateway's server-sent events (resumed with Last-Event-ID if the connection drops).
    deadline = started + timeout
    last_event_id: str | None = None
    final: dict[str, Any] | None = None
    while final is None and time.perf_counter() < deadline:
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        try:
            with client.stream(
                "GET", f"/v1/requests/{request_id}/events", headers=headers, timeout=deadline - time.perf_counter()
            ) as live:
                if live.status_code != 200:
                    say(f"GET /v1/requests/{request_id}/events -> {live.status_code} {live.read().decode()}")
                    return 1
                for event, event_id, data in _server_sent_events(live.iter_lines()):
                    last_event_id = event_id or last_event_id
                    say(f"[{time.perf_counter() - started:6.1f} s] {_describe(event, data)}")
                    if data.get("status") in _TERMINAL:
                        final = data
                        break
        except httpx.ReadError:
            continue  # dropped: reconnect and resume after the last event seen
    if final is None:
        say(f"gave up after {timeout:.0f} s")
        return 1
    if final["status"] != "completed":
        return 1
    plan = client.get(f"/v1/plans/{final['plan_id']}")
    if plan.status_code != 200:
        say(f"GET /v1/plans/{final['plan_id']} -> {plan.status_code} {plan.text}")
        return 1
    say()
    for line in summarize_plan(plan.json()):
        say(line)
    return 0


def _server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """(event, id, JSON data) per event; keep-alive comments skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield fields.get("event", "message"), fields.get("id"), json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def _describe(event: str, data: Mapping[str, Any]) -> str:
    line = f"{event}: status={data.get('status')} stage={data.get('stage')}"
    if data.get("weeks_done") is not None:
        line += f" weeks {data['weeks_done']}/8 written"
    if data.get("exercises_profiled") is not None:
        line += f" exercises {data['exercises_profiled']}/{data['exercises_total']} profiled"
    elif data.get("exercises_total") is not None:
        line += f" {data['exercises_total']} distinct exercises"
    if data.get("error"):
        line += f"  error: {data['error']}"
    return line


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
