"""A progress line on stderr for long runs: events done, events/s and ETA.

Callers count in batches (a sink's ``write_batch``), never per event; the line is redrawn at
most every ``interval`` seconds. On a terminal it rewrites itself (``\\r``); elsewhere (a log
file, CI) it prints whole lines, less often.

>>> import io
>>> out = io.StringIO()
>>> p = Progress(total=10, stream=out, interval=0.0, enabled=True)
>>> p.update(4); p.close()
>>> "4/10 events (40.0%)" in out.getvalue()
True
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``update(n)`` after each batch; ``close()`` prints the final line. ``enabled=None``:
    on when ``stream`` is a terminal."""

    def __init__(
        self,
        total: int | None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float | None = None,
        label: str = "replay",
    ):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = self.tty if enabled is None else enabled
        self.interval = interval if interval is not None else (0.25 if self.tty else 5.0)
        self.label = label
        self.done = 0
        self._start = time.monotonic()
        self._shown = self._start

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown >= self.interval:
            self._shown = now
            self._show(now, final=False)

    def line(self, now: float | None = None) -> str:
        """``replay: 12,000/50,000 events (24.0%)  7,512 events/s  ETA 0:05``."""
        elapsed = max((now or time.monotonic()) - self._start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} events ({100 * self.done / self.total:.1f}%)"
        else:
            text += " events"
        text += f"  {rate:,.0f} events/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f"  ETA {_clock((self.total - self.done) / rate)}"
        else:
            text += f"  elapsed {_clock(elapsed)}"
        return text

    def _show(self, now: float, final: bool) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(now).ljust(78) + ("\n" if final else ""))
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Print the final line."""
        if self.enabled:
            self._show(time.monotonic(), final=True)


__all__ = ["Progress"]
