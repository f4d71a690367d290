"""Channels: the tag (default `stable`) that consumers pin, as in
`Sandbox.create("nextjs-developer:stable")`, and that boxsmith moves between the published
versions of a template.

A sandbox smoke run moves it to a version whose checks pass (`smoke/sandbox_run.py`); promote and
rollback move it by hand: `promote` to a chosen version (default: the spec's current one),
`rollback` to the newest published version older than the one the channel points at now. Only
versions published to the target (generated/index.json, builds the target still has) count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from boxsmith._internal.publish.targets import PublishTarget, connect, live_builds
from boxsmith._internal.render.index import INDEX_FILE, VersionEntry, load_index
from boxsmith._internal.spec.catalog import Template, load_catalog
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = ["DEFAULT_CHANNEL", "ChannelPlan", "Move", "assign", "plan_moves", "semver_key"]

DEFAULT_CHANNEL = "stable"

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$")


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key following semver precedence (a pre-release sorts before its release)."""
    match = _SEMVER.match(version)
    if match is None:
        return (-1, version)
    major, minor, patch, pre = match.groups()
    pre_key: tuple[Any, ...] = (
        (1,)
        if pre is None
        else (
            0,
            *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")),
        )
    )
    return (int(major), int(minor), int(patch), pre_key)


def assign(target: PublishTarget, name: str, version: str, channel: str) -> None:
    """Point `name`'s `channel` tag at its published `version` on `target`."""
    from e2b import Template  # the SDK takes about 0.5 s to import: only when a tag moves

    Template.assign_tags(f"{name}:{version_tag(version)}", [channel], **target.params)


@dataclass(frozen=True, slots=True)
class Move:
    """One channel move: `name`'s channel to `version`, from `was` (None: from no version
    boxsmith published)."""

    name: str
    version: str
    was: str | None


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """The moves of one promote or rollback, all decided before the first tag moves."""

    channel: str
    moves: list[Move] = field(default_factory=list)
    target: PublishTarget | None = None  # connected once a template has a published version

    def apply(self, move: Move) -> None:
        """Move the channel on the target as `move` says."""
        assert self.target is not None  # a move exists only once the target is connected
        assign(self.target, move.name, move.version, self.channel)


def plan_moves(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    action: str,
    target: str,
    channel: str,
    version: str | None,
    err: TextIO,
) -> ChannelPlan:
    """Where `channel` goes for each selected template (`action`: promote or rollback); a
    UsageError when a template has nothing to move to, before anything moves. Asks the target
    where the channel points now."""
    templates = load_catalog(settings).select(names, labels)
    if version is not None and len(templates) != 1:
        raise UsageError("--version needs exactly one template", "name one template")
    path = settings.generated_dir / INDEX_FILE
    index = load_index(path, settings.display(path))
    live = live_builds(settings, target)
    remote: PublishTarget | None = None
    moves: list[Move] = []
    for template in templates:
        published = {
            v: entry
            for v, entry in index.templates.get(template.name, {}).items()
            if entry.records(target, live)
        }
        if not published:
            raise UsageError(
                f"{template.name} has no version published to {target}",
                f"run `boxsmith publish --target {target} {template.name}` first",
            )
        if remote is None:
            remote = connect(settings, target, err=err)
        build = _channel_build(remote, template.name, channel)
        current = next(
            (
                v
                for v, entry in published.items()
                for p in entry.records(target, live)
                if build is not None and p.build_id == build
            ),
            None,
        )
        if action == "promote":
            wanted = _promoted(template, version, published, target)
        else:
            wanted = _rolled_back(template, published, current, target, channel)
        moves.append(Move(template.name, wanted, current))
    return ChannelPlan(channel, moves, remote)


def _channel_build(remote: PublishTarget, name: str, channel: str) -> str | None:
    """The build id that `name`'s `channel` tag points at on `remote`; None: no such tag."""
    from e2b import Template  # the SDK takes about 0.5 s to import: only when tags are read

    tags = Template.get_tags(name, **remote.params)
    return next((str(t.build_id) for t in tags if t.tag == channel), None)


def _promoted(
    template: Template, version: str | None, published: dict[str, VersionEntry], target: str
) -> str:
    wanted = version or template.version
    if wanted not in published:
        raise UsageError(
            f"{template.name}:{wanted} is not published to {target}",
            f"publish it first, or pick one of {', '.join(sorted(published))}",
        )
    return wanted


def _rolled_back(
    template: Template,
    published: dict[str, VersionEntry],
    current: str | None,
    target: str,
    channel: str,
) -> str:
    if current is None:
        raise UsageError(
            f"{template.name}:{channel} points at no version boxsmith published",
            f"promote one first: `boxsmith promote {template.name} --target {target}`",
        )
    older = sorted((v for v in published if semver_key(v) < semver_key(current)), key=semver_key)
    if not older:
        raise UsageError(
            f"{template.name}:{channel} is at {current}, the oldest published version",
            "there is nothing older to roll back to",
        )
    return older[-1]
