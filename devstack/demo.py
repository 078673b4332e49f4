"""``python -m devstack demo``: one request through the running stack, end to end, narrated.

The live status is one line redrawn in place (devstack/live_view.py). At the end it prints the
commands to look at the request yourself, with its ids and its user's token filled in.
"""

import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, TextIO

import httpx

from devstack.live_view import LiveView

__all__ = ["DEFAULT_PROFILE", "describe_progress", "follow_up_commands", "run_demo", "summarize_plan"]

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
    live = LiveView(out)
    request_ids: list[str] = []
    # trust_env=False: the target is the local stack; a proxy from the environment would only get in the way.
    with httpx.Client(base_url=gateway, headers=headers, timeout=30.0, trust_env=False) as client:
        try:
            code, plan_id = _follow(
                client, profile=profile, timeout=timeout, say=say, live=live, request_ids=request_ids
            )
        except httpx.TransportError as error:
            live.close()
            say(f"cannot reach the gateway at {gateway} ({error!r}); is `make run` running?")
            return 1
    if request_ids:
        say()
        say("Look at it yourself (this request's ids; the token is the demo's user's, valid 24 h):")
        for line in follow_up_commands(gateway, token, request_ids[0], plan_id):
            say(f"  {line}")
    return code


def follow_up_commands(gateway: str, token: str, request_id: str, plan_id: str | None) -> list[str]:
    """Shell lines, pasted together, that read what the demo made: no id or token to fill in by hand."""
    auth = '-H "Authorization: Bearer $TOKEN"'
    lines = [
        f"TOKEN={token}",
        f"curl -sS {gateway}/v1/requests/{request_id} {auth}   # its status",
    ]
    if plan_id:
        lines.append(f"curl -sS {gateway}/v1/plans/{plan_id} {auth}   # the plan")
        lines.append(
            f"curl -sS -X POST {gateway}/v1/plans/{plan_id}/weeks/3/regenerate {auth}"
            """ -H "Content-Type: application/json" -d '{"instruction": "fewer squats, my knee hurts"}'"""
            "   # week 3 again, as asked (a request of its own)"
        )
        lines.append(f"curl -sS {gateway}/v1/plans/{plan_id}/weeks/3 {auth}   # every version of week 3")
    lines += [
        f"curl -sSN {gateway}/v1/requests/{request_id}/events {auth}   # live status (it has ended: one event)",
        f"curl -sS {gateway}/v1/requests {auth}   # this user's requests, newest first",
        f"curl -sS -X DELETE {gateway}/v1/requests/{request_id} {auth}   # cancel (409 once it has ended)",
    ]
    return lines


def _follow(
    client: httpx.Client,
    *,
    profile: str,
    timeout: float,
    say: Callable[..., None],
    live: LiveView,
    request_ids: list[str],
) -> tuple[int, str | None]:
    started = time.perf_counter()
    response = client.post("/functions/v1/trigger-workout-plan", json={"userProfile": profile})
    latency_ms = (time.perf_counter() - started) * 1000
    say(f"POST /functions/v1/trigger-workout-plan -> {response.status_code} in {latency_ms:.0f} ms")
    say(f"  {response.text}")
    if response.status_code != 202:
        return 1, None
    body = response.json()
    request_id = body.get("request_id") or body.get("requestId")
    if not request_id:
        say("the response has no request_id")
        return 1, None
    request_ids.append(request_id)

    # Live status: the gateway's server-sent events (resumed with Last-Event-ID if the connection drops).
    deadline = started + timeout
    weeks: set[int] = set()
    last_event_id: str | None = None
    final: dict[str, Any] | None = None
    while final is None and time.perf_counter() < deadline:
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        try:
            with client.stream(
                "GET", f"/v1/requests/{request_id}/events", headers=headers, timeout=deadline - time.perf_counter()
            ) as events:
                if events.status_code != 200:
                    say(f"GET /v1/requests/{request_id}/events -> {events.status_code} {events.read().decode()}")
                    return 1, None
                for event, event_id, data in _server_sent_events(events.iter_lines()):
                    last_event_id = event_id or last_event_id
                    elapsed = time.perf_counter() - started
                    if event == "week":  # a week written and checked: provisional until completed
                        weeks.add(data["week"]["week"])
                    live.show(
                        request_id,
                        f"[{elapsed:6.1f} s] {describe_progress(data, weeks)}",
                        phase=(data.get("status"), data.get("stage")),
                    )
                    if data.get("status") in _TERMINAL:
                        final = data
                        break
        except httpx.ReadError:
            continue  # dropped: reconnect and resume after the last event seen
    live.close()
    if final is None:
        say(f"gave up after {timeout:.0f} s")
        return 1, None
    if final["status"] != "completed":
        return 1, None
    plan = client.get(f"/v1/plans/{final['plan_id']}")
    if plan.status_code != 200:
        say(f"GET /v1/plans/{final['plan_id']} -> {plan.status_code} {plan.text}")
        return 1, final["plan_id"]
    say()
    for line in summarize_plan(plan.json()):
        say(line)
    return 0, final["plan_id"]


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


def describe_progress(data: Mapping[str, Any], weeks: Collection[int] = ()) -> str:
    """One short status line: status, stage, weeks written (``weeks``: the ones shown so far, as a
    bar filling in), exercises profiled, the error if any."""
    parts = [str(data.get("status")), str(data.get("stage"))]
    if weeks:
        bar = "".join("\u25a0" if n in weeks else "\u25a1" for n in range(1, 9))
        parts.append(f"weeks {bar} {len(set(weeks))}/8")
    elif data.get("weeks_done") is not None:
        parts.append(f"weeks {data['weeks_done']}/8")
    if data.get("exercises_total") is not None:
        parts.append(f"profiles {data.get('exercises_profiled') or 0}/{data['exercises_total']}")
    if data.get("error"):
        parts.append(f"error: {data['error']}")
    return " | ".join(parts)


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
