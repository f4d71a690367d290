"""The validate stage: read every spec file, resolve it and check it, reporting all errors at once.

`load_catalog` is the entry point: it returns every concrete template (matrix variants expanded)
or raises `SpecError` with every issue found across all files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from boxsmith._internal.spec.diagnostics import issues_from_validation, suggest
from boxsmith._internal.spec.expand import expand
from boxsmith._internal.spec.located import (
    LDict,
    LList,
    Pos,
    YamlIssue,
    load_yaml,
    locate,
    read_spec,
)
from boxsmith._internal.spec.merge import merge
from boxsmith._internal.spec.models import META_KEYS, CopyStep, FileEntry, TemplateSpec, check_name
from boxsmith.config import Settings
from boxsmith.errors import Issue, SpecError, UsageError

__all__ = ["Catalog", "ContextFile", "Template", "inputs", "load_catalog", "spec_files"]


@dataclass(frozen=True, slots=True)
class ContextFile:
    """A file from a spec folder that goes into the build context."""

    rel: str  # path inside the build context (posix)
    source: Path


@dataclass(frozen=True, slots=True)
class Template:
    """One concrete, validated template version."""

    spec: TemplateSpec
    spec_file: str  # display path of the spec file that defines it
    variant: dict[str, Any]  # matrix values ({} without a matrix)
    context: tuple[ContextFile, ...]  # files copied into the build context, sorted
    copy_rel: dict[tuple[str, int], str]  # ("files", i) / ("steps", i) -> src in the context
    data: LDict = field(repr=False, compare=False)  # located, merged spec for positions
    spec_hash: str = ""

    @property
    def name(self) -> str:
        """Template name."""
        return self.spec.name

    @property
    def version(self) -> str:
        """Template version."""
        return self.spec.version

    @property
    def ref(self) -> str:
        """`name:version`, as published."""
        return f"{self.spec.name}:{self.spec.version}"

    def position(self, *path: str | int) -> Pos | None:
        """Where in the spec files the value at `path` was written."""
        return locate(self.data, path)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every template of a project, in name order."""

    templates: tuple[Template, ...]
    files: tuple[str, ...]  # display paths of the spec files read
    # what else a render depends on: every folder under a copied folder (a file added in an
    # empty one) and every symlink among the copied files (retargeted to another file)
    watched: tuple[str, ...] = ()

    def select(self, patterns: Sequence[str] = (), labels: Sequence[str] = ()) -> list[Template]:
        """Templates whose name matches any glob in `patterns` and that carry every label."""
        wanted = [self._label(raw) for raw in labels]
        chosen = [
            t
            for t in self.templates
            if (not patterns or any(fnmatch.fnmatchcase(t.name, p) for p in patterns))
            and all(t.spec.labels.get(k) == v for k, v in wanted)
        ]
        unmatched = [
            p for p in patterns if not any(fnmatch.fnmatchcase(t.name, p) for t in self.templates)
        ]
        if unmatched:
            hint = suggest(unmatched[0], [t.name for t in self.templates])
            raise UsageError(
                f"no template matches {unmatched[0]!r}",
                hint or "run `boxsmith list` to see the names",
            )
        return chosen

    @staticmethod
    def _label(raw: str) -> tuple[str, str]:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise UsageError(f"label filter {raw!r} is not key=value", "write --label tier=web")
        return key, value


@dataclass(slots=True)
class _Doc:
    display: str
    path: Path
    data: LDict
    name: str | None
    abstract: bool


def spec_files(settings: Settings) -> list[Path]:
    """Every spec file under the specs folder, sorted."""
    if not settings.specs_dir.is_dir():
        raise UsageError(
            f"spec folder {settings.display(settings.specs_dir)} does not exist",
            "create it, or point --specs / [tool.boxsmith] specs_dir at your specs",
        )
    found = [*settings.specs_dir.rglob("*.yaml"), *settings.specs_dir.rglob("*.yml")]
    return sorted(p for p in found if p.is_file() and not p.name.startswith("."))


def _issue(where: Pos, message: str, hint: str, path: str = "") -> Issue:
    return Issue(where.file, where.line, where.column, message, hint, path)


