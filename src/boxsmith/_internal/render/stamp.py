"""The verification stamp: skip re-rendering when nothing changed since the last clean check.

`check` and `render` leave `.boxsmith/verified.json` (gitignored) after they have seen that
generated/ matches the specs. It holds a digest of everything the result depends on: boxsmith's
own code and templates, the settings, every spec file, every file the specs copy (and the
listing of their folders) and every file under generated/. Rendering is deterministic, so equal
digests mean the earlier verdict still holds, and `check` answers without importing the spec
models at all. Any difference, a missing stamp, or BOXSMITH_NO_CACHE=1 means a full check.
This module stays import-light on purpose (no pydantic, no jinja): `check` imports it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from boxsmith._internal.render.outputs import write_atomic
from boxsmith.config import Settings

__all__ = ["STAMP_FILE", "Stamp", "code_files", "enabled", "fingerprint", "load", "matches", "save"]

STAMP_FILE = ".boxsmith/verified.json"
_PACKAGE = Path(__file__).resolve().parents[2]  # the boxsmith package: its code is an input
_CODE = (".py", ".j2")  # boxsmith's code and its output templates

Stamp = dict[str, object]


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when BOXSMITH_NO_CACHE is set to a true value."""
    value = (os.environ if env is None else env).get("BOXSMITH_NO_CACHE", "")
    return value.lower() not in ("1", "true", "yes")


def _feed_file(digest: Any, path: str) -> None:
    digest.update(path.encode() + b"\0")
    try:
        if os.path.isdir(path):
            digest.update("\0".join(sorted(os.listdir(path))).encode())
        else:
            with open(path, "rb") as handle:
                digest.update(handle.read())
                digest.update(b"x" if os.fstat(handle.fileno()).st_mode & 0o111 else b"-")
    except OSError:
        digest.update(b"\1missing")
    digest.update(b"\0")


def _tree(root: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        found.extend(
            os.path.join(folder, n) for n in sorted(names) if not suffixes or n.endswith(suffixes)
        )
    return found


def code_files() -> list[str]:
    """Every file of boxsmith's own code and templates (each .py and .j2 under the package)."""
    return _tree(os.fspath(_PACKAGE), _CODE)


def fingerprint(settings: Settings, context: Iterable[str]) -> str:
    """Digest of every input and output of a render of this project."""
    digest = hashlib.blake2b(digest_size=32)
    for path in code_files():
        _feed_file(digest, path)
    digest.update(repr((settings.specs_dir, settings.generated_dir, settings.template_py)).encode())
    for path in _tree(str(settings.specs_dir), (".yaml", ".yml")):
        _feed_file(digest, path)
    for path in context:
        _feed_file(digest, path)
    digest.update(b"\2generated\0")
    for path in _tree(str(settings.generated_dir)):
        _feed_file(digest, path)
    return digest.hexdigest()


def _path(settings: Settings) -> Path:
    return settings.root / STAMP_FILE


def load(settings: Settings) -> Stamp | None:
    """The last stamp, or None."""
    try:
        data = json.loads(_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def matches(settings: Settings, stamp: Stamp | None) -> bool:
    """Whether nothing changed since `stamp` was written."""
    if stamp is None or not enabled():
        return False
    context = stamp.get("context")
    if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
        return False
    return stamp.get("fingerprint") == fingerprint(settings, context)


def save(settings: Settings, context: Iterable[str], summary: Mapping[str, object]) -> None:
    """Record that generated/ matches the specs now. Best effort: a read-only checkout simply
    gets no stamp."""
    if not enabled():
        return
    files = sorted(set(context))
    data = {"fingerprint": fingerprint(settings, files), "context": files, **summary}
    with contextlib.suppress(OSError):
        write_atomic(_path(settings), (json.dumps(data, indent=1) + "\n").encode())
