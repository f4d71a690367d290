"""Progress for long work, on stderr: a live rich display on a terminal, plain lines otherwise.

CI logs get one line per event (`build nextjs-developer:1.0.0: step 3/21 RUN npm install`), a
terminal gets one live row per task. Results never go here; they go to stdout.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress

__all__ = ["Progress", "table"]


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()
) -> str:
    """A plain fixed-width table (two spaces between columns), columns in `right` aligned right."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            str(cell).rjust(width) if i in right else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip() + "\n"

    return "".join(line(row) for row in [header, *rows])


class Progress:
    """Rows of progress, one per task key (a template), safe to update from worker threads.

    Args:
        err: the stream to draw on (stderr).
        verb: what is being done, the prefix of plain lines (`build`, `smoke`).
        live: force the live display on or off (default: when `err` is a terminal).
    """

    def __init__(self, err: TextIO, verb: str, *, live: bool | None = None) -> None:
        self._err = err
        self._verb = verb
        self._live = err.isatty() if live is None else live
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._rich: RichProgress | None = None
        if self._live:
            self._rich = RichProgress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[key]}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}", markup=False),
                console=Console(file=err, stderr=True),
                transient=False,
            )

    def __enter__(self) -> Self:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()

    def add(self, key: str, status: str = "waiting", total: int | None = None) -> None:
        """A new row for `key`."""
        with self._lock:
            if self._rich is not None:
                self._tasks[key] = self._rich.add_task(status, key=key, total=total)

    def update(
        self,
        key: str,
        status: str,
        *,
        completed: int | None = None,
        total: int | None = None,
        quiet: bool = False,
    ) -> None:
        """Set the status text (and step counts) of `key`'s row; `quiet` skips the plain line."""
        with self._lock:
            if self._rich is not None and key in self._tasks:
                self._rich.update(
                    self._tasks[key], description=status, completed=completed, total=total
                )
            elif self._rich is None and not quiet:
                self._err.write(f"{self._verb} {key}: {status}\n")
                self._err.flush()

    def finish(self, key: str, status: str) -> None:
        """Mark `key`'s row done with a final status (also printed as a plain line)."""
        with self._lock:
            if self._rich is not None and key in self._tasks:
                task = self._tasks[key]
                total = next((t.total for t in self._rich.tasks if t.id == task), None) or 1
                self._rich.update(task, description=status, completed=total, total=total)
                self._rich.stop_task(task)
            else:
                self._err.write(f"{self._verb} {key}: {status}\n")
                self._err.flush()

    def note(self, text: str) -> None:
        """A line that stays, above the live rows."""
        with self._lock:
            if self._rich is not None:
                self._rich.console.print(text, markup=False, highlight=False)
            else:
                self._err.write(text + "\n")
                self._err.flush()
