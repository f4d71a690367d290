"""What goes to stderr: the verbosity a command runs at (`Stderr`, set up once by the CLI), and
progress for long work: a live rich display on a terminal, plain lines otherwise.

CI logs get one line per event (`build nextjs-developer:1.0.0: step 3/21 RUN npm install`), a
terminal gets one live row per task. Results never go here; they go to stdout.

The verbosity (`-q` / `-v` on the command line):

- quiet: stderr holds its lines until the command ends (`Stderr.finish`); a command that
  succeeds then shows only its warnings and errors (and the lines indented under them), one that
  fails shows all it said (without the progress steps; each task's end stays), so the reason is
  never lost. Results stay on stdout.
- normal: every line as it is written; the live display on a terminal.
- verbose: plain lines, no live display; also the progress steps a normal run leaves out, and
  every line starts with the seconds since the command started (so each stage's time shows).
"""

from __future__ import annotations

import enum
import io
import re
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["Progress", "Stderr", "Verbosity", "say_now", "table", "verbosity"]


class Verbosity(enum.IntEnum):
    """How much a command says on stderr (module doc)."""

    QUIET = -1
    NORMAL = 0
    VERBOSE = 1


def say_now(stream: TextIO, text: str) -> None:
    """`text` on `stream` at once (`Stderr.now`), whatever its verbosity."""
    if isinstance(stream, Stderr):
        stream.now(text)
    else:
        stream.write(text)


def verbosity(stream: TextIO) -> Verbosity:
    """The verbosity `stream` was set up with: a `Stderr`'s own, NORMAL for any other stream."""
    return stream.verbosity if isinstance(stream, Stderr) else Verbosity.NORMAL


# Kept by a quiet run that succeeds: a warning or error line (`warning: ...`, `docker: warning:
# ...`, `app:1.0.0: error: ...`) and GitHub's `::warning` / `::error` annotations.
_KEPT = re.compile(r"(?:(?:\S+: )*(?:warning|error): |::(?:warning|error)\b)")


class Stderr(io.TextIOBase, TextIO):
    """stderr shaped by a verbosity (module doc); thread-safe. A reader that went away (`2>&1 |
    head`) is not an error: what follows is dropped and `broken` says so.

    Args:
        stream: the stream to write to (sys.stderr).
        level: the verbosity.
    """

    def __init__(self, stream: TextIO, level: Verbosity = Verbosity.NORMAL) -> None:
        super().__init__()
        self.stream = stream
        self.verbosity = level
        self.broken = False
        self._lock = threading.Lock()
        self._held: list[str] = []
        self._start = time.monotonic()
        self._line_start = True

    def write(self, text: str, /) -> int:
        with self._lock:
            if self.verbosity is Verbosity.QUIET:
                self._held.append(text)
            elif self.verbosity is Verbosity.VERBOSE:
                self._emit(self._stamped(text))
            else:
                self._emit(text)
        return len(text)

    def now(self, text: str) -> None:
        """Write `text` at once, also when quiet: a line a person must see while the command
        waits (for another run's lock, say), not only once it ends."""
        with self._lock:
            self._emit(self._stamped(text) if self.verbosity is Verbosity.VERBOSE else text)

    def flush(self) -> None:
        with self._lock:
            self._emit("")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def finish(self, *, failed: bool) -> None:
        """The command ended: a quiet stream shows what it held (all of it when `failed`, else
        the warnings and errors); then writes go straight through."""
        with self._lock:
            held, self._held = "".join(self._held), []
            if self.verbosity is Verbosity.QUIET:
                self._emit(held if failed else _kept(held))
                self.verbosity = Verbosity.NORMAL

    def _stamped(self, text: str) -> str:
        """`text` with the elapsed seconds at the start of each line (not of empty lines or
        GitHub annotations, which must start theirs)."""
        parts = []
        for line in text.splitlines(keepends=True):
            if self._line_start and line.strip() and not line.startswith("::"):
                parts.append(f"[{time.monotonic() - self._start:7.2f}s] ")
            parts.append(line)
            self._line_start = line.endswith("\n")
        return "".join(parts)

    def _emit(self, text: str) -> None:
        if self.broken:
            return
        try:
            if text:
                self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self.broken = True


def _kept(text: str) -> str:
    """The warning and error lines of `text`, each with the indented lines under it."""
    kept, keeping = [], False
    for line in text.splitlines(keepends=True):
        keeping = bool(_KEPT.match(line)) or (keeping and line.startswith((" ", "\t")))
        if keeping:
            kept.append(line)
    return "".join(kept)


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
        live: force the live display on or off (default: when `err` is a terminal and its
            verbosity is normal).
    """

    def __init__(self, err: TextIO, verb: str, *, live: bool | None = None) -> None:
        self._err = err
        self._verb = verb
        self._level = verbosity(err)
        self._live = err.isatty() and self._level is Verbosity.NORMAL if live is None else live
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._rich: RichProgress | None = self._display(err) if self._live else None

    @staticmethod
    def _display(err: TextIO) -> RichProgress:
        # lazy: rich takes about 60 ms to import and only a terminal's live display needs it,
        # not every command that reports progress in plain lines (a CI log, a pipe, -q, -v)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        return RichProgress(
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
            elif self._rich is None and self._plain(quiet):
                self._err.write(f"{self._verb} {key}: {status}\n")
                self._err.flush()

    def _plain(self, quiet: bool) -> bool:
        """Whether an update is written as a plain line: never at QUIET, every one at VERBOSE,
        else all but the `quiet` ones."""
        if self._level is Verbosity.QUIET:
            return False
        return self._level is Verbosity.VERBOSE or not quiet

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
