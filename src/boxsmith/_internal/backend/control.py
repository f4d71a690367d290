"""Start, find, stop and reset the local backend of a data folder from another process.

What the rest of boxsmith uses to reach the backend (publish's `local` target, the `backend`
command): `ensure_running` attaches to the backend of a data folder or starts one in the background;
`status`, `stop` and `reset` act on it. The server itself is `boxsmith._internal.backend.server`;
this module only spawns it (`python -m boxsmith backend serve`), never imports it.

One data folder has one backend: a command that finds the backend stopped starts it while
holding `start.lock`, so a second command starting it at the same time waits, then attaches to
the server the first one started (its port, whatever it asked for).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boxsmith._internal.backend.datadir import (
    KEY_FILE,
    LOCK_FILE,
    LOG_FILE,
    OWN_FILES,
    START_LOCK,
    UPLOADS,
    BackendUnavailable,
    acquire,
    api_key,
    backend_id,
    lock_held,
    make_private,
    open_log,
    pid_alive,
    read_info,
)
from boxsmith._internal.backend.state_file import check_state, has_backend_tables
from boxsmith._internal.extras import missing, not_installed
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = [
    "DEFAULT_PORT",
    "ResetDone",
    "ensure_running",
    "env_lines",
    "healthy",
    "reset",
    "status",
    "stop",
]

DEFAULT_PORT = 49990


def env_lines(url: str, key: str) -> list[str]:
    """The lines a shell evaluates to point the e2b SDK at the backend."""
    return [
        f"export E2B_API_URL={url}",
        f"export E2B_SANDBOX_URL={url}",
        f"export E2B_API_KEY={key}",
    ]


def healthy(url: str, timeout: float = 1.0) -> bool:
    """Whether the backend at `url` answers its `/health`."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def ensure_running(
    settings: Settings, folder: Path, *, port: int | None = None, wait: float = 30.0
) -> tuple[str, str, bool]:
    """(url, api key, started): the running backend of `folder`, started detached if needed.

    `port` None means DEFAULT_PORT, or any free port when another process (say the backend of
    another checkout) has that one; a `port` asked for must be free (BackendUnavailable). When
    another command starts the backend at the same time, this one waits for that server and
    returns it (started False), whatever port it took.

    Raises:
        UsageError: the `backend` extra is not installed (exit 2, its pip hint).
        StateDamaged: the backend's state file is damaged (`boxsmith backend reset`).
        BackendUnavailable: it did not start, or did not answer within `wait` seconds.
    """
    info = read_info(folder)
    if info is not None and healthy(str(info["url"])):
        return str(info["url"]), api_key(folder), False
    absent = not_installed("backend")
    if absent is not None:  # the server would die at its first import, saying so in its log
        raise missing(f"the local backend cannot start: no module named {absent!r}", ["backend"])
    make_private(folder)
    check_state(folder)  # said here, not through the log of a server that did not start
    deadline = time.monotonic() + wait
    start_lock = acquire(folder / START_LOCK, wait=wait)
    if start_lock is None:
        raise BackendUnavailable(
            f"another boxsmith command has been starting the backend of {folder} for {wait:g}s",
            f"see {folder / LOG_FILE}",
        )
    try:
        child: int | None = None
        while time.monotonic() < deadline:
            info = read_info(folder)
            if info is not None and healthy(str(info["url"])):
                return str(info["url"]), api_key(folder), info.get("pid") == child
            if lock_held(folder):
                pass  # a server starts or stops (ours, or a `serve` in the foreground): wait
            elif child is None:
                child = _spawn(settings, folder, _free(port))
            elif not pid_alive(child):
                raise _did_not_start(folder)
            time.sleep(0.1)
    finally:
        os.close(start_lock)
    raise BackendUnavailable(
        f"the backend did not answer within {wait:g}s", f"see {folder / LOG_FILE}"
    )


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # as the server binds: connections of a backend that just stopped (TIME_WAIT) do not
        # make the port busy, a listener does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free(port: int | None) -> int:
    """`port` when it is free (BackendUnavailable when not); for None the default or any."""
    if port is None:
        return DEFAULT_PORT if _port_free(DEFAULT_PORT) else _any_free_port()
    if not _port_free(port):
        raise BackendUnavailable(
            f"port {port} on 127.0.0.1 is in use by another process",
            "stop that process, or pick a free port (--port, BOXSMITH_BACKEND_PORT)",
        )
    return port


def _spawn(settings: Settings, folder: Path, port: int) -> int:
    """Start `backend serve` in the background; its pid."""
    command = [
        sys.executable,
        "-m",
        "boxsmith",
        "-C",
        str(settings.root),
        "backend",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(folder),
    ]
    with open_log(folder) as handle:
        # `sh` starts the server in the background, says its pid and exits at once: the server
        # is nobody's child here (init reaps it), so it outlives this process as no zombie.
        done = subprocess.run(
            # its stdout not our pipe, or reading the pid would wait for the server to end
            ["sh", "-c", 'exec "$@" >/dev/null & echo $!', "sh", *command],
            stdout=subprocess.PIPE,
            stderr=handle,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            check=True,
        )
    return int(done.stdout.decode().strip())


