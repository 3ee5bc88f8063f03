"""Progress of a long operation (`scf call` streaming a CSV into a sink, say) on stderr.

On a terminal: a rich progress line with the count, a bar and an ETA when a total is known, the rate
and the elapsed time. Elsewhere (a pipe, CI's log): a plain line at most every `PLAIN_EVERY` seconds.
Either way the last state is printed when the operation ends, on its own line, before the answer.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, Self

import click

#: Seconds between plain progress lines when stderr is not a terminal.
PLAIN_EVERY = 5.0


class OperationProgress:
    """Takes the fleet's progress messages (`{"records_done": N, "records_total": M?}`)."""

    def __init__(self, label: str, *, terminal: bool | None = None, plain_every: float = PLAIN_EVERY) -> None:
        self.label = label
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.plain_every = plain_every
        self.done = 0
        self.total: int | None = None
        self.updates = 0
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Self:
        self._started = self._last_line = time.monotonic()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        text = f"{self.label}: {count} records, {self.rate():.0f}/s"
        if self.total and self.done and self.done < self.total:
            text += f", ETA {(self.total - self.done) / max(self.rate(), 1e-9):.0f} s"
        return text

    def update(self, message: dict[str, Any]) -> None:
        done, total = message.get("records_done"), message.get("records_total")
        if not isinstance(done, int) or isinstance(done, bool):
            return
        self.done, self.updates = max(self.done, done), self.updates + 1
        if isinstance(total, int) and not isinstance(total, bool) and total > 0:
            self.total = total
        if self.terminal:
            self._draw()
        elif time.monotonic() - self._last_line >= self.plain_every:
            self._last_line = time.monotonic()
            click.echo(f"scf: {self.line()}", err=True)

    def _draw(self) -> None:
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("records · {task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
                redirect_stdout=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, rate="0")
        self._bar.update(self._task, completed=self.done, total=self.total, rate=f"{self.rate():.0f}")

    def finish(self, final_done: int | None = None) -> None:
        """Stop the bar and print the last state (`final_done`: the result's own count, when it has one)."""
        if final_done is not None:
            self.done = max(self.done, final_done)
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.updates:
            self.updates = 0
            click.echo(f"scf: {self.line()} (done)", err=True)
