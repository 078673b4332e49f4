"""After a fault run: read Postgres and list every request whose history breaks an invariant.

What is checked (DESIGN.md, "Invariants the tests must prove"):

- every request is terminal: ``completed``, or ``failed`` with a reason its scenario expects;
  stuck ones are listed with their stage and how long ago they last moved;
- a completed request has exactly one ``workout_plans`` row (``complete``, the request's
  ``plan_id``); a failed one has none;
- no duplicate ``workout_entries`` (plan, week, day, position) nor ``exercises`` keys (nor one
  exercise name under two keys);
- every completed plan has weeks 1..8, every exercise it uses is profiled, the plan rebuilt from its
  rows validates as ``contracts.plan.WorkoutPlan`` and every stored profile as ``ExerciseProfile``;
- the request turned ``completed`` no earlier than its last entry and its last profile (status last).
"""

import json
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import pydantic

from contracts.plan import ExerciseProfile, WorkoutPlan

# Reasons a request may legitimately fail with while random LLM faults are injected: a reply that
# stayed invalid for every regeneration, or a transient fault that outlived every redelivery.
RANDOM_FAULT_REASONS = frozenset(
    {"invalid_llm_reply", "llm_rate_limited", "llm_server_error", "llm_timeout", "llm_unreachable"}
)


@dataclass(frozen=True)
class Expectation:
    """Requests whose ``user_profile`` contains ``marker`` must end ``failed`` with ``reason`` in the error."""

    marker: str
    reason: str


@dataclass
class CheckResult:
    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def check(
    database_url: str,
    expectations: Sequence[Expectation] = (),
    *,
    random_fault_reasons: frozenset[str] = RANDOM_FAULT_REASONS,
    now: datetime | None = None,
    max_listed: int = 25,
) -> CheckResult:
    """Check every request in the database; see the module docstring."""
    conn = await asyncpg.connect(database_url)
    try:
        return await _check(conn, expectations, random_fault_reasons, now, max_listed)
    finally:
        await conn.close()


