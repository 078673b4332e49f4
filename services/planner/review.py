"""The skeleton shown to the user before the weeks are written (a waitpoint).

A request may ask to see its skeleton first (``PlanRequested.review_seconds``). The strategies
write the skeleton (or outline) under ``Checkpoint.part`` and then call ``Checkpoint.reached``,
which stops the delivery with ``AwaitingReview`` when the user is to see it: the planner publishes
``plan.awaiting.review`` and acks, so nothing is held while the user thinks. The user's decision
comes back as the request again (``PlanRequested.review``): confirmed or left to time out, the weeks
are written against the kept skeleton of that round; adjusted, the skeleton is written again with
the user's words (a new round, under its own part name, so a redelivery reuses it) and shown again.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contracts.events import PlanRequested
from contracts.plan import PlanOutline, PlanSkeleton

__all__ = [
    "ADJUSTMENTS_HEADING",
    "AwaitingReview",
    "Checkpoint",
    "checkpoint_of",
    "with_adjustments",
    "written_rounds",
]

# The user's words about the skeleton go in the user's turn with the profile, for every call of the
# plan: the skeleton follows them, and so do the weeks' checks (a knee the user now names, say).
ADJUSTMENTS_HEADING = "Changes the user asked for after seeing the programme's outline, in order:"


class AwaitingReview(Exception):
    """The skeleton is written and the user is to see it before anything else is spent."""

    def __init__(self, outline: PlanOutline) -> None:
        super().__init__("awaiting the user's review of the skeleton")
        self.outline = outline


@dataclass(frozen=True)
class Checkpoint:
    """Where a plan's writing stands with the user: whether to stop once the skeleton is written,
    and which writing of the skeleton (``round``: 0 the first, n after the n-th adjustment) it uses."""

    stop: bool = False
    round: int = 0

    def part(self, name: str) -> str:
        """The kept part's name for this round's skeleton (or outline)."""
        return name if self.round == 0 else f"{name}-r{self.round}"

    def reached(self, frame: PlanSkeleton | PlanOutline) -> None:
        """Call once the skeleton is written: raises ``AwaitingReview`` when the user is to see it."""
        if self.stop:
            raise AwaitingReview(
                PlanOutline.model_validate(frame.model_dump(include={"days_per_week", "blocks", "weeks"}))
            )


def checkpoint_of(request: PlanRequested) -> Checkpoint:
    """A first delivery stops for review when asked to; an adjustment stops again (the new skeleton
    is shown); a confirmation or a wait that ran out goes on with that round's skeleton."""
    review = request.review
    if review is None:
        return Checkpoint(stop=request.review_seconds > 0)
    return Checkpoint(stop=review.action == "adjust" and request.review_seconds > 0, round=review.round)


async def written_rounds(name: str, kept: Callable[[str], Awaitable[bool]]) -> list[str]:
    """The part names of the skeleton's (or outline's) rounds after the first: every kept one and the
    next (it may be being written), so a cancel stops whichever round is running at the provider."""
    names: list[str] = []
    round_ = 1
    while True:
        names.append(Checkpoint(round=round_).part(name))
        if not await kept(names[-1]):
            return names
        round_ += 1


def with_adjustments(user: str, adjustments: tuple[str, ...]) -> str:
    """The user's turn with their adjustments to the skeleton after it."""
    if not adjustments:
        return user
    return "\n".join((user, "", ADJUSTMENTS_HEADING, *(f"- {text}" for text in adjustments)))
