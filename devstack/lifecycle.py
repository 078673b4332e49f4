"""``with server:`` for everything devstack and the tests start: start on entry, stop on exit."""

from types import TracebackType
from typing import Self


class StartStop:
    """A thing with ``start()`` and ``stop()``; as a context manager it is stopped however the block ends."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
