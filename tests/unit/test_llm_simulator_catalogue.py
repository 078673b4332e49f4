"""The LLM simulator's exercise catalogue: a data file, read and checked once."""

import json
from importlib.resources import files
from typing import Any

import pytest

from llm_simulator.catalogue import Dose, Gear, Joint, Level, Pattern, exercises, find_exercise, read_catalogue

_ROW: dict[str, Any] = {
    "name": "Goblet Squat",
    "patterns": ["squat"],
    "needs": ["dumbbell"],
    "level": "beginner",
    "primary": ["quadriceps", "glutes"],
    "secondary": ["core"],
    "description": "A squat holding one dumbbell at the chest.",
    "cues": ["Keep the heels down"],
}


def _read(*rows: dict[str, Any]) -> None:
    read_catalogue(json.dumps(list(rows)).encode())


def test_the_committed_catalogue_file_ships_inside_the_package() -> None:
    assert files("llm_simulator").joinpath("data", "exercises.json").is_file()
    assert len(exercises()) >= 80
    assert exercises() is exercises()


def test_a_row_reads_as_an_exercise_with_the_defaults_filled_in() -> None:
    (squat,) = read_catalogue(json.dumps([{**_ROW, "needs": ["machine"], "stresses": ["knee"]}]).encode())

    assert squat.patterns == (Pattern.SQUAT,)
    assert squat.needs == frozenset({Gear.MACHINE})
    assert squat.level is Level.BEGINNER
    assert squat.stresses == frozenset({Joint.KNEE})
    assert (squat.compound, squat.dose, squat.unilateral) == (True, Dose.REPS, False)
    assert squat.equipment_labels == ["goblet squat machine"]


def test_catalogue_names_are_found_forgivingly() -> None:
    squat = find_exercise("Barbell Back Squat")
    assert squat is not None
    assert find_exercise("barbell back squats") is squat
    assert find_exercise("Back Squat") is squat
    assert find_exercise("Squat Rack") is None


@pytest.mark.parametrize(
    "row",
    [
        {**_ROW, "difficulty": "easy"},
        {**_ROW, "needs": ["anvil"]},
        {**_ROW, "patterns": []},
        {**_ROW, "compound": "yes"},
        {key: value for key, value in _ROW.items() if key != "level"},
    ],
    ids=["unknown key", "unknown gear", "no pattern", "not a boolean", "missing level"],
)
def test_a_malformed_row_is_refused(row: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        _read(row)


def test_two_rows_that_find_exercise_cannot_tell_apart_are_refused() -> None:
    with pytest.raises(ValueError, match="goblet squat"):
        _read(_ROW, {**_ROW, "name": "goblet squats"})
