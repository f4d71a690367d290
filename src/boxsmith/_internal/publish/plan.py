"""What to publish, decided before any network: the versions to build and the ones settled.

generated/ must match the specs first (`check_project`; drift: `boxsmith render`, nothing else
is decided). A version already published to the target is `unchanged` (same content hash) or
`refused` (other content: a published version is immutable, bump it). A record of a build the
local backend no longer has (its data was deleted) does not count (`targets.live_builds`); the
version is built again, and that record is dropped once it is (`records.append_record`). Each
other version becomes a `PublishUnit`: its folder, E2B name and tags, and the start and ready
command, cpu and memory of its e2b.toml.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boxsmith._internal.publish.targets import live_builds
from boxsmith._internal.render import TOML
from boxsmith._internal.render.folder import Rendered
from boxsmith._internal.render.index import PublishRecord
from boxsmith._internal.render.outputs import Change
from boxsmith._internal.render.pipeline import check_project
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings

__all__ = ["PublishPlan", "PublishResult", "PublishUnit", "plan_publish"]


@dataclass(frozen=True, slots=True)
class PublishUnit:
    """One rendered version to publish; the commands and sizes are its e2b.toml's."""

    template: Template
    folder: Path  # generated/<name>/<version>/, the build context
    name: str  # `<name>:<version tag>`, E2B's name of the build
    tags: tuple[str, ...]  # the spec's extra tags
    start_cmd: str | None
    ready_cmd: str | None
    cpu_count: int | None
    memory_mb: int | None
    content_hash: str

    @property
    def ref(self) -> str:
        """`name:version`."""
        return self.template.ref


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What happened to one version: `published`, `unchanged`, `failed` or `refused`."""

    name: str
    version: str
    target: str
    status: str
    seconds: float = 0.0
    template_id: str = ""
    build_id: str = ""
    tags: tuple[str, ...] = ()
    step: str = ""  # the failing step (failed), e.g. `build step 5 (RUN make)`
    error: str = ""
    hint: str = ""
    log: str = ""  # the build log file, as users see it
    tail: tuple[str, ...] = ()  # its last lines that say something (failed)
    retries: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain mapping for `--json` output."""
        data = asdict(self)
        data.update(seconds=round(self.seconds, 3), tags=list(self.tags), tail=list(self.tail))
        return data


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What the checks before any network found: versions to build, versions already settled
    (unchanged or refused), or drift (then nothing else)."""

    units: tuple[PublishUnit, ...] = ()
    settled: tuple[PublishResult, ...] = ()
    drift: tuple[Change, ...] = ()
    gone: tuple[str, ...] = ()  # refs recorded on the target whose build it no longer has


def plan_publish(
    settings: Settings, names: Sequence[str], labels: Sequence[str], target: str
) -> PublishPlan:
    """Check the selected versions before any network (see the module doc).

    Raises:
        SpecError: a published version whose spec would now render other content.
    """
    report = check_project(settings, names, labels)
    if report.drift:
        return PublishPlan(drift=report.drift)
    index = report.generation.index
    live = live_builds(settings, target)
    units: list[PublishUnit] = []
    settled: list[PublishResult] = []
    gone: list[str] = []
    for rendered in report.generation.rendered:
        entry = index.entry(rendered.template.name, rendered.template.version)
        assert entry is not None  # no drift: the index has every rendered version
        own = entry.records(target, live)
        if own:
            settled.append(_settled(rendered.template, target, own, entry.content_hash))
            continue
        if entry.records(target):
            gone.append(rendered.template.ref)
        units.append(_unit(settings, rendered, entry.content_hash))
    return PublishPlan(tuple(units), tuple(settled), gone=tuple(gone))


def _settled(
    template: Template, target: str, own: list[PublishRecord], content_hash: str
) -> PublishResult:
    """`unchanged` when every record of this target has the content hash, else `refused`."""
    last = own[-1]
    ids: dict[str, Any] = {
        "template_id": last.template_id,
        "build_id": last.build_id,
        "tags": tuple(last.tags),
    }
    if all(p.content_hash == content_hash for p in own):
        return PublishResult(template.name, template.version, target, "unchanged", **ids)
    return PublishResult(
        template.name,
        template.version,
        target,
        "refused",
        error=f"{template.ref} was published to {target} with content {last.content_hash}, "
        f"but it is now {content_hash}",
        hint="a published version is immutable: bump the version",
        **ids,
    )


def _unit(settings: Settings, rendered: Rendered, content_hash: str) -> PublishUnit:
    template = rendered.template
    toml = tomllib.loads(rendered.file(TOML).content.decode())
    tag = version_tag(template.version)
    return PublishUnit(
        template=template,
        folder=settings.generated_dir / rendered.folder,
        name=f"{template.name}:{tag}",
        tags=tuple(t for t in template.spec.tags if t != tag),
        start_cmd=_text(toml.get("start_cmd")),
        ready_cmd=_text(toml.get("ready_cmd")),
        cpu_count=_number(toml.get("cpu_count")),
        memory_mb=_number(toml.get("memory_mb")),
        content_hash=content_hash,
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
