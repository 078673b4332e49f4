"""Experiments: shares of the traffic written by other strategies or models, each plan's variant
fixed by its request id.

``PLANNER_EXPERIMENT`` lists the variants and their weights, e.g.
``progressive=80,parallel:gpt-4.1-mini=20``: a generation (``parallel``, ``progressive`` or
``single``), optionally ``:<model>`` (else ``PLANNER_MODEL``), ``=`` a whole-number weight. A
request goes to the variant its id hashes to, so every delivery of it, on every replica, takes the
same one (a redelivery re-attaches to or reuses that variant's parts). Each plan records its prompt
version and model (``PlanGenerated``, ``workout_plans``), its quality scores and its cost, which the
dashboard and ``python -m services.persister quality`` report per variant.
"""

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from services.planner.planning import CheckedPlan, PlanPrompt, PlanWriter

__all__ = ["Experiment", "Variant", "parse_variants"]

Generation = Literal["parallel", "progressive", "single"]
_GENERATIONS = ("parallel", "progressive", "single")
_VARIANT = re.compile(r"^\s*(?P<generation>[a-z]+)(?::(?P<model>[A-Za-z0-9._-]+))?\s*=\s*(?P<weight>\d+)\s*$")


@dataclass(frozen=True)
class Variant:
    generation: Generation
    model: str
    weight: int

    @property
    def name(self) -> str:
        return f"{self.generation}:{self.model}"


def parse_variants(text: str, *, default_model: str) -> tuple[Variant, ...]:
    """The variants ``text`` lists; ``ValueError`` saying what is wrong with it otherwise."""
    variants: list[Variant] = []
    for part in text.split(","):
        match = _VARIANT.match(part)
        if match is None or match["generation"] not in _GENERATIONS:
            raise ValueError(
                f"{part.strip()!r} is not a variant: write <generation>[:<model>]=<weight>, the generation one of"
                f" {', '.join(_GENERATIONS)}, e.g. 'progressive=80,parallel:gpt-4.1-mini=20'"
            )
        generation = cast(Generation, match["generation"])
        variants.append(Variant(generation, match["model"] or default_model, int(match["weight"])))
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"a variant is listed twice: {', '.join(names)}")
    if sum(variant.weight for variant in variants) == 0:
        raise ValueError("every variant has weight 0: nothing would be written")
    return tuple(variants)


class Experiment:
    """A ``PlanWriter`` that hands each request to one variant's writer, chosen by its request id."""

    prompt_version = "experiment"  # each plan records its own variant's (``CheckedPlan.prompt_version``)

    def __init__(self, writers: Sequence[tuple[Variant, PlanWriter]]) -> None:
        self._writers = [(variant, writer) for variant, writer in writers if variant.weight > 0]
        self._total = sum(variant.weight for variant, _ in self._writers)

    def variant_of(self, request_id: uuid.UUID) -> Variant:
        return self._pick(request_id)[0]

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        return await self._pick(request_id)[1].write(request_id, prompt)

    async def abandon(self, request_id: uuid.UUID) -> None:
        await self._pick(request_id)[1].abandon(request_id)

    def _pick(self, request_id: uuid.UUID) -> tuple[Variant, PlanWriter]:
        point = int.from_bytes(hashlib.sha256(request_id.bytes).digest()[:8], "big") % self._total
        for variant, writer in self._writers:
            if point < variant.weight:
                return variant, writer
            point -= variant.weight
        raise AssertionError("unreachable: the weights add up to the total")
