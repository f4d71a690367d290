"""`boxsmith status`: where each template stands, from what this machine already knows.

Per selected template, in catalog order: its version; whether generated/ matches the specs (a
fresh render in memory, as `boxsmith check`); its local build (this project's image of that
version: up to date when its build key is that of the current rendered files, as `smoke --local`
requires, else stale; its size and age); its publish records per target (generated/index.json;
a `local` record whose build the local backend lost is marked gone); the channel tags on the
local backend (read from its state file, never started); and the last smoke result of each kind
(container, local, e2b) from the reports of `smoke` and `release` in .boxsmith/reports/.

Reads only: it writes no file, starts nothing and asks no network. E2B cloud's channel tags are
not asked for (use `promote`/`rollback`, which do). A Docker engine that does not answer shows as
`engine not reachable` in the build column, and as `docker not installed` on the base install
(docker is the `build` extra; the records are then trusted as they are); the command goes on.
Exit 1 when generated/ does not match the specs (what `boxsmith check` exits 1 on), otherwise 0;
builds, publishes and smoke runs that are behind are states, not failures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from boxsmith._internal.backend.datadir import data_dir
from boxsmith._internal.backend.state_file import tag_rows
from boxsmith._internal.build.rendered import load_unit
from boxsmith._internal.extras import install_hint, not_installed
from boxsmith._internal.progress import table
from boxsmith._internal.render.index import INDEX_FILE, Index, VersionEntry, load_index
from boxsmith._internal.render.pipeline import RenderReport, check_project
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings
from boxsmith.errors import EXIT_FINDINGS, EXIT_OK, UsageError

__all__ = ["KINDS", "Status", "collect", "run"]

KINDS = ("container", "local", "e2b")
"""Smoke kinds: a local container of the built image, a sandbox on the local backend, on E2B."""
_UNREACHABLE = "engine not reachable"
_NO_DOCKER = "docker not installed"


@dataclass(frozen=True, slots=True)
class Status:
    """What `status` found (`collect`).

    Attributes:
        rows: one per selected template, in catalog order: name, version, spec, generated,
            build, publishes, channels, smoke (the `--json` rows).
        project: generated/ files no template renders or claims (drift outside a template).
        templates: the selected templates.
        index: generated/index.json as read.
        note: why local builds are unknown (docker missing, the engine not answering), or "".
        drift: generated/ does not match the specs (`check`'s exit 1).
    """

    rows: list[dict[str, Any]]
    project: list[str]
    templates: list[Template]
    index: Index
    note: str
    drift: bool


def collect(settings: Settings, names: Sequence[str] = (), labels: Sequence[str] = ()) -> Status:
    """The status of the selected templates (all by default); reads only."""
    report = check_project(settings, names, labels)
    templates = report.generation.catalog.select(names, labels)
    path = settings.generated_dir / INDEX_FILE
    index = load_index(path, settings.display(path))
    unknown, builds = _builds(settings, templates)
    smoke = _smoke_results(settings)
    channels = _local_channels(settings, index)
    live = _live_local(settings, index, templates)
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "version": t.version,
            "spec": t.spec_file,
            "generated": _generated(settings, report, index, t),
            "build": builds.get(t.ref) or dict(unknown or {}),
            "publishes": _publishes(index.entry(t.name, t.version), live),
            "channels": {"local": channels.get(t.name, {})},
            "smoke": {kind: smoke[kind].get(t.ref) for kind in KINDS},
        }
        for t in templates
    ]
    project = _project_drift(settings, report, {f for r in rows for f in r["generated"]["files"]})
    note = f"status: {unknown['status']}: {unknown['problem']}\n" if unknown else ""
    return Status(rows, project, templates, index, note, bool(report.drift or report.tampered))


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Print the status of the selected templates (a table, or `as_json` everything); exit 1
    when generated/ does not match the specs."""
    found = collect(settings, names, labels)
    if as_json:
        data = {
            "root": str(settings.root),
            "project_id": settings.project_id,
            "templates": found.rows,
            "drift": found.project,
        }
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        _print(found.rows, found.project, out)
    err.write(found.note)
    return EXIT_FINDINGS if found.drift else EXIT_OK


# -- generated/ --------------------------------------------------------------------------------


def _generated(
    settings: Settings, report: RenderReport, index: Index, template: Template
) -> dict[str, Any]:
    """`rendered`, `drift` (with the files) or `not rendered`."""
    folder = f"{template.name}/{template.version}"
    prefix = settings.display(settings.generated_dir).rstrip("/") + "/"
    files = [prefix + c.rel for c in report.drift if c.rel.startswith(folder + "/")]
    desired = report.generation.index.entry(template.name, template.version)
    if index.entry(template.name, template.version) != desired:
        files.append(prefix + INDEX_FILE)
    if not (settings.generated_dir / folder).is_dir():
        return {"status": "not rendered", "files": files}
    return {"status": "drift" if files else "rendered", "files": files}


def _project_drift(settings: Settings, report: RenderReport, claimed: set[str]) -> list[str]:
    """Drift that is no selected template's (`claimed`: the files of theirs): stale or foreign
    files, the index, published versions no spec renders any more that were edited."""
    prefix = settings.display(settings.generated_dir).rstrip("/") + "/"
    lines = [
        f"{prefix}{c.rel}: {c.action.value}" for c in report.drift if prefix + c.rel not in claimed
    ]
    return lines + [f"{folder}: {problem}" for folder, problem in report.tampered]


# -- local builds ------------------------------------------------------------------------------


def _builds(
    settings: Settings, templates: Sequence[Template]
) -> tuple[dict[str, str] | None, dict[str, dict[str, Any]]]:
    """(the build column of every template whose build cannot be read: `engine not reachable` or
    `docker not installed` and why, or None; {ref: the build column} of the others)."""
    found: dict[str, dict[str, Any]] = {}
    units = {}
    for template in templates:
        try:
            units[template.ref] = load_unit(settings, template)
        except UsageError:  # not rendered: nothing to build yet
            found[template.ref] = {"status": "not rendered"}
    if not units:
        return None, found
    if not_installed("build"):
        why = f"local builds are unknown; {install_hint(['build'])}"
        return {"status": _NO_DOCKER, "problem": why}, found
    # here, not at the top: docker is the build extra, and status runs on the base install
    from boxsmith._internal.docker.client import Engine, EngineError
    from boxsmith._internal.smoke.container_run import image_problem

    try:
        # No project: entering the engine would sweep the project's expired containers, and
        # status changes nothing.
        with Engine() as engine:
            for ref, unit in units.items():
                info = engine.image(unit.image)
                build: dict[str, Any] = {"status": "not built", "image": unit.image}
                if info is not None:
                    problem = image_problem(unit, info)
                    build.update(
                        status="stale" if problem else "up to date",
                        id=info.id,
                        size=info.size,
                        created=_created(info.created),
                        problem=problem or None,
                    )
                found[ref] = build
    except EngineError as exc:
        unreachable = {"status": _UNREACHABLE, "problem": exc.message}
        return unreachable, {ref: row for ref, row in found.items() if ref not in units}
    return None, found


def _created(raw: str) -> str | None:
    """When the image was made (the engine's Created), to the second, UTC; None when unknown."""
    when = _parse_time(raw)
    return when.isoformat(timespec="seconds") if when else None


# -- publishes and channels ------------------------------------------------------------------


def _live_local(
    settings: Settings, index: Index, templates: Sequence[Template]
) -> frozenset[str] | None:
    """The local backend's builds that still count (`targets.live_builds`), when a selected
    template has a local record; None: unknown or not needed."""
    needed = any(
        entry.records("local") for t in templates if (entry := index.entry(t.name, t.version))
    )
    if not needed or not_installed("build"):  # no docker to ask: unknown, the records are trusted
        return None
    # here, not at the top: it imports docker (the build extra); status runs on the base install
    from boxsmith._internal.publish.targets import live_builds

    return live_builds(settings, "local")


def _publishes(entry: VersionEntry | None, live: frozenset[str] | None) -> list[dict[str, Any]]:
    """The version's publish records, oldest first; `live`: whether the target still has the
    build (local only; None when unknown)."""
    return [
        {
            "target": p.target,
            "template_id": p.template_id,
            "build_id": p.build_id,
            "published_at": p.published_at,
            "verified_at": p.verified,
            "live": p.build_id in live if p.target == "local" and live is not None else None,
        }
        for p in (entry.publishes if entry else [])
    ]


def _local_channels(settings: Settings, index: Index) -> dict[str, dict[str, str]]:
    """{name: {channel tag: the version it points at}} on the local backend, read from its state
    file without starting it. A tag on a build that no record names shows as `build <id>`.
    Content tags and the tags publish gives (the version's, the spec's `tags`) are not channels:
    the records list them."""
    ours: dict[str, str] = {}  # template id -> name
    versions: dict[str, dict[str, str]] = {}  # name -> {build id: version}
    given: dict[str, set[str]] = {}  # name -> the tags publish gave
    for name, entries in index.templates.items():
        for version, entry in entries.items():
            for p in entry.records("local"):
                ours[p.template_id] = name
                versions.setdefault(name, {})[p.build_id] = version
                given.setdefault(name, set()).update([version_tag(version), *p.tags])
    if not ours:
        return {}
    # here, not at the top: publish's modules load the backend's and docker's, which status
    # without local records (and on the base install, without docker) never needs
    from boxsmith._internal.publish.records import CONTENT_TAG_PREFIX

    channels: dict[str, dict[str, str]] = {}
    for template_id, tag, build_id in tag_rows(data_dir(settings.root)):
        owner = ours.get(template_id)
        if owner is None or tag.startswith(CONTENT_TAG_PREFIX) or tag in given[owner]:
            continue
        channels.setdefault(owner, {})[tag] = versions[owner].get(build_id, f"build {build_id}")
    return channels


# -- smoke reports -----------------------------------------------------------------------------


def _smoke_results(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """{kind: {name:version: the newest suite result}} from `smoke-<kind>.json` and
    `release-<kind>.json` (when: the report's `finished_at`, else the file's mtime)."""
    folder = settings.state_dir / "reports"
    results: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
    for kind in KINDS:
        found: list[tuple[datetime, str, dict[str, Any]]] = []
        for file in (f"smoke-{kind}.json", f"release-{kind}.json"):
            path = folder / file
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                mtime = path.stat().st_mtime
            except (OSError, ValueError):
                continue
            suites = data.get("suites") if isinstance(data, dict) else None
            when = _parse_time(data.get("finished_at")) if isinstance(data, dict) else None
            when = when or datetime.fromtimestamp(mtime, UTC)
            found += [
                (when, s["name"], {"status": str(s.get("status", "?")), "report": file})
                for s in (suites if isinstance(suites, list) else [])
                if isinstance(s, dict) and isinstance(s.get("name"), str)
            ]
        for when, ref, result in sorted(found, key=lambda item: item[0]):  # the newest wins
            report = settings.display(folder / result["report"])
            at = when.isoformat(timespec="seconds")
            results[kind][ref] = {**result, "finished_at": at, "report": report}
    return results


def _parse_time(raw: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime; None for anything else."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


# -- the table ---------------------------------------------------------------------------------


def _print(rows: Sequence[Mapping[str, Any]], project: Sequence[str], out: TextIO) -> None:
    """The table, then a line for each thing that needs attention."""
    header = ("TEMPLATE", "VERSION", "GENERATED", "BUILD", "PUBLISHED", "CHANNELS", "SMOKE")
    out.write(table(header, [_cells(row) for row in rows]))
    for row in rows:
        for line in _attention(row):
            out.write(f"{row['name']}:{row['version']}: {line}\n")
    for line in project:
        out.write(f"generated/ drift: {line}; run `boxsmith check` for the diff\n")


def _cells(row: Mapping[str, Any]) -> tuple[str, ...]:
    build = row["build"]
    if "size" in build:
        build_cell = f"{build['status']}, {build['size'] / 1e6:,.0f} MB, {_age(build['created'])}"
    else:
        build_cell = build["status"]
    published = ", ".join(
        f"{p['target']} {_published_state(p)}" for p in _latest_per_target(row["publishes"])
    )
    channels = ", ".join(
        f"{target}: " + " ".join(f"{tag}={version}" for tag, version in tags.items())
        for target, tags in row["channels"].items()
        if tags
    )
    smoke = ", ".join(f"{kind} {r['status']}" for kind, r in row["smoke"].items() if r)
    cells = (row["generated"]["status"], build_cell, published, channels, smoke)
    return (row["name"], row["version"], *(cell or "-" for cell in cells))


def _latest_per_target(publishes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    latest = {p["target"]: p for p in publishes}  # records are oldest first
    return [latest[t] for t in sorted(latest)]


def _published_state(record: Mapping[str, Any]) -> str:
    if record["live"] is False:
        return "gone"
    return "verified" if record["verified_at"] else "unverified"


def _attention(row: Mapping[str, Any]) -> list[str]:
    """What needs doing for this template, with the command that does it."""
    name, lines = row["name"], []
    generated = row["generated"]
    if generated["status"] == "drift":
        shown = ", ".join(generated["files"])
        lines.append(f"generated/ drift ({shown}); run `boxsmith render {name}`")
    elif generated["status"] == "not rendered":
        lines.append(f"not rendered; run `boxsmith render {name}`")
    if row["build"]["status"] == "stale":
        build = row["build"]
        lines.append(f"image {build['image']} {build['problem']}; run `boxsmith build {name}`")
    for record in _latest_per_target(row["publishes"]):
        state, target = _published_state(record), record["target"]
        if state == "gone":
            lines.append(
                f"the local backend no longer has build {record['build_id']}; "
                f"run `boxsmith publish {name}` to publish it again"
            )
        elif state == "unverified":
            lines.append(
                f"published to {target}, no sandbox of it passed its smoke checks yet; "
                f"run `boxsmith smoke --target {target} {name}`"
            )
    for kind, result in row["smoke"].items():
        if result and result["status"] not in ("passed", "skipped"):
            lines.append(f"smoke {kind} {result['status']} ({result['report']})")
    return lines


def _age(iso: str | None) -> str:
    """`5m ago`, `3h ago`, `2d ago` (`?` when unknown)."""
    when = _parse_time(iso)
    if when is None:
        return "?"
    seconds = max(0, int((datetime.now(UTC) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
