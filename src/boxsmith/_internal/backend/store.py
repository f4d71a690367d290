"""The backend's state in SQLite: templates, builds and their logs, tags, sandboxes.

One file in the data folder (`state.sqlite3`), so a restart keeps published templates. Every
method opens its own short transaction on a per-thread connection; WAL mode lets the build
threads write logs while requests read them.

Sandbox envVars are not kept: they hold users' secrets, and no sandbox outlives the backend
(`SandboxManager.reconcile`). A state file of an older version that kept them in an `env`
column has the column dropped and the freed pages zeroed when it is opened.

A damaged file (truncated, overwritten, replaced or removed while the backend runs) raises
`StateDamaged` (exit 3, naming `boxsmith backend reset`): when it is opened (a quick check), and
in a running backend from the first request that finds it so; from then on every call does, so
no build waits forever for a write that cannot happen.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from boxsmith.errors import BoxsmithError

__all__ = [
    "STATE_FILE",
    "Build",
    "LogRow",
    "SandboxRow",
    "StateDamaged",
    "Store",
    "Template",
    "check_state",
    "has_backend_tables",
    "now",
    "ready_builds",
    "ready_images",
]

STATE_FILE = "state.sqlite3"
RESET_HINT = (
    "run `boxsmith backend reset` (it stops the backend, removes its sandboxes and images and "
    "clears its data folder; the next publish publishes every template again)"
)
_MAGIC = b"SQLite format 3\0"
_P = ParamSpec("_P")
_R = TypeVar("_R")


class StateDamaged(BoxsmithError):
    """The backend's state file is not a database any more (exit 3). The message says how to
    recover, without host paths (a running backend answers it to clients)."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"the local backend's state (state.sqlite3 in its data folder) {problem}; {RESET_HINT}",
            "`boxsmith backend reset` (add --data-dir when the backend is not the project's)",
        )


def _damage(exc: sqlite3.Error) -> StateDamaged | None:
    """StateDamaged for SQLite's answer to a damaged file ("file is not a database", "database
    disk image is malformed": DatabaseError itself); None for its subclasses, which mean
    something else (OperationalError: locked, busy, read-only, I/O; IntegrityError; a bug)."""
    return StateDamaged(f"is damaged ({exc})") if type(exc) is sqlite3.DatabaseError else None


