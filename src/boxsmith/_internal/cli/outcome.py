"""From a command's end to its exit code: the one place that maps errors to exit codes, shared by
the CLI (`cli.app`) and the invoke tasks (`boxsmith.tasks`), so both print the same text for the
same failure (README, "Exit codes"). An optional module that is not installed is a usage error
naming the `pip install 'boxsmith[...]'` that brings it (`boxsmith._internal.extras`)."""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO

from boxsmith._internal.extras import COMMANDS, missing_module
from boxsmith.errors import EXIT_INFRA, EXIT_INTERRUPTED, BoxsmithError

__all__ = ["run_command"]

_CLI = __name__.rpartition(".")[0]  # boxsmith._internal.cli: its command modules name commands

INTERRUPTED = (
    "interrupted; cleaned up (no partial files, local builds cancelled, containers removed; a"
    " build already sent to a target runs on there, and the next publish waits for it)"
)


def run_command(step: Callable[[], int], err: TextIO, *, debug: bool = False) -> int:
    """Run `step` and return its exit code, or the code of the error it raised.

    A `BoxsmithError` prints its own message and fix; Ctrl-C, and SIGTERM while `step` runs (a
    cancelled CI job: it cleans up the same way), exit 130; a file the system refused exits 3
    naming the file; a module of one of boxsmith's extras that is not installed exits 2 naming
    the extras the running command needs; anything else is a bug in boxsmith: exit 3 with a
    one-line message, and the traceback too with `debug`.
    """
    try:
        with _sigterm_interrupts():
            return step()
    except BoxsmithError as exc:
        err.write(exc.format() + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write(INTERRUPTED + "\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.filename is None:
            return _internal_error(exc, err, debug)
        err.write(  # a disk's answer, not a bug
            f"error: {exc.filename}: {exc.strerror or exc}\n"
            "  fix: check that path's permissions (`ls -ld`, `lsattr -d`), file system and "
            "free space, then run again\n"
        )
        return EXIT_INFRA
    except ModuleNotFoundError as exc:
        missing = missing_module(exc, _command(exc.__traceback__))
        if missing is None:
            return _internal_error(exc, err, debug)
        if debug:
            traceback.print_exception(exc, file=err)
        err.write(missing.format() + "\n")
        return missing.exit_code
    except Exception as exc:  # a bug in boxsmith, not the user's mistake
        return _internal_error(exc, err, debug)


def _command(tb: TracebackType | None) -> str | None:
    """The command whose code raised: the outermost frame of the traceback in a command module
    (`boxsmith._internal.cli.<name>`, a key of `extras.COMMANDS`), as in the CLI so in the tasks,
    which call the same modules."""
    while tb is not None:
        package, _, name = str(tb.tb_frame.f_globals.get("__name__", "")).rpartition(".")
        if package == _CLI and name in COMMANDS:
            return name
        tb = tb.tb_next
    return None


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the block runs (only the main thread may set a
    handler; elsewhere the process's own handling stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _internal_error(exc: Exception, err: TextIO, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc, file=err)
    err.write(
        f"internal error: {type(exc).__name__}: {exc}\n"
        "  fix: rerun with `boxsmith --debug` and report the traceback\n"
    )
    return EXIT_INFRA
