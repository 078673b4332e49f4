"""How a handler tells the consumer what to do with a message it could not finish.

Returning normally acks. ``RetryLater`` asks for redelivery after a delay (a transient fault);
``GiveUp`` ends the message for good (a permanent fault). Any other exception counts as
transient. Either way the number of attempts is bounded by the consumer's ``max_deliver``,
after which the consumer's ``on_give_up`` hook runs and the message is terminated.
``Misconfigured`` says the fault is the service's own set-up, not the message's: the message goes
back untouched and the consumer stops taking work until an operator fixes the service.
"""


class RetryLater(Exception):
    """A transient fault: deliver this message again after ``delay_seconds``."""

    def __init__(self, reason: str, delay_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_seconds = delay_seconds


class GiveUp(Exception):
    """A permanent fault: retrying cannot help."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Misconfigured(Exception):
    """The service is set up wrong (e.g. the provider refuses the schema we send): every message
    would fail the same way, so none should be spent on it. The consumer puts the message back,
    stops fetching, reports not ready and raises the ``consumer_halted`` metric (an alert)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
