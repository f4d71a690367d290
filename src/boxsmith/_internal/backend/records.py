"""The rows of the backend's state, as plain frozen values: templates, builds, build log
entries, sandboxes; and the UTC timestamps they carry (ISO 8601 with `Z` in the file).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "Build",
    "LogRow",
    "SandboxRow",
    "Template",
    "build_of",
    "from_iso_text",
    "iso_text",
    "now",
    "sandbox_of",
    "template_of",
]


def now() -> datetime:
    """The current time, UTC, to the millisecond."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def iso_text(when: datetime | None) -> str | None:
    """`when` as the state file keeps it (ISO 8601, `Z` for UTC); None stays None."""
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def from_iso_text(text: str | None) -> datetime | None:
    """The datetime of an `iso_text`; None stays None."""
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Template:
    """A template: a name (the E2B alias) with builds and tags."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Build:
    """One build of a template."""

    id: str
    template_id: str
    status: str  # waiting | building | ready | error
    created_at: datetime
    finished_at: datetime | None
    image: str
    cpu_count: int
    memory_mb: int
    start_cmd: str | None
    ready_cmd: str | None
    user: str
    workdir: str
    reason: str | None
    reason_step: str | None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One build log entry."""

    timestamp: datetime
    level: str
    message: str
    step: str | None


@dataclass(frozen=True, slots=True)
class SandboxRow:
    """A sandbox as recorded."""

    id: str
    template_id: str
    build_id: str
    alias: str
    container_id: str
    metadata: dict[str, str]
    started_at: datetime
    end_at: datetime
    cpu_count: int
    memory_mb: int
    user: str
    workdir: str
    state: str  # running | killed


def template_of(row: sqlite3.Row) -> Template:
    """The Template of a `templates` row."""
    return Template(row["id"], row["name"], from_iso_text(row["created_at"]) or now())


def build_of(row: sqlite3.Row) -> Build:
    """The Build of a `builds` row."""
    return Build(
        id=row["id"],
        template_id=row["template_id"],
        status=row["status"],
        created_at=from_iso_text(row["created_at"]) or now(),
        finished_at=from_iso_text(row["finished_at"]),
        image=row["image"],
        cpu_count=row["cpu_count"],
        memory_mb=row["memory_mb"],
        start_cmd=row["start_cmd"],
        ready_cmd=row["ready_cmd"],
        user=row["user"],
        workdir=row["workdir"],
        reason=row["reason"],
        reason_step=row["reason_step"],
        tags=list(json.loads(row["tags"])),
    )


def sandbox_of(row: sqlite3.Row) -> SandboxRow:
    """The SandboxRow of a `sandboxes` row."""
    metadata: Mapping[str, str] = json.loads(row["metadata"])
    return SandboxRow(
        id=row["id"],
        template_id=row["template_id"],
        build_id=row["build_id"],
        alias=row["alias"],
        container_id=row["container_id"],
        metadata=dict(metadata),
        started_at=from_iso_text(row["started_at"]) or now(),
        end_at=from_iso_text(row["end_at"]) or now(),
        cpu_count=row["cpu_count"],
        memory_mb=row["memory_mb"],
        user=row["user"],
        workdir=row["workdir"],
        state=row["state"],
    )
