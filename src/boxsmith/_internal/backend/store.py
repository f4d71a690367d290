"""The backend's state in SQLite, as the running backend reads and writes it: templates,
builds and their logs, tags, sandboxes.

One file in the data folder (`state.sqlite3`), so a restart keeps published templates. Every
method opens its own short transaction on a per-thread connection; WAL mode lets the build
threads write logs while requests read them.

Sandbox envVars are not kept: they hold users' secrets, and no sandbox outlives the backend
(`reconcile`). A state file of an older version that kept them in an `env` column has the column
dropped and the freed pages zeroed when it is opened.

A damaged file (`state_file`) raises `StateDamaged` from the first call that finds it so; from
then on every call does, so no build waits forever for a write that cannot happen.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from boxsmith._internal.backend.records import (
    Build,
    LogRow,
    SandboxRow,
    Template,
    build_of,
    from_iso_text,
    iso_text,
    now,
    sandbox_of,
    template_of,
)
from boxsmith._internal.backend.state_file import (
    SCHEMA,
    StateDamaged,
    check_state,
    damage,
    file_problem,
)

__all__ = ["Store"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


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
            damaged = damage(exc)
            if damaged is None:
                raise
            store.damaged = damaged
            raise damaged from exc

    return call


class Store:
    """The SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.damaged: StateDamaged | None = None
        self._local = threading.local()
        self._identity: tuple[int, int] | None = None
        check_state(path.parent)
        try:
            self._connection().executescript(SCHEMA)  # commits on its own
            self._forget_sandbox_env()
        except sqlite3.Error as exc:
            damaged = damage(exc)
            if damaged is None:
                raise
            raise damaged from exc
        info = os.stat(path)
        self._identity = (info.st_dev, info.st_ino)

    def check_file(self) -> None:
        """StateDamaged when the file was found damaged before, or is now (`_file_problem`)."""
        if self.damaged is None:
            problem = file_problem(self.path, self._identity)
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
                        "INSERT INTO templates VALUES (?, ?, ?)",
                        (template_id, name, iso_text(now())),
                    )
                    row = db.execute(
                        "SELECT * FROM templates WHERE id = ?", (template_id,)
                    ).fetchone()
        return None if row is None else template_of(row)

    @_guarded
    def template(self, template_id: str) -> Template | None:
        """The template with this id."""
        row = self._one("SELECT * FROM templates WHERE id = ?", template_id)
        return None if row is None else template_of(row)

    @_guarded
    def templates(self) -> list[Template]:
        """Every template, by name."""
        rows = self._connection().execute("SELECT * FROM templates ORDER BY name").fetchall()
        return [template_of(row) for row in rows]

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
                (build_id, template_id, iso_text(now()), cpu_count, memory_mb, json.dumps(tags)),
            )
        build = self.build(build_id)
        assert build is not None
        return build

    @_guarded
    def build(self, build_id: str) -> Build | None:
        """A build by id."""
        row = self._one("SELECT * FROM builds WHERE id = ?", build_id)
        return None if row is None else build_of(row)

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
        return [build_of(row) for row in rows]

    @_guarded
    def update_build(self, build_id: str, **values: Any) -> None:
        """Set columns of a build (status, image, start_cmd, ready_cmd, user, workdir, ...)."""
        if values.get("status") in ("ready", "error"):
            values.setdefault("finished_at", iso_text(now()))
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
                (build_id, seq, iso_text(when), level, message, step),
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
            LogRow(from_iso_text(r["timestamp"]) or now(), r["level"], r["message"], r["step"])
            for r in rows
        ]

    @_guarded
    def builds(self, status: str) -> list[Build]:
        """The builds in `status` (waiting, building, ready, error)."""
        rows = self._connection().execute("SELECT * FROM builds WHERE status = ?", (status,))
        return [build_of(row) for row in rows.fetchall()]

    @_guarded
    def interrupted_builds(self) -> list[Build]:
        """Builds a previous run left unfinished."""
        rows = (
            self._connection()
            .execute("SELECT * FROM builds WHERE status IN ('waiting', 'building')")
            .fetchall()
        )
        return [build_of(row) for row in rows]

    # -- tags --------------------------------------------------------------------------------

    @_guarded
    def set_tags(self, template_id: str, build_id: str, tags: list[str]) -> None:
        """Point each tag at `build_id`."""
        with self._tx() as db:
            for tag in tags:
                db.execute(
                    "INSERT INTO tags VALUES (?, ?, ?, ?) ON CONFLICT(template_id, tag)"
                    " DO UPDATE SET build_id = excluded.build_id, created_at = excluded.created_at",
                    (template_id, tag, build_id, iso_text(now())),
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
        return [(r["tag"], r["build_id"], from_iso_text(r["created_at"]) or now()) for r in rows]

    @_guarded
    def tagged_build(self, template_id: str, tag: str) -> Build | None:
        """The build a tag points at."""
        row = self._one(
            "SELECT builds.* FROM tags JOIN builds ON builds.id = tags.build_id"
            " WHERE tags.template_id = ? AND tags.tag = ?",
            template_id,
            tag,
        )
        return None if row is None else build_of(row)

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
                    iso_text(row.started_at),
                    iso_text(row.end_at),
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
        return None if row is None else sandbox_of(row)

    @_guarded
    def sandboxes(self, state: str = "running") -> list[SandboxRow]:
        """Sandboxes in `state`, oldest first."""
        rows = (
            self._connection()
            .execute("SELECT * FROM sandboxes WHERE state = ? ORDER BY started_at", (state,))
            .fetchall()
        )
        return [sandbox_of(row) for row in rows]

    @_guarded
    def set_sandbox(self, sandbox_id: str, **values: Any) -> None:
        """Set columns of a sandbox (state, end_at)."""
        for key in ("end_at", "started_at"):
            if isinstance(values.get(key), datetime):
                values[key] = iso_text(values[key])
        columns = ", ".join(f"{key} = ?" for key in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE sandboxes SET {columns} WHERE id = ?", (*values.values(), sandbox_id)
            )


def _template_id() -> str:
    return "t" + uuid.uuid4().hex[:19]
