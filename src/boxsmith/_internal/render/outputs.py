"""Plan and apply writes to the generated folder, atomically, reporting what each write does.

The generated folder holds the rendered versions of the current specs, every published version
(kept even after its spec moved on) and index.json. boxsmith deletes only what it wrote: the
files the index records (`owned`). Any other file in a template's folders is `foreign`: never
deleted, reported by `render` and as drift by `check`, for a person to remove. Files beside the
template folders (a README.md, .gitattributes) and what a checkout or a desktop leaves anywhere
(.gitkeep, .DS_Store, the __pycache__/ an `import template` leaves) are not output at all: left
alone and not reported. `claim` refuses a
generated folder that is not boxsmith's to write at all (the project itself, a folder holding the
specs or a repository, a non-empty folder without an index).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from boxsmith.errors import EXIT_INFRA, BoxsmithError, UsageError

__all__ = ["Action", "Change", "DesiredFile", "OutputError", "apply", "claim", "plan"]

# A folder holding only these is as good as empty: a checkout keeps an empty folder this way.
_PLACEHOLDERS = frozenset({".gitkeep", ".keep"})
# Files a checkout or a desktop leaves anywhere: neither boxsmith's nor a person's output.
_LITTER = _PLACEHOLDERS | {".DS_Store", "Thumbs.db", "desktop.ini"}
# Folders Python leaves beside a module it imported (`import template`, template_py = true).
_CACHES = frozenset({"__pycache__"})


class OutputError(BoxsmithError):
    """A file in the generated folder cannot be read, written or removed (permissions, a
    read-only file system, a full disk): exit 3."""

    exit_code = EXIT_INFRA


class Action(StrEnum):
    """What a write does to one file."""

    CREATE = "create"
    UPDATE = "update"
    IDENTICAL = "identical"
    DELETE = "delete"
    FOREIGN = "foreign"  # not written by boxsmith and not rendered: left in place


@dataclass(frozen=True, slots=True)
class DesiredFile:
    """Bytes and executable bit a path must have."""

    content: bytes
    executable: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change, relative to the generated folder.

    `hand_edit`: the file on disk is not what boxsmith last wrote there (set by the caller,
    which knows the recorded hashes), so an update or delete replaces someone's edit.
    """

    action: Action
    rel: str
    old: bytes | None
    new: bytes | None
    executable: bool = False
    hand_edit: bool = False


def plan(
    root: Path,
    desired: Mapping[str, DesiredFile],
    keep: Iterable[str] = (),
    scope: Iterable[str] | None = None,
    *,
    owned: Container[str],
) -> list[Change]:
    """Compare `desired` (paths relative to `root`) with the disk.

    Args:
        root: the generated folder.
        desired: every file that must exist, with its bytes.
        keep: folder prefixes never deleted (published versions no spec renders any more).
        scope: folder prefixes this run may delete in (None: everywhere under root).
        owned: the files boxsmith wrote (recorded in the index); only these are deleted, any
            other file is `foreign`.

    Raises:
        OutputError: a file cannot be read.
    """
    changes: list[Change] = []
    base = os.fspath(root)
    for rel in sorted(desired):
        want = desired[rel]
        path = os.path.join(base, rel)
        try:
            with _translated(base, "read", path):
                old, executable = _read(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            changes.append(Change(Action.CREATE, rel, None, want.content, want.executable))
            continue
        same = old == want.content and executable == want.executable
        action = Action.IDENTICAL if same else Action.UPDATE
        changes.append(Change(action, rel, old, want.content, want.executable))
    kept = tuple(k.rstrip("/") + "/" for k in keep)
    scoped = None if scope is None else tuple(s.rstrip("/") + "/" for s in scope)
    for folder, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if d not in _CACHES]
        prefix = os.path.relpath(folder, base).replace(os.sep, "/")
        for name in names:
            rel = name if prefix == "." else f"{prefix}/{name}"
            if rel in desired or rel.startswith(kept):
                continue
            if rel not in owned and (name in _LITTER or prefix == "."):
                continue  # litter, or beside the template folders (a README): not output
            if scoped is not None and not rel.startswith(scoped):
                continue
            path = os.path.join(folder, name)
            with _translated(base, "read", path):
                old, _executable = _read(path)
            action = Action.DELETE if rel in owned else Action.FOREIGN
            changes.append(Change(action, rel, old, None))
    changes.sort(key=lambda c: (c.action in (Action.DELETE, Action.FOREIGN), c.rel))
    return changes


