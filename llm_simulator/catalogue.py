"""A catalogue of real exercises, tagged so plans can be assembled and profiles written from it.

The entries are data, in ``data/exercises.json``; this module reads and checks them once and
looks exercises up by name.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Annotated

from pydantic import ConfigDict, Field, TypeAdapter


class Pattern(StrEnum):
    """The movement an exercise trains; plan templates ask for patterns, not names."""

    SQUAT = "squat"
    HINGE = "hinge"
    LUNGE = "lunge"
    GLUTES = "glutes"
    HORIZONTAL_PUSH = "hpush"
    VERTICAL_PUSH = "vpush"
    HORIZONTAL_PULL = "hpull"
    VERTICAL_PULL = "vpull"
    SHOULDERS = "shoulders"
    BICEPS = "biceps"
    TRICEPS = "triceps"
    CALVES = "calves"
    CORE = "core"
    CONDITIONING = "conditioning"


class Gear(StrEnum):
    """Equipment an exercise needs. Bodyweight exercises need none."""

    BARBELL = "barbell"
    RACK = "rack"
    BENCH = "bench"
    DUMBBELL = "dumbbell"
    KETTLEBELL = "kettlebell"
    BAND = "band"
    CABLE = "cable"
    MACHINE = "machine"
    PULLUP_BAR = "pullup_bar"
    DIP_BAR = "dip_bar"


class Joint(StrEnum):
    """Joints a person may report as injured; exercises that load them hard are left out."""

    KNEE = "knee"
    LOWER_BACK = "lower_back"
    SHOULDER = "shoulder"


class Level(StrEnum):
    """Training experience, as ``ExerciseProfile.difficulty`` spells it."""

    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


class Dose(StrEnum):
    """How an exercise is prescribed: repetitions, a hold or interval time, or a distance."""

    REPS = "reps"
    TIME = "time"
    DISTANCE = "distance"


@dataclass(frozen=True)
class Exercise:
    """One catalogue entry, as the data file writes it (its keys are these fields)."""

    # The data file is read strictly: unknown keys, values and types are refused, not guessed.
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1)]
    # Plans read the first pattern as the exercise's lead one, so there must be one.
    patterns: Annotated[tuple[Pattern, ...], Field(min_length=1)]
    needs: frozenset[Gear]
    level: Level
    primary: tuple[str, ...]
    secondary: tuple[str, ...]
    description: Annotated[str, Field(min_length=1)]
    cues: tuple[str, ...]
    stresses: frozenset[Joint] = frozenset()
    compound: bool = True
    dose: Dose = Dose.REPS
    unilateral: bool = False
    # What a profile calls the machine in ``needs``; empty means "<name> machine".
    machine: str = ""

    @property
    def equipment_labels(self) -> list[str]:
        """Human-readable equipment, as a profile lists it."""
        if not self.needs:
            return ["bodyweight"]
        labels = {
            Gear.BARBELL: "barbell",
            Gear.RACK: "squat rack",
            Gear.BENCH: "bench",
            Gear.DUMBBELL: "dumbbells",
            Gear.KETTLEBELL: "kettlebell",
            Gear.BAND: "resistance band",
            Gear.CABLE: "cable station",
            Gear.MACHINE: self.machine or f"{self.name.lower()} machine",
            Gear.PULLUP_BAR: "pull-up bar",
            Gear.DIP_BAR: "dip station",
        }
        return [labels[gear] for gear in Gear if gear in self.needs]


_DATA_FILE = ("data", "exercises.json")


def read_catalogue(raw: bytes) -> tuple[Exercise, ...]:
    """The entries of a catalogue file's text, in its order; ``ValueError`` (a pydantic
    ``ValidationError`` for a malformed entry) if the file is not a valid catalogue."""
    entries = TypeAdapter(tuple[Exercise, ...]).validate_json(raw)
    seen: set[str] = set()
    for entry in entries:
        # find_exercise matches names this way, so two such names would make one entry unreachable.
        if (key := normalise_name(entry.name)) in seen:
            raise ValueError(f"two exercises are named {key!r} (ignoring case, punctuation and plurals)")
        seen.add(key)
    return entries


@cache
def exercises() -> tuple[Exercise, ...]:
    """Every catalogue entry, read from ``data/exercises.json`` on first use.

    In the file's order: plans draw from the entries in this order, so reordering the file changes
    what a seed generates."""
    return read_catalogue(files("llm_simulator").joinpath(*_DATA_FILE).read_bytes())


_NOT_WORD = re.compile(r"[^a-z0-9]+")


def normalise_name(name: str) -> str:
    """Lower-case singular words joined by single spaces, for forgiving name matching."""
    words = _NOT_WORD.sub(" ", name.lower()).split()
    # A crude singular ('push ups' -> 'push up', 'lunges' -> 'lunge') that leaves 'press' alone.
    return " ".join(w[:-1] if len(w) >= 3 and w.endswith("s") and not w.endswith("ss") else w for w in words)


@cache
def _by_name() -> dict[str, Exercise]:
    return {normalise_name(e.name): e for e in exercises()}


def find_exercise(name: str) -> Exercise | None:
    """The catalogue entry for ``name``: exact (ignoring case and punctuation), else the closest by words."""
    wanted = normalise_name(name)
    if not wanted:
        return None
    by_name = _by_name()
    if wanted in by_name:
        return by_name[wanted]
    words = set(wanted.split())
    best: tuple[float, Exercise] | None = None
    for key, exercise in by_name.items():
        known = set(key.split())
        # Jaccard similarity of the words: 'Back Squat' finds 'Barbell Back Squat'; 'Squat Rack' finds nothing.
        score = len(words & known) / len(words | known)
        if score >= 0.5 and (best is None or score > best[0]):
            best = (score, exercise)
    return best[1] if best else None
