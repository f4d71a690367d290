"""The validate stage: read every spec file, resolve it and check it, reporting all errors at once.

`load_catalog` is the entry point: it returns every concrete template (matrix variants expanded)
or raises `SpecError` with every issue found across all files. The run itself is `loader.load`;
the types it returns are in `template.py` (re-exported here).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from boxsmith._internal.spec.loader import load
from boxsmith._internal.spec.template import Catalog, ContextFile, Template
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = ["Catalog", "ContextFile", "Template", "inputs", "load_catalog", "spec_files"]


def spec_files(settings: Settings) -> list[Path]:
    """Every spec file under the specs folder, sorted."""
    if not settings.specs_dir.is_dir():
        raise UsageError(
            f"spec folder {settings.display(settings.specs_dir)} does not exist",
            "create it, or point --specs / [tool.boxsmith] specs_dir at your specs",
        )
    found = [*settings.specs_dir.rglob("*.yaml"), *settings.specs_dir.rglob("*.yml")]
    return sorted(p for p in found if p.is_file() and not p.name.startswith("."))


# One process often validates the same specs several times (the main job: validate, render,
# check). A catalog is reused while every file it was made from has the same content: a digest
# of contents, not mtimes, which are too coarse for edits in quick succession.
_MEMO: dict[Settings, tuple[str, list[str], str, Catalog]] = {}


def _digest(paths: Iterable[str]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for path in paths:
        digest.update(path.encode() + b"\0")
        try:
            if os.path.isdir(path):
                digest.update("\0".join(sorted(os.listdir(path))).encode())
            else:
                with open(path, "rb") as handle:  # in blocks: a spec file may be huge
                    while block := handle.read(1 << 20):
                        digest.update(block)
        except OSError:
            digest.update(b"\1missing")
        digest.update(b"\0")
    return digest.hexdigest()


def inputs(catalog: Catalog) -> list[str]:
    """Files copied into the build contexts, their folders (for files added or removed), every
    folder under a copied folder and every symlink among them (`Catalog.watched`)."""
    sources = {os.fspath(item.source) for t in catalog.templates for item in t.context}
    return sorted(sources | {os.path.dirname(s) for s in sources} | set(catalog.watched))


def load_catalog(settings: Settings) -> Catalog:
    """Read, resolve and validate every spec of the project.

    Raises:
        SpecError: with every issue in every file, sorted by file and line.
        UsageError: the specs folder is missing.
    """
    files = spec_files(settings)
    specs = _digest([os.fspath(p) for p in files])
    memo = _MEMO.get(settings)
    if memo is not None and memo[0] == specs and _digest(memo[1]) == memo[2]:
        return memo[3]
    catalog = load(settings, files)
    used = inputs(catalog)
    _MEMO[settings] = (specs, used, _digest(used), catalog)
    return catalog