async def _check(
    conn: "asyncpg.Connection[asyncpg.Record]",
    expectations: Sequence[Expectation],
    random_fault_reasons: frozenset[str],
    now: datetime | None,
    max_listed: int,
) -> CheckResult:
    result = CheckResult()
    now = now or await conn.fetchval("SELECT clock_timestamp()")
    requests = await conn.fetch(
        "SELECT id, status, stage, error, user_profile, plan_id, created_at, updated_at, completed_at"
        " FROM workout_plan_requests ORDER BY created_at"
    )
    plans_by_request: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for plan in await conn.fetch(
        "SELECT id, request_id, assembly AS status, title, summary, completed_at FROM workout_plans"
    ):
        plans_by_request[plan["request_id"]].append(plan)

    def listed(kind: str, items: list[str]) -> None:
        if items:
            more = f" (+{len(items) - max_listed} more)" if len(items) > max_listed else ""
            result.violations.append(f"{len(items)} {kind}:\n    " + "\n    ".join(items[:max_listed]) + more)

    by_status = Counter(r["status"] for r in requests)
    failed_reasons: Counter[str] = Counter()
    stuck: list[str] = []
    unexpected_failures: list[str] = []
    forced_wrong: list[str] = []
    plan_count_wrong: list[str] = []
    failed_with_plan: list[str] = []
    stuck_by_stage: Counter[str] = Counter()
    seconds_to_terminal = [
        (r["completed_at"] - r["created_at"]).total_seconds() for r in requests if r["completed_at"] is not None
    ]
    completed_plan_ids: list[uuid.UUID] = []
    for r in requests:
        rid, status, error = r["id"], r["status"], r["error"] or ""
        forced = next((e for e in expectations if e.marker in r["user_profile"]), None)
        plans = plans_by_request.get(rid, [])
        if status == "processing":
            idle = (now - r["updated_at"]).total_seconds()
            age = (now - r["created_at"]).total_seconds()
            stuck_by_stage[r["stage"]] += 1
            stuck.append(
                f"{rid} stage={r['stage']} updated_at={r['updated_at']:%H:%M:%S} ({idle:.0f}s idle, {age:.0f}s old)"
                f" plan_rows={len(plans)}"
            )
            continue
        if status == "failed":
            failed_reasons[error.split(":", 1)[0]] += 1
            wrong_reason, kept = _judge_failed(r, forced, plans, random_fault_reasons)
            if wrong_reason:
                (forced_wrong if forced is not None else unexpected_failures).append(wrong_reason)
            failed_with_plan.extend(kept)
        elif status == "completed":
            if forced is not None:
                forced_wrong.append(f"{rid} ({forced.marker}) completed; expected failed with {forced.reason}")
            wrong_plans = _judge_completed(r, plans)
            plan_count_wrong.extend(wrong_plans)
            if not wrong_plans:
                completed_plan_ids.append(r["plan_id"])
        else:
            unexpected_failures.append(f"{rid} ended with status {status!r}")

    stages = ", ".join(f"{n} at stage {s}" for s, n in stuck_by_stage.most_common())
    listed(f"requests stuck in processing ({stages})", stuck)
    listed("requests failed with a reason no fault explains", unexpected_failures)
    listed("requests with a forced fault that did not end as expected", forced_wrong)
    listed("completed requests without exactly one complete plan", plan_count_wrong)
    listed("failed requests that keep plan rows", failed_with_plan)

    orphans = await conn.fetch(
        "SELECT p.id, p.assembly AS status FROM workout_plans p"
        " LEFT JOIN workout_plan_requests r ON r.id = p.request_id"
        " WHERE r.id IS NULL"
    )
    listed("plans without a request", [f"{p['id']} {p['status']}" for p in orphans])

    duplicate_entries = await conn.fetch(
        "SELECT plan_id, week, day_of_week AS day, position, count(*) AS n FROM workout_entries"
        " GROUP BY plan_id, week, day_of_week, position HAVING count(*) > 1"
    )
    listed(
        "duplicate workout_entries (plan, week, day, position)",
        [f"{d['plan_id']} w{d['week']} d{d['day']} #{d['position']} x{d['n']}" for d in duplicate_entries],
    )
    duplicate_keys = await conn.fetch("SELECT key, count(*) AS n FROM exercises GROUP BY key HAVING count(*) > 1")
    listed("duplicate exercise keys", [f"{d['key']} x{d['n']}" for d in duplicate_keys])
    duplicate_names = await conn.fetch(
        "SELECT lower(name) AS name, array_agg(key ORDER BY key) AS keys FROM exercises"
        " GROUP BY lower(name) HAVING count(*) > 1"
    )
    listed("exercise names stored under several keys", [f"{d['name']!r}: {list(d['keys'])}" for d in duplicate_names])

    invalid_plans = await _invalid_plans(conn, completed_plan_ids)
    listed("completed plans that are not valid 8-week plans", invalid_plans)

    profiles = await conn.fetch("SELECT key, profile FROM exercises WHERE profile IS NOT NULL")
    bad_profiles = []
    for row in profiles:
        raw = row["profile"]
        try:
            ExerciseProfile.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
        except (pydantic.ValidationError, ValueError) as exc:
            bad_profiles.append(f"{row['key']}: {str(exc).splitlines()[0][:160]}")
    listed("stored exercise profiles that do not validate", bad_profiles)

    early = await conn.fetch(
        "SELECT r.id, r.completed_at,"
        " (SELECT max(created_at) FROM workout_entries WHERE plan_id = r.plan_id) AS entries_at,"
        " (SELECT max(x.profiled_at) FROM workout_entries e JOIN exercises x ON x.key = e.exercise_key"
        "   WHERE e.plan_id = r.plan_id) AS profiles_at"
        " FROM workout_plan_requests r WHERE r.status = 'completed'"
    )
    listed(
        "requests completed before their whole plan was visible (status not last)",
        [
            f"{e['id']} completed_at={e['completed_at']} entries_at={e['entries_at']} profiles_at={e['profiles_at']}"
            for e in early
            if e["entries_at"] is None
            or e["profiles_at"] is None
            or e["completed_at"] < max(e["entries_at"], e["profiles_at"])
        ],
    )

    result.figures.update(
        requests=len(requests),
        by_status=dict(by_status),
        failed_by_reason=dict(failed_reasons),
        stuck=len(stuck),
        plans=sum(len(p) for p in plans_by_request.values()),
        exercises_profiled=len(profiles),
        seconds_to_terminal_p50=_percentile(seconds_to_terminal, 50),
        seconds_to_terminal_p95=_percentile(seconds_to_terminal, 95),
        seconds_to_terminal_max=max(seconds_to_terminal, default=None),
    )
    return result


