"""`generated/index.json`: the record of every rendered template version and its publishes.

For each `name` and `version`: the spec file, the resolved spec's hash, the content hash of the
rendered folder, its files and the hash of each as written (`hashes`, to tell a hand edit from a
render), and the publish records (added by `boxsmith publish`). A version with a publish record
is immutable: rendering other content into it is refused. The files listed here are the only
ones boxsmith ever deletes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Container
from pathlib import Path
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from boxsmith._internal.render.outputs import write_atomic
from boxsmith.errors import UsageError

__all__ = [
    "INDEX_FILE",
    "Index",
    "PublishRecord",
    "VersionEntry",
    "load_index",
    "mark_verified",
]

INDEX_FILE = "index.json"
INDEX_SCHEMA = 1


class PublishRecord(BaseModel):
    """One successful publish of a version to a target."""

    model_config = ConfigDict(extra="allow")

    target: str
    template_id: str
    build_id: str
    tags: list[str] = Field(default_factory=list)
    published_at: str
    content_hash: str

    @property
    def verified(self) -> str | None:
        """When a sandbox of this build first passed its smoke checks (`verified_at`), or None.

        An extra field, written only once it is true, so older records read the same."""
        value = (self.model_extra or {}).get("verified_at")
        return str(value) if value else None


class VersionEntry(BaseModel):
    """One rendered template version."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    spec_hash: str
    content_hash: str
    files: list[str]
    # rel -> `pipeline.file_hash` of what render wrote; empty in indexes written before it
    # (and then left out of the JSON, so such an index reads and writes back unchanged)
    hashes: dict[str, str] = Field(default_factory=dict)
    publishes: list[PublishRecord] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_empty_hashes(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.hashes:
            data.pop("hashes", None)
        return data

    @property
    def published(self) -> bool:
        """Whether any target has this version."""
        return bool(self.publishes)

    def records(self, target: str, live: Container[str] | None = None) -> list[PublishRecord]:
        """The publish records of `target`, oldest first; with `live`, only those whose build
        the target still has (see `targets.live_builds`)."""
        return [
            p for p in self.publishes if p.target == target and (live is None or p.build_id in live)
        ]

    def primary_publish(self) -> PublishRecord | None:
        """The record whose ids go into e2b.toml: E2B cloud first, else the latest."""
        cloud = [p for p in self.publishes if p.target == "e2b"]
        chosen = cloud or self.publishes
        return chosen[-1] if chosen else None


class Index(BaseModel):
    """The whole index."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(INDEX_SCHEMA, alias="schema")
    templates: dict[str, dict[str, VersionEntry]] = Field(default_factory=dict)

    def entry(self, name: str, version: str) -> VersionEntry | None:
        """The entry of `name` at `version`, if any."""
        return self.templates.get(name, {}).get(version)

    def dumps(self) -> bytes:
        """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
        data: Any = self.model_dump(mode="json", by_alias=True, exclude_defaults=False)
        return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def load_index(path: Path, display: str) -> Index:
    """Read the index, or an empty one when the file does not exist yet."""
    if not path.is_file():
        return Index()
    try:
        return Index.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(
            f"{display} is not a valid boxsmith index ({where}: {first['msg']})",
            "restore it from git (`git checkout -- generated/index.json`); it is written by "
            "boxsmith, not by hand",
        ) from exc


class Versioned(Protocol):
    """Anything with a template name and version (a catalog Template)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


_WRITE = threading.Lock()  # smoke runs in threads; each write is read-modify-write


def mark_verified(
    path: Path, display: str, template: Versioned, *, target: str, build_id: str, at: str
) -> bool:
    """Record that a sandbox of build `build_id` passed its smoke checks (`verified_at`), once.

    Returns False when the index has no such publish record (nothing is written)."""
    with _WRITE:
        index = load_index(path, display)
        entry = index.entry(template.name, template.version)
        for i, record in enumerate(entry.publishes if entry else []):
            if record.target == target and record.build_id == build_id:
                if record.verified:
                    return True
                assert entry is not None
                entry.publishes[i] = PublishRecord.model_validate(
                    {**record.model_dump(), "verified_at": at}
                )
                write_atomic(path, index.dumps())
                return True
    return False