def _did_not_start(folder: Path) -> BackendUnavailable:
    log = folder / LOG_FILE
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
    return BackendUnavailable("the backend did not start: " + " / ".join(tail), f"see {log}")


def stop(folder: Path, *, timeout: float = 20.0) -> bool:
    """SIGTERM the running backend and wait for it; False when none runs (`read_info`: only
    the pid of the server holding the folder's lock is ever signalled)."""
    info = read_info(folder)
    if info is None:
        return False
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    raise BackendUnavailable(
        f"the backend (pid {pid}) did not stop within {timeout:g}s", f"kill -9 {pid}"
    )


def status(folder: Path) -> dict[str, Any]:
    """What `server.json` says of the running backend of `folder`, with `running` and whether
    it answers (`healthy`).

    Raises:
        BackendUnavailable: no backend runs for `folder`.
    """
    info = read_info(folder)
    if info is None:
        raise BackendUnavailable(
            f"no backend runs for {folder}", "start one: `boxsmith backend serve --detach`"
        )
    return {"running": True, "healthy": healthy(str(info["url"])), **info}


@dataclass(frozen=True)
class ResetDone:
    """What `reset` did: whether a server was stopped, how many containers and images went."""

    stopped: bool
    containers: int
    images: int


def reset(
    settings: Settings, folder: Path, *, confirm: Callable[[Path], None] | None = None
) -> ResetDone:
    """Stop the backend of `folder`, remove its containers and images (label
    `dev.boxsmith.backend=<its id>`), delete the files it keeps in `folder` (nothing else).

    `confirm` is called once `folder` is shown to be a backend's, before anything changes; it
    raises to cancel.

    Raises:
        UsageError: `folder` is not shown to be a backend's data folder (`_check_resettable`),
            or `confirm` refused (exit 2).
        BackendUnavailable: the backend does not stop, or a server holds the folder (exit 3).
    """
    # docker's client and the sandbox code (through reconcile) take over 100 ms to import:
    # only reset needs them
    from boxsmith._internal.backend.reconcile import remove_backend_objects
    from boxsmith._internal.docker.client import Engine

    _check_resettable(settings, folder)
    if confirm is not None:
        confirm(folder)
    stopped = stop(folder)
    lock = acquire(folder / LOCK_FILE, wait=10.0)  # no server starts while this runs
    if lock is None:
        raise BackendUnavailable(
            f"a backend process still holds {folder} (starting, or not stopping)",
            f"see {folder / LOG_FILE}; stop that process, then reset again",
        )
    try:
        with Engine() as engine:
            containers, images = remove_backend_objects(engine, backend_id(folder))
        for name in OWN_FILES:
            if name != LOCK_FILE:
                (folder / name).unlink(missing_ok=True)
        uploads = folder / UPLOADS
        if uploads.is_dir() and not uploads.is_symlink():
            shutil.rmtree(uploads)
        (folder / LOCK_FILE).unlink(missing_ok=True)
    finally:
        os.close(lock)
    return ResetDone(stopped, containers, images)


# the key the backend makes (`datadir.api_key`), or the one older versions made
_KEY_FORM = re.compile(rb"e2b_(?:local_)?[0-9a-f]{40}")


def _check_resettable(settings: Settings, folder: Path) -> None:
    """UsageError unless `folder` is shown to be a backend's data folder before anything in it
    is deleted: a real folder (no symlink) holding a key of the form the backend makes (on its
    first start, so it proves a folder whose state file is damaged, what reset is for) or a
    state file with the backend's tables; and none that holds a project (the project root, one
    with `.git` or the specs folder), nor $HOME or above."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise UsageError(f"{folder} does not exist: there is no backend to reset", "") from None
    where = "pass the folder the backend serves from (--data-dir, BOXSMITH_BACKEND_DIR)"
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{folder} is not a folder: there is no backend to reset", where)
    if not (_key_of_form(folder) or has_backend_tables(folder)):
        raise UsageError(
            f"{folder} does not look like a backend's data folder (no {KEY_FILE} of the form "
            "e2b_<40 hex digits> or e2b_local_<40 hex digits>, no state file with the backend's "
            "tables)",
            where,
        )
    held = _project_folder(settings, folder)
    if held:  # a backend's files there or not: what else it holds is the user's
        raise UsageError(f"refusing to reset {folder}: it is {held}", where)


def _project_folder(settings: Settings, folder: Path) -> str | None:
    """What makes `folder` one reset never clears, or None."""
    folder = folder.resolve()
    home = Path.home().resolve()
    if folder == home or folder in home.parents:
        return "your home folder or above it"
    root = settings.root.resolve()
    if folder == root or folder in root.parents:
        return "the project's root or above it"
    if os.path.lexists(folder / ".git"):
        return "a git checkout (it holds .git)"
    specs = settings.specs_dir.resolve()
    if folder == specs or folder in specs.parents:
        return "the specs folder or holds it"
    return None


def _key_of_form(folder: Path) -> bool:
    key = _own_bytes(folder / KEY_FILE) or b""
    return _KEY_FORM.fullmatch(key.strip()) is not None


def _own_bytes(path: Path) -> bytes | None:
    """The bytes of a regular file (no symlink followed), or None."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        return path.read_bytes()
    except OSError:
        return None
