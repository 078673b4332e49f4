"""What the simulated model says: chosen by the requested response format's schema name."""

import functools
import json
import random
import re
import zlib
from dataclasses import dataclass

from contracts.plan import WorkoutPlan
from llm_simulator.intent import PlanIntent, read_intent
from llm_simulator.plans import skeleton_of, write_plan
from llm_simulator.profiles import write_profile
from llm_simulator.protocol import ChatCompletionRequest
from llm_simulator.schema_documents import document_for

PLAN_SCHEMA = "WorkoutPlan"
SKELETON_SCHEMA = "PlanSkeleton"
WEEK_SCHEMA = "TrainingWeek"
OUTLINE_SCHEMA = "PlanOutline"
OVERVIEW_SCHEMA = "PlanOverview"
DAY_SCHEMA = "TrainingDay"
_DRAFTED = (SKELETON_SCHEMA, WEEK_SCHEMA, OUTLINE_SCHEMA, OVERVIEW_SCHEMA, DAY_SCHEMA)
PROFILE_SCHEMA = "ExerciseProfile"
TEXT_KIND = "text"
JSON_OBJECT_KIND = "json_object"

_EXERCISE_LINE = re.compile(r"^\s*Exercise:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_QUOTED = re.compile(r"\"([^\"\n]{2,120})\"|\u201c([^\u201d\n]{2,120})\u201d")
_DIRECTIVES = re.compile(r"\[\[sim:[^\]]*\]\]")
_WEEK_NUMBER = re.compile(r"\bweek\s+(\d)\b", re.IGNORECASE)
# The ask may follow a skeleton whose summary names other weeks ("week 4 is a deload").
_WRITE_WEEK = re.compile(r"\bwrite week\s+(\d)\b", re.IGNORECASE)
# A part's own brief comes after the outline it follows, whose themes may name other weeks.
_PART_OF_WEEK = re.compile(r"\bpart of week\s+(\d)\b", re.IGNORECASE)
_DAY_NUMBER = re.compile(r"\btraining day\s+(\d)\b", re.IGNORECASE)
_ONLY_EXERCISES = re.compile(r"only these exercises, in this order:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_NAME_LIMIT = 120

_TEXT_REPLIES = (
    "Happy to help with {topic}. The short version: train consistently, progress gradually, and recover well. "
    "Small, repeatable improvements beat occasional heroic sessions.",
    "Good question about {topic}. Start with what you can do well today, add a little load or a rep each week, "
    "and take a lighter week every month or so.",
    "On {topic}: focus on technique first, then volume, then intensity. Sleep and protein do more for progress "
    "than any single exercise choice.",
)


@dataclass(frozen=True)
class Reply:
    """The content to send and what kind of reply it is (for the stats)."""

    content: str
    kind: str
    exercise: str | None = None


def compose(request: ChatCompletionRequest, rng: random.Random, *, note_sentences: int = 0) -> Reply:
    """The model's answer to ``request``, before any fault spoils it.

    A skeleton and the weeks written against it come from one plan, drawn from the user's text
    alone (not from ``rng``), so they agree with each other as a model following its own
    skeleton would; the week to write is the first "part of week N" (else "week N") in the instructions, the day (of a
    ``TrainingDay``) the first "training day N", and its exercises those listed after "only these
    exercises, in this order:" (all of the day's when no list is given)."""
    user_text = _DIRECTIVES.sub("", "\n".join(m.text() for m in request.messages if m.role == "user"))
    other_text = _DIRECTIVES.sub("", "\n".join(m.text() for m in request.messages if m.role != "user"))
    fmt = request.response_format
    name = request.schema_name
    if name == PLAN_SCHEMA:
        plan = write_plan(read_intent(user_text, other_text), rng, note_sentences)
        return Reply(plan.model_dump_json(), PLAN_SCHEMA)
    if name in _DRAFTED:
        return Reply(_drafted_part(name, user_text, other_text, note_sentences), name)
    if name == PROFILE_SCHEMA:
        exercise = exercise_name(user_text or other_text)
        return Reply(write_profile(exercise, rng).model_dump_json(), PROFILE_SCHEMA, exercise)
    if name is not None and fmt is not None and fmt.json_schema is not None:
        return Reply(json.dumps(document_for(fmt.json_schema.schema_, rng), ensure_ascii=False), name)
    answer = rng.choice(_TEXT_REPLIES).format(topic=_topic(user_text))
    if fmt is not None and fmt.type == "json_object":
        return Reply(json.dumps({"answer": answer}), JSON_OBJECT_KIND)
    return Reply(answer, TEXT_KIND)


def _drafted_part(name: str, user_text: str, other_text: str, note_sentences: int) -> str:
    """A part of the plan drawn for ``user_text``, as JSON."""
    intent, plan = _drafted_plan(user_text, note_sentences)
    if name in (SKELETON_SCHEMA, OUTLINE_SCHEMA, OVERVIEW_SCHEMA):
        skeleton = skeleton_of(plan, intent)
        if name == OUTLINE_SCHEMA:
            return skeleton.model_dump_json(include={"days_per_week", "blocks", "weeks"})
        if name == OVERVIEW_SCHEMA:
            return skeleton.model_dump_json(include={"title", "summary", "progression"})
        return skeleton.model_dump_json()
    match = _PART_OF_WEEK.search(other_text) or _WRITE_WEEK.search(other_text) or _WEEK_NUMBER.search(other_text)
    week = plan.weeks[min(max(int(match.group(1)), 1), len(plan.weeks)) - 1 if match else 0]
    if name == WEEK_SCHEMA:
        return week.model_dump_json()
    match = _DAY_NUMBER.search(other_text)
    day = next((d for d in week.days if match and d.day == int(match.group(1))), week.days[0])
    if listed := _ONLY_EXERCISES.search(other_text):
        wanted = [n.strip() for n in listed.group(1).split(";") if n.strip()]
        by_name = {item.name: item for item in day.exercises}
        chosen = [by_name[n] for n in wanted if n in by_name] or list(day.exercises)
        day = day.model_copy(update={"exercises": chosen})
    return day.model_dump_json()


@functools.lru_cache(maxsize=1024)
def _drafted_plan(user_text: str, note_sentences: int) -> tuple[PlanIntent, WorkoutPlan]:
    """The plan a skeleton and its eight weeks are cut from: drawn once per user text, not once per
    call (a plan's nine calls would draw it nine times). Read-only to callers."""
    intent = read_intent(user_text, "")
    return intent, write_plan(intent, random.Random(zlib.crc32(user_text.encode())), note_sentences)


def exercise_name(text: str) -> str:
    """The exercise a profile request is about: the last ``Exercise: <name>`` line, else the last
    quoted phrase, else the whole text (trimmed to what ``ExerciseProfile.name`` allows)."""
    if lines := _EXERCISE_LINE.findall(text):
        name = str(lines[-1])
    elif quoted := _QUOTED.findall(text):
        name = next(part for part in quoted[-1] if part)
    else:
        name = " ".join(text.split())
    name = name.strip().strip("\"'\u201c\u201d").strip()[:_NAME_LIMIT].strip()
    return name if len(name) >= 2 else "Unnamed exercise"


def _topic(text: str) -> str:
    words = " ".join(text.split())
    if not words:
        return "your training"
    return f'"{words[:60].rstrip()}{"..." if len(words) > 60 else ""}"'
