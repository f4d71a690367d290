"""The backend's state file (`state.sqlite3` in its data folder) as seen from outside a
running backend: its tables, whether it is damaged, whether it is a backend's, which builds
are ready.

A damaged file (truncated, overwritten, replaced or removed while the backend runs) raises
`StateDamaged` (exit 3, naming `boxsmith backend reset`): at start (`check_state`, a quick
check), and in a running backend from the first request that finds it so
(`boxsmith._internal.backend.store`). Readers open it read-only and never create it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from boxsmith.errors import BoxsmithError

__all__ = [
    "SCHEMA",
    "STATE_FILE",
    "StateDamaged",
    "check_state",
    "damage",
    "file_problem",
    "has_backend_tables",
    "ready_builds",
    "ready_images",
    "tag_rows",
]

STATE_FILE = "state.sqlite3"
RESET_HINT = (
    "run `boxsmith backend reset` (it stops the backend, removes its sandboxes and images and "
    "clears its data folder; the next publish publishes every template again)"
)
_MAGIC = b"SQLite format 3\0"
# The backend's tables, made when a backend first opens the file (`Store`).
SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS builds (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    image TEXT NOT NULL DEFAULT '',
    cpu_count INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    start_cmd TEXT,
    ready_cmd TEXT,
    user TEXT NOT NULL DEFAULT 'user',
    workdir TEXT NOT NULL DEFAULT '/home/user',
    reason TEXT,
    reason_step TEXT,
    tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS build_logs (
    build_id TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    step TEXT,
    PRIMARY KEY (build_id, seq)
);
CREATE TABLE IF NOT EXISTS tags (
    template_id TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    build_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (template_id, tag)
);
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL,
    build_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    container_id TEXT NOT NULL,
    metadata TEXT NOT NULL,
    started_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    cpu_count INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    user TEXT NOT NULL,
    workdir TEXT NOT NULL,
    state TEXT NOT NULL
);
"""


class StateDamaged(BoxsmithError):
    """The backend's state file is not a database any more (exit 3). The message says how to
    recover, without host paths (a running backend answers it to clients)."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"the local backend's state (state.sqlite3 in its data folder) {problem}; {RESET_HINT}",
            "`boxsmith backend reset` (add --data-dir when the backend is not the project's)",
        )


def damage(exc: sqlite3.Error) -> StateDamaged | None:
    """StateDamaged for SQLite's answer to a damaged file ("file is not a database", "database
    disk image is malformed": DatabaseError itself); None for its subclasses, which mean
    something else (OperationalError: locked, busy, read-only, I/O; IntegrityError; a bug)."""
    return StateDamaged(f"is damaged ({exc})") if type(exc) is sqlite3.DatabaseError else None


def file_problem(path: Path, identity: tuple[int, int] | None) -> str | None:
    """What is wrong with the file itself, seen without SQLite: gone, replaced, too short or
    not SQLite's. SQLite keeps serving its cache and WAL for a while when the file under it is
    truncated or overwritten, so a running backend would answer from state it can no longer
    write; this check, a stat and a 16-byte read, notices first."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            head = handle.read(len(_MAGIC))
    except FileNotFoundError:
        return "was removed while the backend ran"
    except OSError:
        return None  # unreadable for another reason: SQLite says what
    if identity is not None and (info.st_dev, info.st_ino) != identity:
        return "was replaced while the backend ran"
    if info.st_size == 0:
        return None  # new, or everything still in the WAL
    if info.st_size < 512 or head != _MAGIC:  # 512: SQLite's smallest page
        return f"is damaged (not an SQLite database: {info.st_size} bytes)"
    return None


def check_state(folder: Path) -> None:
    """Raise StateDamaged when the state file of data folder `folder` is damaged (a quick
    check); a missing, locked or otherwise unreadable file passes (SQLite says more later)."""
    path = folder / STATE_FILE
    if not path.is_file():
        return
    problem = file_problem(path, None)
    if problem:
        raise StateDamaged(problem)
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            (result,) = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.Error as exc:
        damaged = damage(exc)
        if damaged:
            raise damaged from exc
        return
    if result != "ok":
        raise StateDamaged(f"is damaged ({result})")


def has_backend_tables(folder: Path) -> bool:
    """Whether data folder `folder` holds a state file with the backend's tables (templates,
    builds, sandboxes), opened read-only; False for none, another program's or a damaged one."""
    path = folder / STATE_FILE
    if not path.is_file() or path.is_symlink():
        return False
    try:
        rows = _query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    except sqlite3.Error:
        return False
    return {"templates", "builds", "sandboxes"} <= {str(name) for (name,) in rows}


def ready_images(folder: Path) -> dict[str, str] | None:
    """{build id: image id} of the finished builds of the backend of data folder `folder`,
    read without starting it.

    Empty when it never ran, its data was deleted or its state file is damaged (the backend
    cannot serve those builds: their versions are published again once it is reset). None
    when the file cannot be read for another reason (locked by a writer for longer than 5 s,
    no permission): unknown, so the publish records are trusted.
    """
    path = folder / STATE_FILE
    if not path.is_file():
        return {}
    if file_problem(path, None):
        return {}
    try:
        rows = _query(path, "SELECT id, image FROM builds WHERE status = 'ready'")
    except sqlite3.Error as exc:
        return {} if damage(exc) else None
    return {str(build): str(image) for build, image in rows}


def ready_builds(folder: Path) -> frozenset[str] | None:
    """The ids of `ready_images`."""
    images = ready_images(folder)
    return None if images is None else frozenset(images)


def tag_rows(folder: Path) -> list[tuple[str, str, str]]:
    """(template id, tag, build id) of every tag of the backend of data folder `folder`, read
    without starting it; empty when it never ran or its state cannot be read (locked, damaged,
    not a backend's)."""
    path = folder / STATE_FILE
    if not path.is_file() or file_problem(path, None):
        return []
    try:
        rows = _query(path, "SELECT template_id, tag, build_id FROM tags ORDER BY tag")
    except sqlite3.Error:
        return []
    return [(str(template), str(tag), str(build)) for template, tag, build in rows]


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """The rows of `sql` on state file `path`, opened read-only (a writer holding it longer
    than 5 s: sqlite3.OperationalError)."""
    with contextlib.closing(
        sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
    ) as db:
        return db.execute(sql).fetchall()
