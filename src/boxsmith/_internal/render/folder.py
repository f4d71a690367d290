"""Render one validated template into the bytes of its build context folder.

Deterministic to the byte: LF endings, no timestamps, files sorted, the header names the spec and
its hash. The content hash covers every file (path, executable bit, bytes) as rendered before any
publish record is stamped into e2b.toml, so publishing does not change it. It leaves out the
optional template.py (`template_py`): that file is a translation of e2b.Dockerfile and e2b.toml,
which the hash covers, into the SDK's builder code, not more of the template; so turning the
setting on or off, or a new boxsmith writing the code differently, is not new content of a
published (immutable) version, and its content tag stays the same.

The files in `templates/` render in one cached Jinja environment: sandboxed (expressions cannot
reach Python internals), StrictUndefined (a typo is an error, never an empty string) and
keep_trailing_newline (the templates control every byte). Spec strings render elsewhere, in the
bounded environment of `spec.jinja_env`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import jinja2
import tomlkit
from jinja2.sandbox import SandboxedEnvironment

from boxsmith._internal.dockerfile.source_map import Instruction
from boxsmith._internal.render import DOCKERFILE, TEMPLATE_PY, TOML, template_py
from boxsmith._internal.render.instructions import instructions
from boxsmith._internal.spec.catalog import Template
from boxsmith.errors import Issue, SpecError

__all__ = [
    "Rendered",
    "RenderedFile",
    "content_hash",
    "digest",
    "environment",
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


def digest(files: tuple[RenderedFile, ...]) -> str:
    """sha256 over every file's path, executable bit and bytes; for e2b.Dockerfile and e2b.toml
    without the header comments, so rewording a header does not count as changed content of a
    published version."""
    total = hashlib.sha256()
    for f in files:
        body = _without_header(f.content) if f.rel in (DOCKERFILE, TOML) else f.content
        total.update(f"{f.rel}\0{int(f.executable)}\0".encode())
        total.update(hashlib.sha256(body).digest())
    return "sha256:" + total.hexdigest()


def content_hash(files: tuple[RenderedFile, ...]) -> str:
    """The content hash of a version: `digest` of its files but template.py (see the module
    doc)."""
    return digest(tuple(f for f in files if f.rel != TEMPLATE_PY))


def _toml_value(value: Any) -> str:
    """A TOML literal for a string, integer or boolean.

    TOML basic strings take JSON's escapes for quotes, backslashes and control characters, but
    not its surrogate pairs (so non-ASCII stays literal) and they also forbid a raw DEL.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _comment(value: Any) -> str:
    """`value` for a `#` comment line: line breaks and control characters escaped, so a spec
    file name or matrix value cannot end the comment and start an instruction."""
    return _BREAKS.sub(lambda m: repr(m[0])[1:-1], str(value))


@functools.cache
def environment() -> SandboxedEnvironment:
    """The shared, cached environment of boxsmith's own output templates."""
    env = SandboxedEnvironment(
        loader=jinja2.PackageLoader("boxsmith", "_internal/render/templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["toml"] = _toml_value
    env.filters["comment"] = _comment
    env.globals.pop("lipsum", None)  # random text: rendering must be reproducible
    env.filters.pop("random", None)  # likewise a random pick
    return env


def render_template(template: Template, *, with_template_py: bool = False) -> Rendered:
    """Render e2b.Dockerfile, e2b.toml and the copied files of one template, and with
    `with_template_py` its template.py.

    Raises:
        SpecError: with `with_template_py`, a copied file that would be template.py.
    """
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
    if with_template_py:
        _check_room(template)
        rels = frozenset(f.rel for f in files)
        values = {**context, **template_py.context(template, steps, rels)}
        py = env.get_template("template.py.j2").render(values)
        files.append(RenderedFile(TEMPLATE_PY, py.encode()))
    ordered = tuple(sorted(files, key=lambda f: f.rel))
    return Rendered(template, ordered, tuple(steps), content_hash(ordered))


def _check_room(template: Template) -> None:
    """SpecError when a file the template copies would be template.py."""
    for (key, i), rel in template.copy_rel.items():
        if rel == TEMPLATE_PY:
            path = (key, i, "src") if key == "files" else (key, i, "copy", "src")
            where = template.position(*path) or template.data.pos
            raise SpecError(
                [
                    Issue(
                        where.file,
                        where.line,
                        where.column,
                        f"src lands on {TEMPLATE_PY}, the file template_py = true renders",
                        "rename the file, or turn template_py off in [tool.boxsmith]",
                        f"{key}[{i}]" + "".join(f".{p}" for p in path[2:]),
                    )
                ]
            )


_STAMPED = re.compile(r'^(?:template_id|build_id) = "[^"\n]*"\n', re.M)


def unstamp_publish(toml_text: str) -> str:
    """e2b.toml as rendered, before `stamp_publish` (which appends exactly these two lines)."""
    return _STAMPED.sub("", toml_text)


def stamp_publish(toml_text: str, record: dict[str, Any]) -> str:
    """Write a publish record's `template_id` and `build_id` into e2b.toml, keeping its comments
    and layout (tomlkit). The same function serves publish and re-render, so both agree."""
    document = tomlkit.parse(toml_text)
    for key in ("template_id", "build_id"):
        if record.get(key):
            document[key] = str(record[key])
    return tomlkit.dumps(document)
