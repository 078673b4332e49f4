"""Progress in a terminal: one status line per request, redrawn in place.

Where the output is not a terminal (a pipe, a test, a CI log) nothing can be redrawn, so a line is
written only when a request's phase changes, preceded by the last status of the phase it leaves
when that was not written yet ("weeks 8/8", "profiles 20/21"): a handful of lines per request, not
one per notice.
"""

import shutil
from typing import TextIO

__all__ = ["LiveView"]

_CLEAR_LINE = "\x1b[2K"
_UP = "\x1b[1A"


class LiveView:
    """Status lines keyed by request; ``close()`` leaves them on screen and the cursor below them."""

    def __init__(self, out: TextIO, *, redraw: bool | None = None) -> None:
        self._out = out
        self._redraw = out.isatty() if redraw is None else redraw
        self._lines: dict[str, str] = {}
        self._phases: dict[str, object] = {}
        self._written: dict[str, str] = {}  # without a terminal: the last line written per key
        self._drawn = 0  # lines on screen that the next redraw overwrites

    def show(self, key: str, text: str, *, phase: object) -> None:
        """``key``'s status is now ``text``; without a terminal it is written only if ``phase`` changed."""
        if not self._redraw:
            if self._phases.get(key, self) != phase:
                last = self._lines.get(key)
                if last is not None and last != self._written.get(key):
                    self._write(last + "\n")
                self._phases[key] = phase
                self._written[key] = text
                self._write(text + "\n")
            self._lines[key] = text
            return
        self._lines[key] = text
        # A line longer than the terminal wraps, and the redraw would then climb too few lines.
        width = max(20, shutil.get_terminal_size().columns - 1)
        back = "\r" + _UP * (self._drawn - 1) if self._drawn else ""
        body = "\n".join(_CLEAR_LINE + line[:width] for line in self._lines.values())
        self._drawn = len(self._lines)
        self._write(back + body)

    def close(self) -> None:
        """Stop redrawing: what is written next goes below the status lines."""
        if self._redraw and self._drawn:
            self._write("\n")
        self._lines.clear()
        self._phases.clear()
        self._written.clear()
        self._drawn = 0

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()
