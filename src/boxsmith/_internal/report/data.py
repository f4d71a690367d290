"""What the catalog site shows, gathered once: `status`'s rows, the specs, the index, the history
file, the latest smoke reports and (when hadolint is there) lint's findings."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxsmith._internal.cli import status
from boxsmith._internal.history import read_history
from boxsmith._internal.lint import lint_project
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.checks import check_name
from boxsmith.config import Settings
from boxsmith.errors import BoxsmithError

__all__ = ["Site", "TemplateView", "collect"]

_SOURCES = (("e2b.toml", "toml"), ("e2b.Dockerfile", "dockerfile"))


@dataclass
class TemplateView:
    """One template as the site shows it.

    Attributes:
        template: the validated spec.
        row: its `boxsmith status --json` row (generated, build, publishes, channels, smoke).
        versions: (version, publish records, the last build of it on this machine or None),
            newest first.
        smoke: per kind that ran: (kind, the status row's result, its checks from the report).
        runs: the smoke records of the history file, newest first.
        lint: its findings (JSON form), or None when lint did not run.
        sources: (title, language, text): the spec file and the rendered files.
    """

    template: Template
    row: Mapping[str, Any]
    versions: list[tuple[str, list[dict[str, Any]], Mapping[str, Any] | None]]
    smoke: list[tuple[str, Mapping[str, Any], list[dict[str, Any]]]]
    runs: list[Mapping[str, Any]]
    lint: list[Mapping[str, Any]] | None
    sources: list[tuple[str, str, str]]
    declared: list[str] = field(default_factory=list)


@dataclass
class Site:
    """Everything the pages need: the templates, why lint did not run (or ""), status notes."""

    templates: list[TemplateView]
    lint_note: str
    notes: str
    project: str


def collect(settings: Settings) -> Site:
    """Gather the site's data; reads only (as `boxsmith status` does)."""
    found = status.collect(settings)  # drift is shown, not an error here
    rows = {(r["name"], r["version"]): r for r in found.rows}
    index = found.index
    history = read_history(settings)
    findings, lint_note = _lint(settings)
    reports: dict[Path, Any] = {}
    views = []
    for template in found.templates:
        entries = index.templates.get(template.name, {})
        builds = _last_builds(history, template.name)
        row = rows[(template.name, template.version)]
        versions = [
            (
                version,
                [p.model_dump(mode="json") for p in entries[version].publishes]
                if version in entries
                else [],
                builds.get(version),
            )
            for version in sorted({*entries, *builds, template.version}, key=_version_key)
        ]
        views.append(
            TemplateView(
                template=template,
                row=row,
                versions=versions[::-1],
                smoke=_smoke(settings, template.ref, row, reports),
                runs=[
                    r
                    for r in reversed(history)
                    if r.get("event") == "smoke" and r.get("template") == template.name
                ],
                lint=None if findings is None else findings.get(template.ref, []),
                sources=_sources(settings, template),
                declared=[check_name(c) for c in template.spec.smoke],
            )
        )
    return Site(views, lint_note, found.note, settings.root.name)


def _lint(settings: Settings) -> tuple[dict[str, list[Mapping[str, Any]]] | None, str]:
    """({ref: findings}, "") or (None, why lint did not run)."""
    try:
        report = lint_project(settings)
    except BoxsmithError as exc:
        return None, f"not run: {exc.message}"
    found: dict[str, list[Mapping[str, Any]]] = {}
    for finding in report.findings:
        found.setdefault(finding.template, []).append(finding.to_json())
    return found, ""


def _last_builds(history: Sequence[Mapping[str, Any]], name: str) -> dict[str, Mapping[str, Any]]:
    """{version: its newest `built` record} of one template."""
    return {
        str(r.get("version")): r
        for r in history
        if r.get("event") == "build" and r.get("template") == name and r.get("status") == "built"
    }


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Semantic versions in order (numbers as numbers); any text sorts beside them."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", version))


def _smoke(
    settings: Settings, ref: str, row: Mapping[str, Any], reports: dict[Path, Any]
) -> list[tuple[str, Mapping[str, Any], list[dict[str, Any]]]]:
    """Per smoke kind with a result: the result and the checks of its suite in that report."""
    found = []
    for kind, result in row["smoke"].items():
        if not result:
            continue
        path = settings.root / result["report"]
        if path not in reports:
            try:
                reports[path] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                reports[path] = {}
        suites = reports[path].get("suites") if isinstance(reports[path], dict) else None
        checks = next(
            (
                [c for c in s.get("checks", []) if isinstance(c, dict)]
                for s in (suites if isinstance(suites, list) else [])
                if isinstance(s, dict) and s.get("name") == ref
            ),
            [],
        )
        found.append((kind, result, [{**c, "_report": str(path)} for c in checks]))
    return found


def _sources(settings: Settings, template: Template) -> list[tuple[str, str, str]]:
    """The spec file, then the rendered e2b.toml and e2b.Dockerfile (those rendered)."""
    files = [(template.spec_file, "yaml", settings.root / template.spec_file)]
    folder = settings.generated_dir / template.name / template.version
    files += [(settings.display(folder / n), lang, folder / n) for n, lang in _SOURCES]
    sources = []
    for title, lang, path in files:
        try:
            sources.append((title, lang, path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return sources
