"""The backend's data folder: where it is, what it keeps there, who may read it, which server
holds it.

The data folder (default `.boxsmith/backend` in the project) holds the API key (`api_key`, made on
first start as `e2b_<40 hex digits>`, the form every e2b SDK line accepts; a key file of the form
older versions made, `e2b_local_<40 hex digits>`, is kept and served; either form is what `boxsmith
backend reset` trusts), the state (`state.sqlite3` and SQLite's `-wal`/`-shm`), build-context
uploads (`uploads/`), the log of a backend started in the background (`server.log`) and, while the
server runs, `server.json` (pid, URL, limits). All of it is the owner's only: the folders 0700, the
files 0600. `make_private` creates the folder that way (and any parent it has to create, such as
`.boxsmith`) and, at every start, puts back those modes on what the backend keeps there (a folder
made by an older version, or loosened by hand), never following a symlink and never touching what
another user owns; the serving process runs with umask 077 (`owner_only_umask`), so files it creates
later are private too.

One data folder has one backend: the server holds an exclusive lock (flock) on `server.lock` in
the folder for its whole life (the kernel releases it when the process ends, kill -9 too) and
writes its pid into it. `server.json` counts only while its pid is the lock holder's, runs and
runs `backend serve` (`read_info`), and only the server holding the lock writes or removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from boxsmith.errors import BoxsmithError

__all__ = [
    "KEY_FILE",
    "LOCK_FILE",
    "LOG_FILE",
    "OWN_FILES",
    "START_LOCK",
    "UPLOADS",
    "BackendInfo",
    "BackendUnavailable",
    "acquire",
    "api_key",
    "backend_id",
    "data_dir",
    "forget_info",
    "lock_held",
    "make_private",
    "open_log",
    "owner_only_umask",
    "pid_alive",
    "read_info",
    "remove_info",
    "write_info",
]

SERVER_FILE = "server.json"
KEY_FILE = "api_key"
LOG_FILE = "server.log"
UPLOADS = "uploads"
LOCK_FILE = "server.lock"  # held by the running server
START_LOCK = "start.lock"  # held by a command starting one in the background
# What the backend keeps in its data folder besides uploads/: the only files it chmods there
# (and the only ones `boxsmith backend reset` deletes).
OWN_FILES = (
    KEY_FILE,
    KEY_FILE + ".tmp",
    SERVER_FILE,
    LOG_FILE,
    LOCK_FILE,
    START_LOCK,
    *(f"state.sqlite3{suffix}" for suffix in ("", "-wal", "-shm", "-journal")),
)


class BackendUnavailable(BoxsmithError):
    """The local backend is not running, or does not answer (exit 3)."""


def data_dir(root: Path, explicit: str | None = None) -> Path:
    """`--data-dir`, else BOXSMITH_BACKEND_DIR, else `<project>/.boxsmith/backend`; a relative
    path is relative to the project root `root`, like every path setting (`boxsmith.config`)."""
    raw = explicit or os.environ.get("BOXSMITH_BACKEND_DIR") or ".boxsmith/backend"
    return (root / raw).resolve()


def backend_id(folder: Path) -> str:
    """The id of the backend of data folder `folder`: a label on every image and container it
    makes, so runs of other backends on the same engine never touch them."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


def api_key(folder: Path) -> str:
    """The backend's API key, made (mode 0600) on first use."""
    path = folder / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="utf-8").strip()
    _mkdir_private(folder)
    key = "e2b_" + secrets.token_hex(20)  # some SDK lines check `^e2b_[0-9a-f]+$` themselves
    with _private_file(path.with_suffix(".tmp"), os.O_TRUNC) as handle:
        handle.write(key.encode() + b"\n")
    os.replace(path.with_suffix(".tmp"), path)
    return key


