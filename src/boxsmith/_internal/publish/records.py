"""What publish writes: the content tag of a build, the marker of a build in flight, the record.

Every build also gets a content tag (`content-<hash>`): how a later publish tells whether the
build a version's tag points at holds the content it would publish. The build a publish starts
is remembered in `.boxsmith/publish/` until it is recorded: E2B has no way to cancel a build and
tags only a finished one, so the next publish waits for an interrupted publish's build instead
of starting another. A finished build is recorded under the run's lock: a `PublishRecord`
appended to generated/index.json first (the source of truth: `render` re-stamps e2b.toml from
it), then e2b.toml re-stamped with the primary record (`stamp_publish`: tomlkit, comments kept).
The content hash is unchanged, so `check` still passes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boxsmith._internal.publish.plan import PublishUnit
from boxsmith._internal.publish.targets import PublishTarget
from boxsmith._internal.render import TOML
from boxsmith._internal.render.folder import stamp_publish
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index
from boxsmith._internal.render.outputs import write_atomic
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings

__all__ = [
    "CONTENT_TAG_PREFIX",
    "PendingBuild",
    "append_record",
    "content_tag",
    "new_record",
    "pending_path",
    "read_pending",
    "remember_build",
]

CONTENT_TAG_PREFIX = "content-"


def content_tag(content_hash: str) -> str:
    """The tag every build of this content also gets on the target: how publish later tells
    whether the build a version's tag points at holds the content it would publish."""
    return CONTENT_TAG_PREFIX + content_hash.removeprefix("sha256:")[:20]


# -- the build in flight --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingBuild:
    """A build a publish started and has not recorded yet, as its marker file says.

    `content_hash` and `api_url` are as read (any JSON value): a marker is trusted only where
    they equal this publish's.
    """

    template_id: str
    build_id: str
    content_hash: object
    api_url: object


def pending_path(settings: Settings, target: str, template: Template) -> Path:
    """The marker of the build the publish of `template` to `target` started."""
    name = f"publish-{target}-{template.name}-{template.version}.json"
    return settings.state_dir / "publish" / name


def remember_build(
    marker: Path, template_id: str, build_id: str, content_hash: str, api_url: str
) -> None:
    """Write the marker of a build just started."""
    data = {
        "template_id": template_id,
        "build_id": build_id,
        "content_hash": content_hash,
        "api_url": api_url,
    }
    write_atomic(marker, json.dumps(data, indent=2).encode() + b"\n")


def read_pending(marker: Path) -> PendingBuild | None:
    """The build the marker names; None when there is none or it cannot be read."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            return None
        return PendingBuild(
            str(data["template_id"]),
            str(data["build_id"]),
            data.get("content_hash"),
            data["api_url"],
        )
    except (OSError, ValueError, KeyError):
        return None  # not ours to trust: a new build


# -- the record -----------------------------------------------------------------------------------


def new_record(
    target: PublishTarget,
    unit: PublishUnit,
    template_id: str,
    build_id: str,
    tags: Sequence[object],
) -> PublishRecord:
    """The record of a finished build; `tags` are the target's (its content tag left out), or
    empty when it did not name them (then the version's and the spec's)."""
    data: dict[str, Any] = {
        "target": target.name,
        "template_id": template_id,
        "build_id": build_id,
        "tags": [
            str(t)
            for t in (tags or [version_tag(unit.template.version), *unit.tags])
            if not str(t).startswith(CONTENT_TAG_PREFIX)
        ],
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "content_hash": unit.content_hash,
    }
    if target.params.get("domain"):
        data["domain"] = str(target.params["domain"])
    return PublishRecord.model_validate(data)


def append_record(
    settings: Settings, unit: PublishUnit, record: PublishRecord, live: frozenset[str] | None
) -> bool:
    """Append `record` to generated/index.json, then re-stamp e2b.toml (see the module doc);
    False, writing nothing, when the index no longer holds this content of the version.

    Records of the same target whose build is not in `live` (the builds the target still has;
    None: unknown) are dropped. The caller holds the run's lock.
    """
    path = settings.generated_dir / INDEX_FILE
    index = load_index(path, settings.display(path))
    entry = index.entry(unit.template.name, unit.template.version)
    if entry is None or entry.content_hash != unit.content_hash:
        return False
    if live is not None:  # forget records of builds the target no longer has
        entry.publishes = [
            p for p in entry.publishes if p.target != record.target or p.build_id in live
        ]
    entry.publishes.append(record)
    write_atomic(path, index.dumps())
    primary = entry.primary_publish()
    assert primary is not None
    toml = unit.folder / TOML
    stamped = stamp_publish(toml.read_text(encoding="utf-8"), primary.model_dump())
    write_atomic(toml, stamped.encode())
    return True
