"""A small progress bar on stderr for long Monte-Carlo runs (no dependency; silent when disabled)."""

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``Progress(total, label)``; call ``update(done, note="")`` as work completes; ``close()`` ends the line.

    On a terminal the bar redraws in place; elsewhere (CI logs) it prints a line only at 25% steps and at the end.
    """

    def __init__(self, total, label, enabled=True, stream=None, width=24):
        self.total, self.label, self.enabled, self.width = max(int(total), 1), label, enabled, width
        self.stream = sys.stderr if stream is None else stream
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.start, self._quarter = time.monotonic(), -1

    def update(self, done, note=""):
        if not self.enabled:
            return
        frac = min(done / self.total, 1.0)
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        filled = int(round(frac * self.width))
        line = (f"{self.label} |{'#' * filled}{'.' * (self.width - filled)}| {done}/{self.total} "
                f"[{elapsed:5.1f}s elapsed, {eta:5.1f}s left] {note}")
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(100))
        elif int(frac * 4) > self._quarter or done >= self.total:
            self._quarter = int(frac * 4)
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