def _read(path: str) -> tuple[bytes | None, bool]:
    """Bytes and executable bit of the regular file at `path`; None for anything else there (a
    link, a pipe, a device), which is never followed or read.

    Raises:
        FileNotFoundError, NotADirectoryError: nothing there.
        IsADirectoryError: a folder there.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: O_NOFOLLOW refused it
            return None, False
        raise
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            return None, False
        return handle.read(), bool(mode & 0o111)


def write_atomic(path: Path | str, content: bytes, executable: bool = False) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    target = os.fspath(path)
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    _write_into(folder, target, content, executable)


def _write_into(folder: str, target: str, content: bytes, executable: bool) -> None:
    # A fixed temp name per process (not tempfile.mkstemp, which costs ~4x the write itself
    # here); O_EXCL still refuses to write through a file someone else created.
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o755 if executable else 0o644)
    except FileExistsError:  # left by a killed run of a process with our pid
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o755 if executable else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o755 if executable else 0o644)  # whatever the umask
            handle.write(content)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def apply(root: Path, changes: Iterable[Change], last: str | None = None) -> None:
    """Carry out a plan: deletions first (a stale file may stand where a folder must go), then
    writes; `last` (the index) is written after everything else, so an interrupted run leaves
    an index that `check` flags rather than one that hides missing files. Foreign files are
    left alone.

    Raises:
        UsageError: a file stands where a folder must be, a folder where a file must be, or a
            folder on the way is a symbolic link (boxsmith writes only under real folders).
        OutputError: the disk refused (permissions, a read-only file system, a full disk).
    """
    base = os.fspath(root)
    real = os.path.realpath(base)
    made: set[str] = set()
    deferred: list[Change] = []
    writes: list[Change] = []
    for change in changes:
        if change.rel == last:
            deferred.append(change)
        elif change.action is Action.DELETE:
            target = os.path.join(base, change.rel)
            _no_links(base, real, change.rel)
            with _translated(base, "remove", target):
                os.unlink(target)
                _prune_empty(Path(base) / change.rel, Path(base))
        elif change.action in (Action.CREATE, Action.UPDATE):
            writes.append(change)
    for change in (*writes, *deferred):
        _write(base, real, change, made)


def _write(base: str, real: str, change: Change, made: set[str]) -> None:
    target = os.path.join(base, change.rel)
    folder = os.path.dirname(target)
    try:
        with _translated(base, "write", target):
            if folder not in made:  # once per folder, not per file
                _make_folders(base, real, change.rel)
                made.add(folder)
            _write_into(folder, target, change.new or b"", change.executable)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = _file_on_the_way(base, folder) or folder
        raise UsageError(
            f"cannot write {_shown(base, target)}: {_shown(base, blocker)} is a file where a "
            "folder must be",
            f"remove {_shown(base, blocker)} (boxsmith writes everything under "
            f"{_shown(base, base)}/), then render again",
        ) from exc
    except IsADirectoryError as exc:
        raise UsageError(
            f"cannot write {_shown(base, target)}: a folder is in its place",
            f"remove the folder {_shown(base, target)}, then render again",
        ) from exc


def _make_folders(base: str, real: str, rel: str) -> None:
    """Create the folders of `rel` below `base` one level at a time, refusing (`_no_links`)
    before the first step through a symbolic link: nothing is made where a link leads."""
    os.makedirs(base, exist_ok=True)  # the generated folder itself (claimed already)
    path = base
    for part in filter(None, os.path.dirname(rel).split("/")):
        path = os.path.join(path, part)
        if os.path.islink(path):
            break
        with contextlib.suppress(FileExistsError):  # a file there: the write names it
            os.mkdir(path)
    _no_links(base, real, rel)


def _no_links(base: str, real: str, rel: str) -> None:
    """Refuse to write or delete through a symbolic link to a folder below the generated
    folder: it could lead anywhere (the generated folder itself may be a link)."""
    parent = os.path.dirname(rel)
    if not parent:
        return
    if os.path.realpath(os.path.join(base, parent)) != os.path.join(real, parent):
        link = next(
            (
                p
                for p in _ancestors(base, parent)
                if os.path.islink(p) or not os.path.lexists(p)  # lexists: raced away
            ),
            os.path.join(base, parent),
        )
        raise UsageError(
            f"cannot write or remove {_shown(base, os.path.join(base, rel))}: "
            f"{_shown(base, link)} is a symbolic link",
            f"replace {_shown(base, link)} with a real folder (boxsmith writes only inside "
            f"{_shown(base, base)}/)",
        )


def _ancestors(base: str, parent: str) -> Iterator[str]:
    path = base
    for part in parent.split("/"):
        path = os.path.join(path, part)
        yield path


@contextlib.contextmanager
def _translated(base: str, verb: str, path: str) -> Iterator[None]:
    """OSErrors the user can fix (permissions, read-only or full disks) -> OutputError.

    Missing files and files or folders in the wrong place pass through: callers plan for them.
    """
    try:
        yield
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError):
        raise
    except OSError as exc:
        culprit = exc.filename if isinstance(exc.filename, str) else path
        if culprit.endswith(".tmp"):  # our temp file: the folder is what refused it
            culprit = os.path.dirname(culprit)
        shown = _shown(base, culprit)
        if exc.errno in (errno.EACCES, errno.EPERM):
            problem = f"permission denied on {shown} ({exc.strerror})"
            able = "readable" if verb == "read" else "writable"
            hint = (
                f"make {shown} {able} for this user (see `ls -ld {shown}` and, for the "
                f"immutable flag, `lsattr -d {shown}`), then run again"
            )
        elif exc.errno == errno.EROFS:
            problem = f"{shown} is on a read-only file system"
            hint = "remount it read-write, or point --generated at a writable folder"
        else:
            problem = f"{shown}: {exc.strerror or exc}"
            hint = "fix the disk problem (space, quota), then run again"
        raise OutputError(f"cannot {verb} {_shown(base, path)}: {problem}", hint) from exc


def _file_on_the_way(base: str, folder: str) -> str | None:
    """The first path from `base` down to `folder` that exists and is not a folder."""
    path = base
    for part in os.path.relpath(folder, base).split(os.sep):
        path = os.path.join(path, part)
        if os.path.lexists(path) and not os.path.isdir(path):
            return path
    return None


def _shown(base: str, path: str) -> str:
    """`path` as users see it: from the folder that holds the generated folder (the project)."""
    return os.path.relpath(path, os.path.dirname(base)).replace(os.sep, "/")


def _prune_empty(path: Path, root: Path) -> None:
    """Remove the folders above a deleted file that are left empty, up to the root."""
    folder = path.parent
    while folder != root and folder.is_relative_to(root) and folder.is_dir():
        if any(folder.iterdir()):
            return
        folder.rmdir()
        folder = folder.parent


def claim(root: Path, *, project: Path, specs: Path, index: str, shown: str) -> None:
    """Refuse a generated folder that is not boxsmith's to write in.

    Refused, after resolving symbolic links: the project root or any folder above it, the home
    folder or above, a folder holding the specs folder or a `.git`, something that is not a
    folder, and a non-empty folder without boxsmith's `index` (only `.gitkeep` does not count).
    A folder outside the project is fine when it passes the same rules.

    Raises:
        UsageError: with the reason and what to do.
    """
    real = Path(os.path.realpath(root))
    elsewhere = (
        "point --generated (or BOXSMITH_GENERATED_DIR, or generated_dir in [tool.boxsmith]) "
        "at a folder of its own, such as `generated`"
    )

    def above(path: Path | str) -> bool:
        return Path(os.path.realpath(path)).is_relative_to(real)

    home = os.environ.get("HOME", "")
    reasons = {
        "is the project root": real == Path(os.path.realpath(project)),
        "is a folder above the project": above(project),
        "is the home folder or a folder above it": bool(home) and above(home),
        "holds the specs folder": above(specs),
        "holds a git repository (.git)": os.path.lexists(real / ".git"),
        "is not a folder": os.path.lexists(real) and not real.is_dir(),
    }
    shown = shown.rstrip("/") + "/"
    for why, refused in reasons.items():
        if refused:
            raise UsageError(
                f"the generated folder {shown} {why}; boxsmith will not write there", elsewhere
            )
    if real.is_dir() and not (real / index).is_file():
        with _translated(os.fspath(root), "read", os.fspath(root)):
            others = sorted(n for n in os.listdir(real) if n not in _PLACEHOLDERS)
        if others:
            listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise UsageError(
                f"the generated folder {shown} is not empty and has no {index}, so boxsmith did "
                f"not make it ({listed}); boxsmith will not write there",
                f"move its contents away or {elsewhere}; boxsmith deletes only the files its "
                f"{index} records",
            )