def _file_problem(path: Path, identity: tuple[int, int] | None) -> str | None:
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
    problem = _file_problem(path, None)
    if problem:
        raise StateDamaged(problem)
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            (result,) = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.Error as exc:
        damaged = _damage(exc)
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
        with contextlib.closing(
            sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error:
        return False
    return {"templates", "builds", "sandboxes"} <= {str(name) for (name,) in rows}


_SCHEMA = """
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
    if _file_problem(path, None):
        return {}
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            rows = db.execute("SELECT id, image FROM builds WHERE status = 'ready'").fetchall()
    except sqlite3.Error as exc:
        return {} if _damage(exc) else None
    return {str(build): str(image) for build, image in rows}


def ready_builds(folder: Path) -> frozenset[str] | None:
    """The ids of `ready_images`."""
    images = ready_images(folder)
    return None if images is None else frozenset(images)


def _guarded(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """`method` of Store, raising StateDamaged once the file is found damaged (and ever after)."""

    @functools.wraps(method)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        store = args[0]
        assert isinstance(store, Store)
        store.check_file()
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            damaged = _damage(exc)
            if damaged is None:
                raise
            store.damaged = damaged
            raise damaged from exc

    return call


def now() -> datetime:
    """The current time, UTC, to the millisecond."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Template:
    """A template: a name (the E2B alias) with builds and tags."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Build:
    """One build of a template."""

    id: str
    template_id: str
    status: str  # waiting | building | ready | error
    created_at: datetime
    finished_at: datetime | None
    image: str
    cpu_count: int
    memory_mb: int
    start_cmd: str | None
    ready_cmd: str | None
    user: str
    workdir: str
    reason: str | None
    reason_step: str | None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One build log entry."""

    timestamp: datetime
    level: str
    message: str
    step: str | None


@dataclass(frozen=True, slots=True)
class SandboxRow:
    """A sandbox as recorded."""

    id: str
    template_id: str
    build_id: str
    alias: str
    container_id: str
    metadata: dict[str, str]
    started_at: datetime
    end_at: datetime
    cpu_count: int
    memory_mb: int
    user: str
    workdir: str
    state: str  # running | killed


class Store:
    """The SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.damaged: StateDamaged | None = None
        self._local = threading.local()
        self._identity: tuple[int, int] | None = None
        check_state(path.parent)
        try:
            self._connection().executescript(_SCHEMA)  # commits on its own
            self._forget_sandbox_env()
        except sqlite3.Error as exc:
            damaged = _damage(exc)
            if damaged is None:
                raise
            raise damaged from exc
        info = os.stat(path)
        self._identity = (info.st_dev, info.st_ino)

    def check_file(self) -> None:
        """StateDamaged when the file was found damaged before, or is now (`_file_problem`)."""
        if self.damaged is None:
            problem = _file_problem(self.path, self._identity)
            if problem:
                self.damaged = StateDamaged(problem)
        if self.damaged is not None:
            raise self.damaged

    def _forget_sandbox_env(self) -> None:
        """Drop the `env` column older versions kept sandbox envVars in, leaving no copy of
        them in the file: secure_delete zeroes what is freed, VACUUM rewrites the rest, and the
        checkpoint empties the WAL."""
        db = self._connection()
        columns = {row["name"] for row in db.execute("PRAGMA table_info(sandboxes)")}
        if "env" not in columns:
            return
        db.execute("PRAGMA secure_delete=ON")
        with self._tx() as tx:
            tx.execute("UPDATE sandboxes SET env = '{}'")
            tx.execute("ALTER TABLE sandboxes DROP COLUMN env")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._connection().execute(sql, args).fetchone()
        return row

    # -- templates ---------------------------------------------------------------------------

    @_guarded
    def template_for_name(self, name: str, *, create: bool = False) -> Template | None:
        """The template with this name; with `create`, made when missing."""
        row = self._one("SELECT * FROM templates WHERE name = ?", name)
        if row is None and create:
            with self._tx() as db:
                row = db.execute("SELECT * FROM templates WHERE name = ?", (name,)).fetchone()
                if row is None:
                    template_id = _template_id()
                    db.execute(
                        "INSERT INTO templates VALUES (?, ?, ?)", (template_id, name, _iso(now()))
                    )
                    row = db.execute(
                        "SELECT * FROM templates WHERE id = ?", (template_id,)
                    ).fetchone()
        return None if row is None else _template(row)

    @_guarded
    def template(self, template_id: str) -> Template | None:
        """The template with this id."""
        row = self._one("SELECT * FROM templates WHERE id = ?", template_id)
        return None if row is None else _template(row)

    @_guarded
    def templates(self) -> list[Template]:
        """Every template, by name."""
        rows = self._connection().execute("SELECT * FROM templates ORDER BY name").fetchall()
        return [_template(row) for row in rows]

    @_guarded
    def delete_template(self, template_id: str) -> None:
        """Forget a template with its builds and tags."""
        with self._tx() as db:
            db.execute("DELETE FROM templates WHERE id = ?", (template_id,))

    # -- builds ------------------------------------------------------------------------------

    @_guarded
    def new_build(
        self, template_id: str, *, cpu_count: int, memory_mb: int, tags: list[str]
    ) -> Build:
        """A build in state `waiting`."""
        build_id = str(uuid.uuid4())
        with self._tx() as db:
            db.execute(
                "INSERT INTO builds (id, template_id, status, created_at, cpu_count, memory_mb,"
                " tags) VALUES (?, ?, 'waiting', ?, ?, ?, ?)",
                (build_id, template_id, _iso(now()), cpu_count, memory_mb, json.dumps(tags)),
            )
        build = self.build(build_id)
        assert build is not None
        return build

    @_guarded
    def build(self, build_id: str) -> Build | None:
        """A build by id."""
        row = self._one("SELECT * FROM builds WHERE id = ?", build_id)
        return None if row is None else _build(row)

    @_guarded
    def template_builds(self, template_id: str) -> list[Build]:
        """Every build of a template, newest first."""
        rows = (
            self._connection()
            .execute(
                "SELECT * FROM builds WHERE template_id = ? ORDER BY created_at DESC, rowid DESC",
                (template_id,),
            )
            .fetchall()
        )
        return [_build(row) for row in rows]

    @_guarded
    def update_build(self, build_id: str, **values: Any) -> None:
        """Set columns of a build (status, image, start_cmd, ready_cmd, user, workdir, ...)."""
        if values.get("status") in ("ready", "error"):
            values.setdefault("finished_at", _iso(now()))
        columns = ", ".join(f"{key} = ?" for key in values)
        with self._tx() as db:
            db.execute(f"UPDATE builds SET {columns} WHERE id = ?", (*values.values(), build_id))

    @_guarded
    def add_log(
        self, build_id: str, when: datetime, level: str, message: str, step: str | None
    ) -> None:
        """Append a log entry to a build."""
        with self._tx() as db:
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM build_logs WHERE build_id = ?", (build_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO build_logs VALUES (?, ?, ?, ?, ?, ?)",
                (build_id, seq, _iso(when), level, message, step),
            )

    @_guarded
    def logs(self, build_id: str, offset: int, limit: int) -> list[LogRow]:
        """Log entries from `offset` on, at most `limit`."""
        rows = (
            self._connection()
            .execute(
                "SELECT * FROM build_logs WHERE build_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (build_id, offset, limit),
            )
            .fetchall()
        )
        return [
            LogRow(_time(r["timestamp"]) or now(), r["level"], r["message"], r["step"])
            for r in rows
        ]

    @_guarded
    def builds(self, status: str) -> list[Build]:
        """The builds in `status` (waiting, building, ready, error)."""
        rows = self._connection().execute("SELECT * FROM builds WHERE status = ?", (status,))
        return [_build(row) for row in rows.fetchall()]

    @_guarded
    def interrupted_builds(self) -> list[Build]:
        """Builds a previous run left unfinished."""
        rows = (
            self._connection()
            .execute("SELECT * FROM builds WHERE status IN ('waiting', 'building')")
            .fetchall()
        )
        return [_build(row) for row in rows]

    # -- tags --------------------------------------------------------------------------------

    @_guarded
    def set_tags(self, template_id: str, build_id: str, tags: list[str]) -> None:
        """Point each tag at `build_id`."""
        with self._tx() as db:
            for tag in tags:
                db.execute(
                    "INSERT INTO tags VALUES (?, ?, ?, ?) ON CONFLICT(template_id, tag)"
                    " DO UPDATE SET build_id = excluded.build_id, created_at = excluded.created_at",
                    (template_id, tag, build_id, _iso(now())),
                )

    @_guarded
    def remove_tags(self, template_id: str, tags: list[str]) -> None:
        """Drop tags (missing ones are ignored)."""
        with self._tx() as db:
            for tag in tags:
                db.execute("DELETE FROM tags WHERE template_id = ? AND tag = ?", (template_id, tag))

    @_guarded
    def tags(self, template_id: str) -> list[tuple[str, str, datetime]]:
        """(tag, build id, created) of a template."""
        rows = (
            self._connection()
            .execute("SELECT * FROM tags WHERE template_id = ? ORDER BY tag", (template_id,))
            .fetchall()
        )
        return [(r["tag"], r["build_id"], _time(r["created_at"]) or now()) for r in rows]

    @_guarded
    def tagged_build(self, template_id: str, tag: str) -> Build | None:
        """The build a tag points at."""
        row = self._one(
            "SELECT builds.* FROM tags JOIN builds ON builds.id = tags.build_id"
            " WHERE tags.template_id = ? AND tags.tag = ?",
            template_id,
            tag,
        )
        return None if row is None else _build(row)

    # -- sandboxes ---------------------------------------------------------------------------

    @_guarded
    def add_sandbox(self, row: SandboxRow) -> None:
        """Record a running sandbox."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO sandboxes (id, template_id, build_id, alias, container_id, metadata,"
                " started_at, end_at, cpu_count, memory_mb, user, workdir, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.template_id,
                    row.build_id,
                    row.alias,
                    row.container_id,
                    json.dumps(row.metadata),
                    _iso(row.started_at),
                    _iso(row.end_at),
                    row.cpu_count,
                    row.memory_mb,
                    row.user,
                    row.workdir,
                    row.state,
                ),
            )

    @_guarded
    def sandbox(self, sandbox_id: str) -> SandboxRow | None:
        """A sandbox by id (running or not)."""
        row = self._one("SELECT * FROM sandboxes WHERE id = ?", sandbox_id)
        return None if row is None else _sandbox(row)

    @_guarded
    def sandboxes(self, state: str = "running") -> list[SandboxRow]:
        """Sandboxes in `state`, oldest first."""
        rows = (
            self._connection()
            .execute("SELECT * FROM sandboxes WHERE state = ? ORDER BY started_at", (state,))
            .fetchall()
        )
        return [_sandbox(row) for row in rows]

    @_guarded
    def set_sandbox(self, sandbox_id: str, **values: Any) -> None:
        """Set columns of a sandbox (state, end_at)."""
        for key in ("end_at", "started_at"):
            if isinstance(values.get(key), datetime):
                values[key] = _iso(values[key])
        columns = ", ".join(f"{key} = ?" for key in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE sandboxes SET {columns} WHERE id = ?", (*values.values(), sandbox_id)
            )


