"""One state-changing run per project at a time: the project lock.

render, build, publish, smoke that records (`--target`), release, promote and rollback change
generated/, the index or a target's tags; two at once publish a version twice and write two
records of it. Each takes `hold(settings, command)` around its work: an exclusive `flock` on
`.boxsmith/lock`. The kernel lets go of it when the process ends, however it ends (kill -9
too), so there is never a stale lock to clear by hand; the file is never deleted (a waiter
holds it open).

The holder writes who it is into the file (pid, command, since when). A second run prints
that and waits, or with `no_wait` (`--no-wait`, BOXSMITH_NO_WAIT=1) refuses with `LockBusy`
(exit 3). Within one process the lock is re-entrant: `release` holds it once for all its
stages, and the stages it calls take it again without waiting on themselves. Read-only commands
(validate, check, lint, list, smoke --local) take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from boxsmith._internal.progress import say_now
from boxsmith.config import Settings
from boxsmith.errors import BoxsmithError

__all__ = ["LOCK_FILE", "LockBusy", "hold", "holder"]

LOCK_FILE = "lock"  # under the project's state folder, .boxsmith/


class LockBusy(BoxsmithError):
    """Another run holds the project lock and `no_wait` is set (exit 3)."""


class _Held:
    """This process's hold on one lock file: the open file and how deep the holds nest."""

    def __init__(self) -> None:
        self.mutex = threading.RLock()  # threads of one process take turns like processes
        self.fd = -1
        self.depth = 0


_held: dict[Path, _Held] = {}
_registry = threading.Lock()


def _entry(path: Path) -> _Held:
    with _registry:
        return _held.setdefault(path, _Held())


def holder(path: Path) -> str:
    """Who holds the lock at `path`, as the holder wrote it: `pid 123 (release) since ...`."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {int(info['pid'])} ({info['command']}) since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):  # written this instant, or by a newer one
        return "another boxsmith run"


@contextlib.contextmanager
def hold(settings: Settings, command: str, *, err: TextIO | None = None) -> Iterator[None]:
    """Hold the project lock of `settings` while the block runs.

    Args:
        settings: the project (its state folder holds the lock file).
        command: what this run is, for a waiting run's message (`release`, `publish`, ...).
        err: where the message about waiting goes (default: nowhere).

    Raises:
        LockBusy: another process holds it and `settings.no_wait` is set.
    """
    path = settings.state_dir / LOCK_FILE
    shown = settings.display(path)
    held = _entry(path)
    if not held.mutex.acquire(blocking=not settings.no_wait):
        raise _busy(shown, "another thread of this process")
    try:
        if held.depth == 0:
            held.fd = _take(path, shown, command, settings.no_wait, err)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                os.close(held.fd)  # closing the last descriptor lets go of the flock
                held.fd = -1
    finally:
        held.mutex.release()


def _take(path: Path, shown: str, command: str, no_wait: bool, err: TextIO | None) -> int:
    """Open and flock the lock file (waiting unless `no_wait`), then sign it; the descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(path)
            if no_wait:
                raise _busy(shown, who) from None
            if err is not None:  # at once, also under -q: the command may wait a long time
                say_now(
                    err,
                    f"waiting for {who} to finish: it holds this project's lock ({shown}); "
                    "Ctrl-C stops waiting\n",
                )
                err.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        info = json.dumps({"pid": os.getpid(), "command": command, "since": since})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (info + "\n").encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _busy(shown: str, who: str) -> LockBusy:
    return LockBusy(
        f"{who} holds this project's lock ({shown}); --no-wait (BOXSMITH_NO_WAIT) refuses to wait",
        "wait for that run to finish (or stop it) and run again, or drop --no-wait to wait "
        "for it; the lock goes with its process, so there is nothing to delete",
    )
