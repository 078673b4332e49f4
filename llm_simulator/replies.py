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
PROFILE_SCHEMA = "ExerciseProfile"
TEXT_KIND = "text"
JSON_OBJECT_KIND = "json_object"

_EXERCISE_LINE = re.compile(r"^\s*Exercise:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_QUOTED = re.compile(r"\"([^\"\n]{2,120})\"|\u201c([^\u201d\n]{2,120})\u201d")
_DIRECTIVES = re.compile(r"\[\[sim:[^\]]*\]\]")
_WEEK_NUMBER = re.compile(r"\bweek\s+(\d)\b", re.IGNORECASE)
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
    skeleton would; the week to write is the first "week N" in the instructions."""
    user_text = _DIRECTIVES.sub("", "\n".join(m.text() for m in request.messages if m.role == "user"))
    other_text = _DIRECTIVES.sub("", "\n".join(m.text() for m in request.messages if m.role != "user"))
    fmt = request.response_format
    name = request.schema_name
    if name == PLAN_SCHEMA:
        plan = write_plan(read_intent(user_text, other_text), rng, note_sentences)
        return Reply(plan.model_dump_json(), PLAN_SCHEMA)
    if name in (SKELETON_SCHEMA, WEEK_SCHEMA):
        intent, plan = _drafted_plan(user_text, note_sentences)
        if name == SKELETON_SCHEMA:
            return Reply(skeleton_of(plan, intent).model_dump_json(), SKELETON_SCHEMA)
        match = _WEEK_NUMBER.search(other_text)
        week = min(max(int(match.group(1)), 1), len(plan.weeks)) if match else 1
        return Reply(plan.weeks[week - 1].model_dump_json(), WEEK_SCHEMA)
    if name == PROFILE_SCHEMA:
        exercise = exercise_name(user_text or other_text)
        return Reply(write_profile(exercise, rng).model_dump_json(), PROFILE_SCHEMA, exercise)
    if name is not None and fmt is not None and fmt.json_schema is not None:
        return Reply(json.dumps(document_for(fmt.json_schema.schema_, rng), ensure_ascii=False), name)
    answer = rng.choice(_TEXT_REPLIES).format(topic=_topic(user_text))
    if fmt is not None and fmt.type == "json_object":
        return Reply(json.dumps({"answer": answer}), JSON_OBJECT_KIND)
    return Reply(answer, TEXT_KIND)


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
