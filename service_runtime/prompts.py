"""Prompts live in versioned text files beside the service that sends them (``prompts/<name>-v<N>.txt``).

A prompt change is a new file, so the version a plan was written with can be recorded on it and
two versions can be compared side by side; the old file stays until nothing uses it.
"""

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Prompt", "read_prompt"]


@dataclass(frozen=True)
class Prompt:
    version: str  # the file's name without ``.txt``, e.g. ``plan-v1``
    text: str


def read_prompt(directory: Path, version: str) -> Prompt:
    return Prompt(version, (directory / f"{version}.txt").read_text(encoding="utf-8"))