class _Loader:
    """One validation run over a project; collects issues instead of stopping at the first."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.issues: list[Issue] = []
        self.docs: list[_Doc] = []
        self.by_name: dict[str, _Doc] = {}
        self.merged: dict[str, LDict | None] = {}
        self.folders: dict[str, Path] = {}
        self.clashing: set[str] = set()
        self.real_folders: dict[Path, str] = {}  # literal names already reported as duplicates
        self.watched: set[str] = set()  # Catalog.watched

    def read(self, path: Path) -> None:
        display = self.settings.display(path)
        self.folders[display] = path.parent
        try:
            data = load_yaml(read_spec(path, display), display)
        except YamlIssue as exc:
            self.issues.append(exc.issue)
            return
        except UnicodeDecodeError:
            self.issues.append(Issue(display, 0, 0, "not UTF-8 text", "save the file as UTF-8"))
            return
        if not isinstance(data, LDict):
            self.issues.append(
                Issue(
                    display,
                    1,
                    1,
                    "a spec must be a mapping of keys",
                    "start with `name:` and `version:` at the top level",
                )
            )
            return
        abstract = data.get("abstract", False)
        if not isinstance(abstract, bool):
            self.issues.append(
                _issue(
                    data.val_pos["abstract"],
                    "abstract must be true or false",
                    "write `abstract: true` for a base spec",
                    "abstract",
                )
            )
            abstract = False
        raw_name = data.get("name")
        name = raw_name if isinstance(raw_name, str) and "{" not in raw_name else None
        if abstract and name is None:
            self.issues.append(
                _issue(
                    data.pos,
                    "an abstract spec needs a literal name",
                    "add `name: my-base` so other specs can extend it",
                    "name",
                )
            )
        doc = _Doc(display, path, data, name, abstract)
        if name is not None:
            first = self.by_name.get(name)
            if first is not None:
                self.clashing.add(name)
                self.issues.append(
                    _issue(
                        data.val_pos["name"],
                        f"name {name!r} is already used by {first.display}",
                        "rename one of them",
                        "name",
                    )
                )
            else:
                self.by_name[name] = doc
        self.docs.append(doc)

    def _resolved(self, folder: Path) -> str:
        """The folder's real path, once per folder."""
        real = self.real_folders.get(folder)
        if real is None:
            real = self.real_folders[folder] = os.path.realpath(folder)
        return real

    def _bases(self, doc: _Doc) -> list[tuple[str, Pos]]:
        raw = doc.data.get("extends")
        if raw is None:
            return []
        at = doc.data.val_pos["extends"]
        if isinstance(raw, str):
            return [(raw, at)]
        if isinstance(raw, LList) and all(isinstance(item, str) for item in raw):
            return list(raw.entries())
        self.issues.append(
            _issue(
                at,
                "extends must be a spec name or a list of names",
                "write `extends: [base-name]`",
                "extends",
            )
        )
        return []

    def resolve(self, doc: _Doc, stack: tuple[str, ...] = ()) -> LDict | None:
        """The spec with its bases merged in (memoised); None after an error."""
        key = doc.display
        if key in self.merged:
            return self.merged[key]
        result: LDict | None = LDict(doc.data.pos)
        for base_name, at in self._bases(doc):
            base = self.by_name.get(base_name)
            if base is None:
                hint = suggest(base_name, [d.name for d in self.docs if d.name])
                self.issues.append(
                    _issue(
                        at,
                        f"extends unknown spec {base_name!r}",
                        hint or "name an abstract spec under the specs folder",
                        "extends",
                    )
                )
                result = None
                continue
            if base.display in stack or base is doc:
                chain = " -> ".join([*stack, doc.display, base.display])
                self.issues.append(
                    _issue(
                        at,
                        f"extends cycle: {chain}",
                        "remove one of the extends in the cycle",
                        "extends",
                    )
                )
                result = None
                continue
            if "matrix" in base.data:
                self.issues.append(
                    _issue(
                        at,
                        f"cannot extend {base_name!r}: it has a matrix",
                        "move the shared parts into an abstract base",
                        "extends",
                    )
                )
                result = None
                continue
            resolved = self.resolve(base, (*stack, doc.display))
            if resolved is None or result is None:
                result = None
                continue
            result = merge(result, resolved)
        merged = merge(result, doc.data) if result is not None else None
        self.merged[key] = merged
        return merged

    def validate(self, doc: _Doc) -> list[Template]:
        merged = self.resolve(doc)
        if merged is None:
            return []
        matrix = doc.data.get("matrix")
        if matrix is not None and not isinstance(matrix, LDict):
            self.issues.append(
                _issue(
                    doc.data.val_pos["matrix"],
                    "matrix must be a mapping",
                    "write `matrix: {axis: [values]}`",
                    "matrix",
                )
            )
            return []
        templates = []
        names: dict[str, dict[str, Any]] = {}
        for combo, data, unresolved in expand(merged, matrix, self.issues):
            spec = self._model(data, doc.display, unresolved)
            if spec is None or unresolved:
                continue
            self._unique_check_names(spec, data)
            if spec.name in names:
                at = data.val_pos.get("name", data.pos)
                self.issues.append(
                    _issue(
                        at,
                        f"matrix variants {names[spec.name]} and {combo} both make the name "
                        f"{spec.name!r}",
                        'put every matrix axis in name, e.g. name: "app-{{ matrix.python }}"',
                        "name",
                    )
                )
                continue
            names[spec.name] = combo
            context, copy_rel = self._context(spec, data)
            templates.append(
                Template(spec, doc.display, combo, context, copy_rel, data, spec_digest(spec))
            )
        return templates

    def _model(
        self, data: LDict, display: str, unresolved: frozenset[str] = frozenset()
    ) -> TemplateSpec | None:
        """Validate; errors on values whose {{ }} failed are left out (already reported)."""
        body = {k: v for k, v in data.items() if k not in META_KEYS}
        try:
            return TemplateSpec.model_validate(body)
        except ValidationError as exc:
            fallback = Pos(display, 1, 1)
            found = issues_from_validation(
                exc, data, TemplateSpec, fallback=fallback, extra_keys=META_KEYS
            )
            self.issues.extend(
                i
                for i in found
                if not any(i.path == p or i.path.startswith((f"{p}.", f"{p}[")) for p in unresolved)
            )
            return None

    def _unique_check_names(self, spec: TemplateSpec, data: LDict) -> None:
        seen: set[str] = set()
        for i, check in enumerate(spec.smoke):
            name = check_name(check)
            if name in seen:
                at = locate(data, ("smoke", i, "name")) or locate(data, ("smoke", i)) or data.pos
                self.issues.append(
                    _issue(
                        at,
                        f"smoke check name {name!r} is used twice",
                        "give each check a distinct `name:`",
                        f"smoke[{i}].name",
                    )
                )
            seen.add(name)

    def check_abstract(self, doc: _Doc) -> None:
        """Bases are checked on their own for what they do set (missing keys are fine)."""
        merged = self.resolve(doc)
        if merged is None:
            return
        body = {k: v for k, v in merged.items() if k not in META_KEYS}
        try:
            TemplateSpec.model_validate(body)
        except ValidationError as exc:
            found = issues_from_validation(
                exc, merged, TemplateSpec, fallback=Pos(doc.display, 1, 1), extra_keys=META_KEYS
            )
            templated = {
                i
                for i, e in enumerate(exc.errors())
                if e["type"] == "missing"
                or (isinstance(e.get("input"), str) and ("{{" in e["input"] or "{%" in e["input"]))
            }
            self.issues.extend(i for n, i in enumerate(found) if n not in templated)

    def _context(
        self, spec: TemplateSpec, data: LDict
    ) -> tuple[tuple[ContextFile, ...], dict[tuple[str, int], str]]:
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
            folder = self.folders[where.file]
            label = f"{path[0]}[{path[1]}]" + "".join(f".{p}" for p in path[2:])
            rel = self._context_files(entry.src, folder, where, label, files)
            if rel is not None:
                copy_rel[(str(path[0]), int(path[1]))] = rel
        return tuple(sorted(files.values(), key=lambda f: f.rel)), copy_rel

    def _context_files(
        self, src: str, folder: Path, where: Pos, path: str, files: dict[str, ContextFile]
    ) -> str | None:
        """Add the file(s) behind one `src` to `files`; return its path in the build context.

        Plain os.path on purpose: this runs for every copied file of every spec."""
        real_folder = self._resolved(folder)
        real = os.path.realpath(os.path.join(real_folder, src))
        if not os.path.exists(real):
            listing = (
                [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
                if folder.is_dir()
                else []
            )
            self.issues.append(
                _issue(
                    where,
                    f"src {src!r} does not exist in {self.settings.display(folder) or '.'}",
                    suggest(src, listing) or "create the file next to the spec, or fix the path",
                    f"{path}.src",
                )
            )
            return None
        if not _inside(real, real_folder):
            self.issues.append(
                _issue(
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
        self.watched.update(
            os.path.normpath(os.path.join(top, name))
            for top, dirs, _ in os.walk(real)
            for name in [".", *dirs]
        )
        for source in sorted(p for p in Path(real).rglob("*") if p.is_file()):
            if _clutter(source.relative_to(real)):
                continue
            resolved = os.path.realpath(source)
            if not _inside(resolved, real_folder):
                self.issues.append(
                    _issue(
                        where,
                        f"{self.settings.display(source)} links outside the spec's folder",
                        "replace the link with the file",
                        f"{path}.src",
                    )
                )
                continue
            key = f"{rel}/{source.relative_to(real).as_posix()}"
            if os.fspath(source) != resolved:
                self.watched.add(os.fspath(source))
            files[key] = ContextFile(key, Path(resolved))
        return rel


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


def spec_digest(spec: TemplateSpec) -> str:
    """sha256 of the resolved spec's JSON (field order, no whitespace, defaults left out, so a
    field added to the models later does not change the digest of specs that do not use it)."""
    data = spec.model_dump_json(by_alias=True, exclude_defaults=True)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


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
    catalog = _load(settings, files)
    used = inputs(catalog)
    _MEMO[settings] = (specs, used, _digest(used), catalog)
    return catalog


def _load(settings: Settings, files: list[Path]) -> Catalog:
    loader = _Loader(settings)
    for path in files:
        loader.read(path)
    templates: list[Template] = []
    for doc in loader.docs:
        if doc.abstract:
            loader.check_abstract(doc)
        else:
            templates.extend(loader.validate(doc))
    seen: dict[str, Template] = {}
    for template in templates:
        first = seen.setdefault(template.name, template)
        if first is not template and template.name not in loader.clashing:
            at = template.position("name") or template.data.pos
            loader.issues.append(
                _issue(
                    at,
                    f"template name {template.name!r} is already defined in {first.spec_file}",
                    "rename one of them; names are unique across files",
                    "name",
                )
            )
    if loader.issues:
        raise SpecError(loader.issues)
    return Catalog(
        tuple(sorted(templates, key=lambda t: t.name)),
        tuple(settings.display(p) for p in files),
        tuple(sorted(loader.watched)),
    )