def _judge_completed(r: asyncpg.Record, plans: list[asyncpg.Record]) -> list[str]:
    """A completed request has exactly one plan row, complete, and it is the request's plan_id."""
    complete = [p for p in plans if p["status"] == "complete"]
    if len(plans) == 1 and len(complete) == 1 and complete[0]["id"] == r["plan_id"]:
        return []
    rows = ", ".join(f"{p['id']} {p['status']}" for p in plans)
    return [f"{r['id']} completed with plan_id={r['plan_id']} but has {len(plans)} plan row(s): {rows}"]


def _judge_failed(
    r: asyncpg.Record, forced: Expectation | None, plans: list[asyncpg.Record], random_fault_reasons: frozenset[str]
) -> tuple[str | None, list[str]]:
    """Problems of one failed request: an unexpected reason (or None), and the plan rows it keeps."""
    rid, error = r["id"], r["error"] or ""
    reason_problem = None
    if forced is not None:
        if forced.reason not in error:
            reason_problem = f"{rid} ({forced.marker}) failed with {error[:160]!r}, expected {forced.reason}"
    elif not any(error.startswith(reason) for reason in random_fault_reasons):
        reason_problem = f"{rid} stage={r['stage']} error={error[:200]!r}"
    rows = ", ".join(f"{p['id']} {p['status']}" for p in plans)
    kept = [f"{rid} failed ({error[:60]!r}) but keeps {len(plans)} plan row(s): {rows}"] if plans else []
    return reason_problem, kept


async def _invalid_plans(conn: "asyncpg.Connection[asyncpg.Record]", plan_ids: list[uuid.UUID]) -> list[str]:
    """Rebuild each plan from its rows and validate it with the model the LLM reply was checked against."""
    if not plan_ids:
        return []
    plans = {
        p["id"]: p
        for p in await conn.fetch("SELECT id, title, summary FROM workout_plans WHERE id = ANY($1)", plan_ids)
    }
    entries: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for e in await conn.fetch(
        "SELECT e.plan_id, e.week, e.day_of_week AS day, e.position, e.week_theme, e.day_focus, e.exercise_key,"
        " e.exercise_name, e.sets, e.reps, e.rest_seconds, e.notes, x.profile IS NOT NULL AS profiled"
        " FROM workout_entries e"
        " LEFT JOIN exercises x ON x.key = e.exercise_key WHERE e.plan_id = ANY($1)"
        " ORDER BY e.plan_id, e.week, e.day_of_week, e.position",
        plan_ids,
    ):
        entries[e["plan_id"]].append(e)
    problems = []
    for plan_id in plan_ids:
        rows = entries.get(plan_id, [])
        weeks = sorted({e["week"] for e in rows})
        if weeks != list(range(1, 9)):
            problems.append(f"{plan_id}: weeks {weeks}, expected 1..8")
            continue
        unprofiled = sorted({e["exercise_key"] for e in rows if not e["profiled"]})
        if unprofiled:
            problems.append(f"{plan_id}: {len(unprofiled)} exercise(s) without a profile: {unprofiled[:5]}")
        gaps = _position_gaps(rows)
        if gaps:
            problems.append(f"{plan_id}: entry positions not 1..n on {gaps[:5]}")
        try:
            WorkoutPlan.model_validate(_as_reply(plans[plan_id], rows))
        except pydantic.ValidationError as exc:
            problems.append(f"{plan_id}: {exc.error_count()} validation error(s): {str(exc).splitlines()[1:3]}")
    return problems


def _position_gaps(rows: Sequence[asyncpg.Record]) -> list[str]:
    positions: dict[tuple[int, int], list[int]] = defaultdict(list)
    for e in rows:
        positions[(e["week"], e["day"])].append(e["position"])
    return [f"w{w}d{d}" for (w, d), p in sorted(positions.items()) if sorted(p) != list(range(1, len(p) + 1))]


def _as_reply(plan: asyncpg.Record, rows: Sequence[asyncpg.Record]) -> dict[str, Any]:
    weeks: dict[int, dict[str, Any]] = {}
    for e in rows:
        week = weeks.setdefault(e["week"], {"week": e["week"], "theme": e["week_theme"], "days": {}})
        day = week["days"].setdefault(e["day"], {"day": e["day"], "focus": e["day_focus"], "exercises": []})
        day["exercises"].append(
            {
                "name": e["exercise_name"],
                "sets": e["sets"],
                "reps": e["reps"],
                "rest_seconds": e["rest_seconds"],
                "notes": e["notes"],
            }
        )
    return {
        "title": plan["title"],
        "summary": plan["summary"],
        "weeks": [{**w, "days": list(w["days"].values())} for w in weeks.values()],
    }
