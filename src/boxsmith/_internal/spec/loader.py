"""One validation run over a project's spec files: read, resolve `extends`, expand, validate.

Every problem is collected as an issue instead of stopping at the first, so `load` reports every
error in every file at once. An abstract spec (a base others extend) is checked on its own for
what it does set; every other spec becomes one template per matrix variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from boxsmith._internal.spec.build_context import ContextCollector
from boxsmith._internal.spec.diagnostics import issue_at, issues_from_validation, suggest
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
from boxsmith._internal.spec.models import META_KEYS, TemplateSpec, check_name
from boxsmith._internal.spec.template import Catalog, Template, spec_digest
from boxsmith.config import Settings
from boxsmith.errors import Issue, SpecError

__all__ = ["load"]


@dataclass(slots=True)
class _Doc:
    display: str
    path: Path
    data: LDict
    name: str | None
    abstract: bool


class _Loader:
    """One validation run over a project; collects issues instead of stopping at the first."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.issues: list[Issue] = []
        self.docs: list[_Doc] = []
        self.by_name: dict[str, _Doc] = {}
        self.merged: dict[str, LDict | None] = {}
        self.folders: dict[str, Path] = {}
        self.clashing: set[str] = set()  # literal names already reported as duplicates
        self.context = ContextCollector(settings, self.issues)

    def read(self, path: Path) -> None:
        display = self.settings.display(path)
        self.folders[display] = path.parent
        data = self._parse(path, display)
        if data is None:
            return
        abstract = self._abstract(data)
        raw_name = data.get("name")
        name = raw_name if isinstance(raw_name, str) and "{" not in raw_name else None
        if abstract and name is None:
            self.issues.append(
                issue_at(
                    data.pos,
                    "an abstract spec needs a literal name",
                    "add `name: my-base` so other specs can extend it",
                    "name",
                )
            )
        doc = _Doc(display, path, data, name, abstract)
        if name is not None:
            self._claim(name, doc)
        self.docs.append(doc)

    def _parse(self, path: Path, display: str) -> LDict | None:
        try:
            data = load_yaml(read_spec(path, display), display)
        except YamlIssue as exc:
            self.issues.append(exc.issue)
            return None
        except UnicodeDecodeError:
            self.issues.append(Issue(display, 0, 0, "not UTF-8 text", "save the file as UTF-8"))
            return None
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
            return None
        return data

    def _abstract(self, data: LDict) -> bool:
        abstract = data.get("abstract", False)
        if isinstance(abstract, bool):
            return abstract
        self.issues.append(
            issue_at(
                data.val_pos["abstract"],
                "abstract must be true or false",
                "write `abstract: true` for a base spec",
                "abstract",
            )
        )
        return False

    def _claim(self, name: str, doc: _Doc) -> None:
        first = self.by_name.get(name)
        if first is None:
            self.by_name[name] = doc
            return
        self.clashing.add(name)
        self.issues.append(
            issue_at(
                doc.data.val_pos["name"],
                f"name {name!r} is already used by {first.display}",
                "rename one of them",
                "name",
            )
        )

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
            issue_at(
                at,
                "extends must be a spec name or a list of names",
                "write `extends: [base-name]`",
                "extends",
            )
        )
        return []

    def _base(self, doc: _Doc, name: str, at: Pos, stack: tuple[str, ...]) -> _Doc | None:
        """The spec `doc` extends under `name`, or None (and an issue) when it cannot."""
        base = self.by_name.get(name)
        if base is None:
            hint = suggest(name, [d.name for d in self.docs if d.name])
            message = f"extends unknown spec {name!r}"
            hint = hint or "name an abstract spec under the specs folder"
        elif base.display in stack or base is doc:
            message = f"extends cycle: {' -> '.join([*stack, doc.display, base.display])}"
            hint = "remove one of the extends in the cycle"
        elif "matrix" in base.data:
            message = f"cannot extend {name!r}: it has a matrix"
            hint = "move the shared parts into an abstract base"
        else:
            return base
        self.issues.append(issue_at(at, message, hint, "extends"))
        return None

    def resolve(self, doc: _Doc, stack: tuple[str, ...] = ()) -> LDict | None:
        """The spec with its bases merged in (memoised); None after an error."""
        key = doc.display
        if key in self.merged:
            return self.merged[key]
        result: LDict | None = LDict(doc.data.pos)
        for base_name, at in self._bases(doc):
            base = self._base(doc, base_name, at, stack)
            resolved = None if base is None else self.resolve(base, (*stack, doc.display))
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
                issue_at(
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
                self.issues.append(
                    issue_at(
                        data.val_pos.get("name", data.pos),
                        f"matrix variants {names[spec.name]} and {combo} both make the name "
                        f"{spec.name!r}",
                        'put every matrix axis in name, e.g. name: "app-{{ matrix.python }}"',
                        "name",
                    )
                )
                continue
            names[spec.name] = combo
            context, copy_rel = self.context.collect(spec, data, self.folders)
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
                    issue_at(
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

    def unique_names(self, templates: list[Template]) -> None:
        """Report a template name that two spec files make (unless already reported)."""
        seen: dict[str, Template] = {}
        for template in templates:
            first = seen.setdefault(template.name, template)
            if first is not template and template.name not in self.clashing:
                self.issues.append(
                    issue_at(
                        template.position("name") or template.data.pos,
                        f"template name {template.name!r} is already defined in {first.spec_file}",
                        "rename one of them; names are unique across files",
                        "name",
                    )
                )


def load(settings: Settings, files: list[Path]) -> Catalog:
    """Read, resolve and validate `files`, the project's spec files.

    Raises:
        SpecError: with every issue in every file, sorted by file and line.
    """
    loader = _Loader(settings)
    for path in files:
        loader.read(path)
    templates: list[Template] = []
    for doc in loader.docs:
        if doc.abstract:
            loader.check_abstract(doc)
        else:
            templates.extend(loader.validate(doc))
    loader.unique_names(templates)
    if loader.issues:
        raise SpecError(loader.issues)
    return Catalog(
        tuple(sorted(templates, key=lambda t: t.name)),
        tuple(settings.display(p) for p in files),
        tuple(sorted(loader.context.watched)),
    )