def make_private(folder: Path) -> None:
    """Create the data folder (mode 0700, so are the parents it creates) or make it private
    again: 0700 on it and `uploads/`, 0600 on the files the backend keeps there.

    Raises:
        BackendUnavailable: another user owns the folder, or it cannot be made (exit 3).
    """
    try:
        _mkdir_private(folder)
        mine = _restrict(folder, 0o700, stat.S_ISDIR)
        if mine:
            for name in OWN_FILES:
                _restrict(folder / name, 0o600, stat.S_ISREG)
            uploads = folder / UPLOADS
            if _restrict(uploads, 0o700, stat.S_ISDIR):
                with os.scandir(uploads) as entries:
                    for entry in entries:
                        _restrict(Path(entry.path), 0o600, stat.S_ISREG)
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot make the backend's data folder {folder} private: {exc.strerror or exc}",
            "make sure you may write there, or use another (--data-dir, BOXSMITH_BACKEND_DIR)",
        ) from exc
    if not mine:
        raise BackendUnavailable(
            f"the backend's data folder {folder} is not a folder of yours",
            "use a data folder you own (--data-dir or BOXSMITH_BACKEND_DIR)",
        )


def _mkdir_private(folder: Path) -> None:
    """`folder` and the parents it lacks, each created 0700; existing ones are left alone."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile: another start won
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # whatever the umask


def _restrict(path: Path, mode: int, kind: Callable[[int], bool]) -> bool:
    """Set `mode` on `path` when it is of `kind` and ours; False (nothing changed) for a missing
    path, a symlink (never followed) or another user's. The folder is the owner's only by the
    time its entries are looked at, so nobody can swap one for a symlink in between."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not kind(info.st_mode) or info.st_uid != os.getuid():
        return False
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
    return True


@contextlib.contextmanager
def _private_file(path: Path, flags: int) -> Iterator[BinaryIO]:
    """`path` open for writing, mode 0600 whether it is new or not; never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle


def open_log(folder: Path) -> BinaryIO:
    """The log of a backend started in the background, `folder`/server.log (0600), appended."""
    fd = os.open(folder / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    """Files and folders this process creates meanwhile (SQLite's WAL and SHM, uploads, temp
    files) are the owner's only, whoever creates them."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def acquire(path: Path, *, wait: float) -> int | None:
    """An fd holding an exclusive flock on `path` (created 0600), or None when another process
    still holds it after `wait` seconds. Closing the fd (or the process ending) releases it.

    The lock is on the file at `path` when this returns: one that was removed and made again
    meanwhile (`boxsmith backend reset` removes them) is locked anew, never the old one."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
            continue
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def lock_held(folder: Path) -> bool:
    """Whether a server holds the folder's lock (runs, starts or stops), probed without
    waiting: a shared lock for an instant, which fails while the server's exclusive one is
    held."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class BackendInfo(dict[str, Any]):
    """`server.json`: pid, url, started."""


def write_info(folder: Path, info: dict[str, Any]) -> None:
    """Write `server.json` (0600): only the server holding the folder's lock does."""
    with _private_file(folder / SERVER_FILE, os.O_TRUNC) as handle:
        handle.write(json.dumps(info).encode() + b"\n")


def remove_info(folder: Path) -> None:
    """Remove `server.json` whoever wrote it: a server that has just taken the folder's lock
    drops the one a killed server left, at once."""
    (folder / SERVER_FILE).unlink(missing_ok=True)


def forget_info(folder: Path, pid: int) -> None:
    """Remove `server.json` if it names `pid` (a stopping server's own; checked anyway, so no
    path removes another server's file)."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        data = json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))
        if int(data.get("pid", 0)) == pid:
            (folder / SERVER_FILE).unlink()


def read_info(folder: Path) -> BackendInfo | None:
    """The running server's info, or None when none runs: a file left by a server that was
    killed (its pid gone, or now another process's: the folder lock is free) is ignored."""
    try:
        data = json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))
        pid = int(data.get("pid", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if pid != _holder(folder) or not _is_server(pid) or not pid_alive(pid):
        return None
    return BackendInfo(data) if lock_held(folder) else None


def _holder(folder: Path) -> int | None:
    """The pid the server holding the folder's lock wrote into it."""
    try:
        return int((folder / LOCK_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _is_server(pid: int) -> bool:
    """Whether `pid` runs `backend serve` (a pid the kernel gave to another process since does
    not); True where there is no procfs to tell."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone, or no procfs
    except OSError:
        return True
    return b"backend" in argv and b"serve" in argv


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, ValueError, OverflowError):
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no procfs: trust kill(0)
    return fields[0] != "Z"
