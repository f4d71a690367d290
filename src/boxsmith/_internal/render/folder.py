"""Render one validated template into the bytes of its build context folder.

Deterministic to the byte: LF endings, no timestamps, files sorted, the header names the spec and
its hash. The content hash covers every file (path, executable bit, bytes) as rendered before any
publish record is stamped into e2b.toml, so publishing does not change it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

from boxsmith._internal.render import DOCKERFILE, TOML
from boxsmith._internal.render.instructions import Instruction, instructions
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.jinja_env import environment

__all__ = [
    "DOCKERFILE",
    "TOML",
    "Rendered",
    "RenderedFile",
    "content_hash",
    "render_template",
    "stamp_publish",
    "unstamp_publish",
]


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One file of a rendered build context."""

    rel: str
    content: bytes
    executable: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template's rendered build context."""

    template: Template
    files: tuple[RenderedFile, ...]
    instructions: tuple[Instruction, ...]
    content_hash: str

    @property
    def folder(self) -> str:
        """`<name>/<version>`, relative to the generated folder."""
        return f"{self.template.name}/{self.template.version}"

    def file(self, rel: str) -> RenderedFile:
        """The rendered file at `rel`."""
        return next(f for f in self.files if f.rel == rel)

    def with_file(self, replacement: RenderedFile) -> Rendered:
        """A copy with one file replaced (the content hash is kept: see the module doc)."""
        files = tuple(replacement if f.rel == replacement.rel else f for f in self.files)
        return Rendered(self.template, files, self.instructions, self.content_hash)


def _variant_note(template: Template) -> str:
    if not template.variant:
        return ""
    return " (matrix: " + ", ".join(f"{k}={v}" for k, v in template.variant.items()) + ")"


def _without_header(content: bytes) -> bytes:
    """The file minus its leading comment block (the generated-by header)."""
    lines = content.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith(b"#")), len(lines))
    return b"".join(lines[start:])


def content_hash(files: tuple[RenderedFile, ...]) -> str:
    """sha256 over every file's path, executable bit and bytes; for e2b.Dockerfile and e2b.toml
    without the header comments, so rewording a header does not count as changed content of a
    published version."""
    digest = hashlib.sha256()
    for f in files:
        body = _without_header(f.content) if f.rel in (DOCKERFILE, TOML) else f.content
        digest.update(f"{f.rel}\0{int(f.executable)}\0".encode())
        digest.update(hashlib.sha256(body).digest())
    return "sha256:" + digest.hexdigest()


def render_template(template: Template) -> Rendered:
    """Render e2b.Dockerfile, e2b.toml and the copied files of one template."""
    env = environment()
    steps = instructions(template)
    spec = template.spec
    # Plain values only: attribute access inside the sandbox is the slow part of rendering.
    context: dict[str, Any] = {
        "spec_file": template.spec_file,
        "spec_hash": template.spec_hash,
        "variant": _variant_note(template),
        "ref": template.ref,
        "instructions": [step.text() for step in steps],
        "template_name": spec.name,
        "start_cmd": spec.start_cmd,
        "ready_cmd": spec.ready_command(),
        "cpu_count": spec.resources.cpu_count,
        "memory_mb": spec.resources.memory_mb,
        "team_id": spec.team_id,
    }
    files = [
        RenderedFile(DOCKERFILE, env.get_template("e2b.Dockerfile.j2").render(context).encode()),
        RenderedFile(TOML, env.get_template("e2b.toml.j2").render(context).encode()),
    ]
    for item in template.context:
        with open(item.source, "rb") as handle:
            data = handle.read()
            executable = bool(os.fstat(handle.fileno()).st_mode & 0o111)
        files.append(RenderedFile(item.rel, data, executable))
    ordered = tuple(sorted(files, key=lambda f: f.rel))
    return Rendered(template, ordered, tuple(steps), content_hash(ordered))


_STAMPED = re.compile(r'^(?:template_id|build_id) = "[^"\n]*"\n', re.M)


def unstamp_publish(toml_text: str) -> str:
    """e2b.toml as rendered, before `stamp_publish` (which appends exactly these two lines)."""
    return _STAMPED.sub("", toml_text)


def stamp_publish(toml_text: str, record: dict[str, Any]) -> str:
    """Write a publish record's `template_id` and `build_id` into e2b.toml, keeping its comments
    and layout (tomlkit). The same function serves publish and re-render, so both agree."""
    import tomlkit  # only publish records need it

    document = tomlkit.parse(toml_text)
    for key in ("template_id", "build_id"):
        if record.get(key):
            document[key] = str(record[key])
    return tomlkit.dumps(document)
