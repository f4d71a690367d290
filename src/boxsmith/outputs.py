"""Plan and apply writes to the generated folder, atomically, reporting what each write does.

The generated folder is owned by boxsmith: it holds exactly the rendered versions of the current
specs, every published version (kept even after its spec moved on) and index.json. Anything else
there is removed by `render` and reported as drift by `check`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = ["Action", "Change", "DesiredFile", "apply", "plan"]


class Action(StrEnum):
    """What a write does to one file."""

    CREATE = "create"
    UPDATE = "update"
    IDENTICAL = "identical"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class DesiredFile:
    """Bytes and executable bit a path must have."""

    content: bytes
    executable: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change, relative to the generated folder."""

    action: Action
    rel: str
    old: bytes | None
    new: bytes | None
    executable: bool = False


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def plan(
    root: Path,
    desired: Mapping[str, DesiredFile],
    keep: Iterable[str] = (),
    scope: Iterable[str] | None = None,
) -> list[Change]:
    """Compare `desired` (paths relative to `root`) with the disk.

    Args:
        root: the generated folder.
        desired: every file that must exist, with its bytes.
        keep: folder prefixes never deleted (published versions no spec renders any more).
        scope: folder prefixes this run may delete in (None: everywhere under root).
    """
    changes: list[Change] = []
    for rel in sorted(desired):
        want = desired[rel]
        path = root / rel
        if not path.is_file():
            changes.append(Change(Action.CREATE, rel, None, want.content, want.executable))
            continue
        old = path.read_bytes()
        same = old == want.content and _is_executable(path) == want.executable
        action = Action.IDENTICAL if same else Action.UPDATE
        changes.append(Change(action, rel, old, want.content, want.executable))
    kept = tuple(k.rstrip("/") + "/" for k in keep)
    scoped = None if scope is None else tuple(s.rstrip("/") + "/" for s in scope)
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_dir() or rel in desired or rel.startswith(kept):
                continue
            if scoped is not None and not rel.startswith(scoped):
                continue
            changes.append(Change(Action.DELETE, rel, path.read_bytes(), None))
    return changes


def write_atomic(path: Path, content: bytes, executable: bool = False) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def apply(root: Path, changes: Iterable[Change], last: str | None = None) -> None:
    """Carry out a plan; `last` (the index) is written after everything else, so an interrupted
    run leaves an index that `check` flags rather than one that hides missing files."""
    deferred: list[Change] = []
    for change in changes:
        if change.rel == last:
            deferred.append(change)
            continue
        _apply_one(root, change)
    for change in deferred:
        _apply_one(root, change)


def _apply_one(root: Path, change: Change) -> None:
    path = root / change.rel
    if change.action in (Action.CREATE, Action.UPDATE) and change.new is not None:
        write_atomic(path, change.new, change.executable)
    elif change.action is Action.DELETE:
        path.unlink(missing_ok=True)
        _prune_empty(path.parent, root)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root) and folder.is_dir():
        if any(folder.iterdir()):
            return
        shutil.rmtree(folder)
        folder = folder.parent
