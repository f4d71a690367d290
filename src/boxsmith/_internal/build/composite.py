"""The Dockerfile a local build runs, its build key, and where a failing step came from.

A template is built FROM its parity base (`boxsmith._internal.build.parity`) with E2B's finalize
appended, never changing the generated files: after the template's steps, /home/user owned by
`user`, `chmod -R 777 /usr/local`, /code, then the template's final USER and WORKDIR again. The
host CA, when there is one, is trusted through build ARGs (`ca_args`).

The build key hashes the rendered folder, the parity layer and the parity base's image id (so a
new base image rebuilds); it is stored as a label on the template's image, beside the parity
base's id, so `smoke --local` recomputes it from the rendered files without building. e2b.toml
counts as rendered, before publish stamps its ids into it (as the content hash does): publishing
a version neither rebuilds its image nor makes its local smoke refuse it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from boxsmith._internal.build.parity import PARITY_VERSION, SCRIPT_IN_IMAGE, ca_args
from boxsmith._internal.build.rendered import BuildUnit
from boxsmith._internal.docker import buildenv
from boxsmith._internal.dockerfile.source_map import SourceMap
from boxsmith._internal.render import DOCKERFILE, TEMPLATE_PY, TOML
from boxsmith._internal.render.folder import render_template, unstamp_publish
from boxsmith.errors import BoxsmithError

__all__ = ["STEP_LINE", "Step", "build_key", "composite", "spec_position", "step_of"]

STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")  # the legacy builder's step header


@dataclass(frozen=True, slots=True)
class Step:
    """One instruction of the Dockerfile built.

    Attributes:
        text: the instruction.
        origin: `generated/x/1.0.0/e2b.Dockerfile:12`, or `parity layer (...)`.
        line: its line in e2b.Dockerfile (0 for the parity layer's).
    """

    text: str
    origin: str
    line: int = 0


def composite(unit: BuildUnit, parity: str, ca: bool) -> list[Step]:
    """The Dockerfile actually built: FROM the parity base, the template, then finalize."""
    name = f"{unit.display}/{DOCKERFILE}"
    steps: list[Step] = []
    for statement in unit.statements:
        origin = f"{name}:{statement.line}"
        if statement.keyword == "FROM":
            rest = statement.rest.strip().split(maxsplit=1)
            stage = f" {rest[1]}" if len(rest) > 1 else ""
            steps.append(Step(f"FROM {parity}{stage}", origin, statement.line))
            steps.extend(Step(line, "parity layer (host CA)") for line in ca_args(ca))
        else:
            steps.append(Step(f"{statement.keyword} {statement.args}", origin, statement.line))
    steps += [
        Step("USER root", "parity layer (finalize)"),
        Step(f"RUN sh {SCRIPT_IN_IMAGE} finalize", "parity layer (finalize)"),
        Step(f"USER {unit.user}", "parity layer (finalize)"),
        Step(f"WORKDIR {unit.workdir}", "parity layer (finalize)"),
    ]
    return steps


def _files_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == TEMPLATE_PY or "__pycache__" in rel.split("/"):
            continue  # the pair as code, and its bytecode: nothing the image is built from
        executable = int(os.access(path, os.X_OK))
        data = path.read_bytes()
        if rel == TOML:
            data = unstamp_publish(data.decode("utf-8", "replace")).encode()
        digest.update(f"{rel}\0{executable}\0".encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def build_key(unit: BuildUnit, parity_id: str) -> str:
    """What a template's image is built from: an image labelled with it needs no build."""
    return hashlib.sha256(
        "\0".join(
            [
                PARITY_VERSION,
                buildenv.LABEL,  # images from before that label are built again (cached)
                parity_id,
                _files_digest(unit.folder),
                unit.user,
                unit.workdir,
            ]
        ).encode()
    ).hexdigest()


def step_of(unit: BuildUnit, steps: list[Step], header: str) -> str:
    """`spec position (origin): instruction` of the step a `Step n/m : ...` header names;
    `header` itself when it names none of `steps`."""
    match = STEP_LINE.match(header)
    if not match or int(match.group(1)) > len(steps):
        return header
    step = steps[int(match.group(1)) - 1]
    spec = spec_position(unit, step.line) if step.line else ""
    where = f"{spec} ({step.origin})" if spec else step.origin
    return f"{where}: {step.text}"


def spec_position(unit: BuildUnit, line: int) -> str:
    """`file:line:col` of the spec key behind line `line` of the unit's e2b.Dockerfile."""
    try:
        rendered = render_template(unit.template)
        expected = rendered.file(DOCKERFILE).content.decode()
        actual = (unit.folder / DOCKERFILE).read_text(encoding="utf-8")
    except (BoxsmithError, OSError, UnicodeDecodeError):
        return ""
    instruction = SourceMap(expected, actual, rendered.instructions).instruction(line)
    if instruction is None or not instruction.source:
        return ""
    where = unit.template.position(*instruction.source)
    if where is None or where == unit.template.data.pos:
        return ""
    return f"{where.file}:{where.line}:{where.column}"
