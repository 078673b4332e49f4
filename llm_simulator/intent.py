"""What a plan prompt asks for: days per week, goal, equipment, level and injuries.

A keyword reading, not understanding: good enough for a simulator to answer "3 days a week,
dumbbells only, bad knee" with a plan that visibly honours it.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from llm_simulator.catalogue import Gear, Joint, Level


class Goal(StrEnum):
    """What the plan optimises for."""

    MUSCLE = "muscle"
    STRENGTH = "strength"
    FAT_LOSS = "fat_loss"
    GENERAL = "general"


class Setting(StrEnum):
    """Where the person trains, which decides the equipment available."""

    GYM = "gym"
    HOME = "home"
    DUMBBELLS = "dumbbells"
    BODYWEIGHT = "bodyweight"


GEAR_BY_SETTING: dict[Setting, frozenset[Gear]] = {
    Setting.GYM: frozenset(Gear),
    Setting.HOME: frozenset({Gear.DUMBBELL, Gear.BAND, Gear.BENCH, Gear.KETTLEBELL}),
    Setting.DUMBBELLS: frozenset({Gear.DUMBBELL}),
    Setting.BODYWEIGHT: frozenset(),
}


@dataclass(frozen=True)
class PlanIntent:
    """The request, as far as the simulator understood it. ``days_per_week`` None = not stated."""

    days_per_week: int | None
    goal: Goal
    setting: Setting
    gear: frozenset[Gear]
    level: Level
    injuries: frozenset[Joint]


_NUMBER_WORDS = {"one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_COUNT = r"\b(\d|one|two|three|four|five|six|seven)"
_DAYS_PATTERNS = (
    re.compile(r"days?[_ ]?per[_ ]?week\"?\s*[:=]\s*\"?(\d)"),
    re.compile(_COUNT + r"\s*(?:x|\u00d7|times)\s*(?:a|per|each|every|/)?\s*week"),
    re.compile(
        _COUNT + r"\s*-?\s*(?:training\s+)?(?:days?|sessions?|workouts?)\s*(?:a|per|each|every|/|of the)\s*week"
    ),
    re.compile(r"\b(once|twice)\s+(?:a|per|each)\s+week"),
    re.compile(_COUNT + r"\s*-?\s*day\s+(?:split|plan|program|programme|routine)"),
)

# Ordered: the first goal mentioned wins ("lose fat and build some muscle" is a fat-loss plan).
_GOALS: tuple[tuple[Goal, re.Pattern[str]], ...] = (
    (Goal.MUSCLE, re.compile(r"\bhypertroph|\bmuscle|\bbulk|\bmass\b|\bbodybuild|\bsize\b|\btoned?\b")),
    (Goal.STRENGTH, re.compile(r"\bstrength|\bstronger\b|\bstrong\b|\bpowerlift|\b1rm\b|one rep max")),
    (Goal.FAT_LOSS, re.compile(r"\bfat\b|weight loss|lose weight|losing weight|\blean\b|\bshred|\bslim")),
    (Goal.GENERAL, re.compile(r"\bendurance|\bcardio|\bstamina|\bgeneral\b|\bfitness|\bhealth|\bmarathon")),
)

_INJURIES: dict[Joint, re.Pattern[str]] = {
    Joint.KNEE: re.compile(r"\bknees?\b|\bacl\b|menisc|patell"),
    Joint.LOWER_BACK: re.compile(r"lower back|low back|back pain|bad back|lumbar|\bdisc\b|herniat|sciatica"),
    Joint.SHOULDER: re.compile(r"\bshoulders?\b|rotator cuff|impingement"),
}

# A joint counts as injured only in a clause with words like these, so "I want bigger shoulders"
# keeps the overhead press.
_TROUBLE = re.compile(
    r"injur|pain|hurt|\bbad\b|sore|surg|issue|problem|tendin|strain|sprain|recover|torn|tear|rehab|arthrit"
    r"|avoid|careful|sensitive|niggl|limitation|herniat|sciatica|\bdisc\b|\bacl\b|menisc|impinge|rotator|replace"
)
_CLAUSE_END = re.compile(r"[.,;:!?\n]")

_EXTRA_GEAR: dict[Gear, re.Pattern[str]] = {
    Gear.DUMBBELL: re.compile(r"dumbbell"),
    Gear.KETTLEBELL: re.compile(r"kettlebell"),
    Gear.BAND: re.compile(r"\bbands?\b|resistance band"),
    Gear.BENCH: re.compile(r"\bbench\b"),
    Gear.PULLUP_BAR: re.compile(r"(?:pull|chin)[- ]?up bar"),
    Gear.BARBELL: re.compile(r"barbell"),
}

_ROLE_PLAY = re.compile(r"you are [^.\n]*")

_YEARS_TRAINING = re.compile(
    r"(\d+)\+?\s*years? (?:of )?(?:training|lifting|experience)|(?:training|lifting) (?:for )?(\d+)\+? years"
)


def read_intent(user_text: str, other_text: str) -> PlanIntent:
    """Read the person's request. ``user_text`` (the user messages) wins; ``other_text`` (system
    prompts, which may carry an app's preferences) fills in what the user did not say."""
    user = user_text.lower()
    # A system prompt's "You are an experienced strength coach" describes the model, not the person.
    other = _ROLE_PLAY.sub("", other_text.lower())
    days = _days(user) or _days(other)
    goal = _goal(user) or _goal(other) or Goal.GENERAL
    setting = _setting(user) or _setting(other) or Setting.GYM
    gear = GEAR_BY_SETTING[setting] | _extra_gear(user, setting)
    level = _level(user) or _level(other) or Level.INTERMEDIATE
    injuries = _injuries(user) | _injuries(other)
    return PlanIntent(days, goal, setting, gear, level, frozenset(injuries))


