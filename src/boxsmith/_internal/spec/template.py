"""A validated template and the catalog of them: what the validate stage hands to the others."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxsmith._internal.spec.diagnostics import suggest
from boxsmith._internal.spec.located import LDict, Pos, locate
from boxsmith._internal.spec.models import TemplateSpec
from boxsmith.errors import UsageError

__all__ = ["Catalog", "ContextFile", "Template", "spec_digest"]


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


def spec_digest(spec: TemplateSpec) -> str:
    """sha256 of the resolved spec's JSON (field order, no whitespace, defaults left out, so a
    field added to the models later does not change the digest of specs that do not use it)."""
    data = spec.model_dump_json(by_alias=True, exclude_defaults=True)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
