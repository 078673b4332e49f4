"""When to look at a background response again: near when calls like it have been finishing.

A fixed interval trades polls for latency: every 5 s costs twelve polls on a one-minute call and
sees a finished one up to 5 s late. Calls of one reply type (a whole plan, a skeleton, a week)
take similar times, so the schedule learns, per type, how long recent ones took at the provider
(``completed_at - created_at``) and, once it knows, sleeps until shortly before the quickest of
them would have finished, then looks every twentieth of that duration (between ``min_step`` and
``interval``). Until it knows, and for calls that run past the expected finish, the fixed
interval applies; the quickest recent call rather than the average is the guide, so an unusually
quick call is seen at most a short step late.
"""

from collections import deque

# How many recent durations per reply type the guide is drawn from.
_KEPT = 20
# The first look comes at this fraction of the quickest recent duration, then a step of this fraction.
_FIRST_LOOK = 0.9
_STEP = 0.05


class PollSchedule:
    def __init__(self, interval_seconds: float, min_step_seconds: float = 0.5) -> None:
        self._interval = interval_seconds
        self._min_step = min(min_step_seconds, interval_seconds)
        self._durations: dict[str, deque[float]] = {}

    def finished(self, kind: str, seconds: float) -> None:
        """A response of ``kind`` took ``seconds`` from creation to completion at the provider."""
        if seconds >= 0:
            self._durations.setdefault(kind, deque(maxlen=_KEPT)).append(seconds)

    def next_look(self, kind: str, elapsed_seconds: float) -> float:
        """Seconds to wait before the next poll of a response of ``kind`` created ``elapsed_seconds`` ago."""
        recent = self._durations.get(kind)
        if not recent:
            return self._interval
        quickest = min(recent)
        step = min(self._interval, max(self._min_step, _STEP * quickest))
        return max(step, _FIRST_LOOK * quickest - elapsed_seconds)
