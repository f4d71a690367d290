"""The files a template copies into its build context: its `files` entries and `copy` steps.

Each `src` is resolved against the folder of the spec that wrote it and must stay inside that
folder, links included. A copied folder brings every file below it, minus what editors, operating
systems and tools leave behind. What else a render depends on is recorded in `watched`: every
folder under a copied folder (a file added in an empty one) and every symlink among the copied
files (retargeted to another file). Plain os.path on purpose: this runs for every copied file of
every spec.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from boxsmith._internal.spec.diagnostics import issue_at, suggest
from boxsmith._internal.spec.located import LDict, Pos, locate
from boxsmith._internal.spec.models import CopyStep, FileEntry, TemplateSpec
from boxsmith._internal.spec.template import ContextFile
from boxsmith.config import Settings
from boxsmith.errors import Issue

__all__ = ["ContextCollector"]

# Editor, OS and tool leftovers that a copied folder never means to ship (and that would make
# the rendered output depend on whose machine rendered it).
_CLUTTER_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"})
_CLUTTER_FILES = (".pyc", ".pyo", ".swp", ".swo", "~", ".DS_Store", "Thumbs.db")


def _clutter(rel: Path) -> bool:
    return any(part in _CLUTTER_DIRS for part in rel.parts[:-1]) or rel.name.endswith(
        _CLUTTER_FILES
    )


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class ContextCollector:
    """Collects the build context of each template of one validation run; problems go to
    `issues`, and what a render also depends on to `watched`."""

    def __init__(self, settings: Settings, issues: list[Issue]) -> None:
        self.settings = settings
        self.issues = issues
        self.watched: set[str] = set()  # Catalog.watched
        self._real: dict[Path, str] = {}  # folder -> its real path, resolved once

    def collect(
        self, spec: TemplateSpec, data: LDict, folders: Mapping[str, Path]
    ) -> tuple[tuple[ContextFile, ...], dict[tuple[str, int], str]]:
        """The template's context files, sorted, and where each `files` entry or `copy` step's
        src is in the context (`Template.copy_rel`). `folders` maps each spec file (as shown)
        to its folder."""
        entries: list[tuple[FileEntry, tuple[str | int, ...]]] = [
            (entry, ("files", i)) for i, entry in enumerate(spec.files)
        ]
        entries += [
            (step.copy_, ("steps", i, "copy"))
            for i, step in enumerate(spec.steps)
            if isinstance(step.copy_, CopyStep)
        ]
        files: dict[str, ContextFile] = {}
        copy_rel: dict[tuple[str, int], str] = {}
        for entry, path in entries:
            where = locate(data, (*path, "src")) or data.pos
            folder = folders[where.file]
            label = f"{path[0]}[{path[1]}]" + "".join(f".{p}" for p in path[2:])
            rel = self._add(entry.src, folder, where, label, files)
            if rel is not None:
                copy_rel[(str(path[0]), int(path[1]))] = rel
        return tuple(sorted(files.values(), key=lambda f: f.rel)), copy_rel

    def _resolved(self, folder: Path) -> str:
        """The folder's real path, once per folder."""
        real = self._real.get(folder)
        if real is None:
            real = self._real[folder] = os.path.realpath(folder)
        return real

    def _add(
        self, src: str, folder: Path, where: Pos, path: str, files: dict[str, ContextFile]
    ) -> str | None:
        """Add the file(s) behind one `src` to `files`; return its path in the build context."""
        real_folder = self._resolved(folder)
        real = os.path.realpath(os.path.join(real_folder, src))
        if not os.path.exists(real):
            listing = (
                [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
                if folder.is_dir()
                else []
            )
            self.issues.append(
                issue_at(
                    where,
                    f"src {src!r} does not exist in {self.settings.display(folder) or '.'}",
                    suggest(src, listing) or "create the file next to the spec, or fix the path",
                    f"{path}.src",
                )
            )
            return None
        if not _inside(real, real_folder):
            self.issues.append(
                issue_at(
                    where,
                    f"src {src!r} resolves outside the spec's folder",
                    "copy the file into the spec's folder instead of linking it",
                    f"{path}.src",
                )
            )
            return None
        specs_root = self._resolved(self.settings.specs_dir)
        base = specs_root if _inside(real_folder, specs_root) else real_folder
        rel = os.path.relpath(real, base).replace(os.sep, "/")
        literal = os.path.join(folder, src)
        if os.path.isfile(real):
            if literal != real:
                self.watched.add(literal)
            files[rel] = ContextFile(rel, Path(real))
            return rel
        for link in self._add_folder(real, rel, real_folder, files):
            self.issues.append(
                issue_at(
                    where,
                    f"{self.settings.display(link)} links outside the spec's folder",
                    "replace the link with the file",
                    f"{path}.src",
                )
            )
        return rel

    def _add_folder(
        self, real: str, rel: str, real_folder: str, files: dict[str, ContextFile]
    ) -> list[Path]:
        """Add every file below the copied folder `real` (at `rel` in the context); return the
        links among them that lead outside `real_folder` (left out)."""
        self.watched.update(
            os.path.normpath(os.path.join(top, name))
            for top, dirs, _ in os.walk(real)
            for name in [".", *dirs]
        )
        outside: list[Path] = []
        for source in sorted(p for p in Path(real).rglob("*") if p.is_file()):
            if _clutter(source.relative_to(real)):
                continue
            resolved = os.path.realpath(source)
            if not _inside(resolved, real_folder):
                outside.append(source)
                continue
            key = f"{rel}/{source.relative_to(real).as_posix()}"
            if os.fspath(source) != resolved:
                self.watched.add(os.fspath(source))
            files[key] = ContextFile(key, Path(resolved))
        return outside
