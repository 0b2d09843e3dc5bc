"""Progress while the suite runs, on stderr (stdout is for the results): a rich progress bar on
a terminal when rich is installed, plain lines otherwise (piped output, logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, label: str) -> None: ...
    def stop(self) -> None: ...


class PlainProgress:
    """One line per step: ``[ 3/40   2.1s] original: switch n=1,000 ids=fresh``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = self.done = 0
        self.started = time.monotonic()

    def start(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def advance(self, label: str) -> None:
        self.done += 1
        width = len(str(self.total))
        elapsed = time.monotonic() - self.started
        print(f"[{self.done:>{width}}/{self.total} {elapsed:6.1f}s] {label}", file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    """A transient progress bar (rich), cleared when the run ends."""

    def __init__(self) -> None:
        from rich.console import Console  # type: ignore[import-not-found, unused-ignore]
        from rich.progress import (  # type: ignore[import-not-found, unused-ignore]
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar: Any = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: Any = None
        self._done = 0

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("starting", total=total)

    def advance(self, label: str) -> None:
        # called as a step starts: the bar counts the steps finished before it
        self._bar.update(self._task, description=label, completed=self._done)
        self._done += 1

    def stop(self) -> None:
        self._bar.stop()


def make_progress() -> Progress:
    """Rich on a terminal (when installed), plain lines otherwise."""
    if sys.stderr.isatty():
        try:
            return RichProgress()
        except ImportError:
            pass
    return PlainProgress()