def _days(text: str) -> int | None:
    for pattern in _DAYS_PATTERNS:
        if match := pattern.search(text):
            word = match.group(1)
            count = int(word) if word.isdigit() else _NUMBER_WORDS[word]
            if 1 <= count <= 7:
                return count
    return None


def _goal(text: str) -> Goal | None:
    found = [(match.start(), goal) for goal, pattern in _GOALS if (match := pattern.search(text))]
    return min(found)[1] if found else None


def _setting(text: str) -> Setting | None:
    if re.search(r"no equipment|without equipment|bodyweight|body weight|no weights|calisthenics", text):
        return Setting.BODYWEIGHT
    if re.search(r"dumbbells? only|only (?:a pair of |two |some )?dumbbells|just (?:a pair of |some )?dumbbells", text):
        return Setting.DUMBBELLS
    if re.search(r"\bhome\b|apartment|living room|garage", text):
        return Setting.HOME
    if re.search(r"\bgym\b|barbell|machines|commercial", text):
        return Setting.GYM
    return None


def _extra_gear(text: str, setting: Setting) -> frozenset[Gear]:
    if setting in (Setting.BODYWEIGHT, Setting.DUMBBELLS):
        # "Only" means only: a mention of a bench in "dumbbells only, no bench" must not add one.
        return frozenset()
    extra = {gear for gear, pattern in _EXTRA_GEAR.items() if pattern.search(text)}
    if Gear.BARBELL in extra:
        extra |= {Gear.RACK, Gear.BENCH}
    return frozenset(extra)


def _level(text: str) -> Level | None:
    if re.search(
        r"beginner|novice|inexperienced|new to|never (?:trained|lifted|worked out)|just starting|first time", text
    ):
        return Level.BEGINNER
    if re.search(r"advanced|\bexperienced|competitive", text):
        return Level.ADVANCED
    if re.search(r"intermediate|some experience", text):
        return Level.INTERMEDIATE
    if match := _YEARS_TRAINING.search(text):
        years = int(match.group(1) or match.group(2))
        return Level.ADVANCED if years >= 5 else Level.INTERMEDIATE if years >= 1 else Level.BEGINNER
    return None


def _injuries(text: str) -> set[Joint]:
    troubled = [clause for clause in _CLAUSE_END.split(text) if _TROUBLE.search(clause)]
    return {joint for joint, pattern in _INJURIES.items() if any(pattern.search(c) for c in troubled)}