def _template_id() -> str:
    return "t" + uuid.uuid4().hex[:19]


def _template(row: sqlite3.Row) -> Template:
    return Template(row["id"], row["name"], _time(row["created_at"]) or now())


def _build(row: sqlite3.Row) -> Build:
    return Build(
        id=row["id"],
        template_id=row["template_id"],
        status=row["status"],
        created_at=_time(row["created_at"]) or now(),
        finished_at=_time(row["finished_at"]),
        image=row["image"],
        cpu_count=row["cpu_count"],
        memory_mb=row["memory_mb"],
        start_cmd=row["start_cmd"],
        ready_cmd=row["ready_cmd"],
        user=row["user"],
        workdir=row["workdir"],
        reason=row["reason"],
        reason_step=row["reason_step"],
        tags=list(json.loads(row["tags"])),
    )


def _sandbox(row: sqlite3.Row) -> SandboxRow:
    metadata: Mapping[str, str] = json.loads(row["metadata"])
    return SandboxRow(
        id=row["id"],
        template_id=row["template_id"],
        build_id=row["build_id"],
        alias=row["alias"],
        container_id=row["container_id"],
        metadata=dict(metadata),
        started_at=_time(row["started_at"]) or now(),
        end_at=_time(row["end_at"]) or now(),
        cpu_count=row["cpu_count"],
        memory_mb=row["memory_mb"],
        user=row["user"],
        workdir=row["workdir"],
        state=row["state"],
    )
