"""The Dockerfile a local build runs, its build context, its build key, and where a failing step
came from.

A template is built as E2B's build server runs the steps the e2b SDK sends for its
e2b.Dockerfile (`e2b_steps.read_dockerfile`, then `e2b_dockerfile.dockerfile_for`), FROM its
parity base (`boxsmith._internal.build.parity`) with E2B's finalize appended, never changing the
generated files: after the template's steps, /home/user owned by `user`, `chmod -R 777
/usr/local`, /code, then the template's final USER and WORKDIR again. The host CA, when there is
one, is trusted through build ARGs (`ca_args`). Each COPY step's files go into the step's own
folder of the build context (`copy_dir`), with their modes, as the SDK uploads them: the local
backend's build of the published version is the same Dockerfile over the same files, which the
engine's cache answers with this build's layers (a file that changed misses the cache from its
COPY on, since the engine hashes the files' content, mode and path).

The build key hashes the rendered folder, the parity layer and the parity base's image id (so a
new base image rebuilds); it is stored as a label on the template's image, beside the parity
base's id, so `smoke --local` recomputes it from the rendered files without building. e2b.toml
counts as rendered, before publish stamps its ids into it (as the content hash does): publishing
a version neither rebuilds its image nor makes its local smoke refuse it.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import posixpath
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from boxsmith._internal.build.e2b_dockerfile import copy_dir, dockerfile_for, static_prefix
from boxsmith._internal.build.e2b_steps import BuildStep, read_dockerfile
from boxsmith._internal.build.parity import PARITY_VERSION
from boxsmith._internal.build.rendered import BuildUnit
from boxsmith._internal.docker import buildenv
from boxsmith._internal.dockerfile.source_map import SourceMap
from boxsmith._internal.render import DOCKERFILE, TEMPLATE_PY, TOML
from boxsmith._internal.render.folder import render_template, unstamp_publish
from boxsmith.errors import BoxsmithError

__all__ = [
    "DOCKERFILE_NAME",
    "STEP_LINE",
    "Composite",
    "Step",
    "build_context",
    "build_key",
    "composite",
    "spec_position",
    "step_of",
]

STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")  # the legacy builder's step header
DOCKERFILE_NAME = ".boxsmith.Dockerfile"  # in the build context, beside the copy-<n>/ folders
_GLOB = re.compile(r"[*?\[{]")


@dataclass(frozen=True, slots=True)
class Step:
    """One instruction of the Dockerfile built.

    Attributes:
        text: the instruction.
        origin: `generated/x/1.0.0/e2b.Dockerfile:12`, or `parity layer (...)`.
        line: its line in e2b.Dockerfile (0 for the parity layer's).
        shown: what a failure names: the e2b.Dockerfile instruction it runs ("": `text`).
    """

    text: str
    origin: str
    line: int = 0
    shown: str = ""


@dataclass(frozen=True, slots=True)
class Composite:
    """What a local build sends: the Dockerfile's instructions and the COPY steps by folder."""

    steps: list[Step]
    copies: dict[str, BuildStep]

    @property
    def dockerfile(self) -> str:
        """The Dockerfile's text."""
        return "\n".join(step.text for step in self.steps) + "\n"


def composite(unit: BuildUnit, parity: str, ca: bool) -> Composite:
    """The Dockerfile actually built: the SDK's steps of e2b.Dockerfile, as E2B runs them."""
    name = f"{unit.display}/{DOCKERFILE}"
    read = read_dockerfile((unit.folder / DOCKERFILE).read_text(encoding="utf-8"))
    _, origins = dockerfile_for(read.steps, title=f"FROM {read.from_image}", base_ref=parity, ca=ca)
    written = {s.line: f"{s.keyword} {s.args}" for s in unit.statements}
    steps: list[Step] = []
    for origin in origins:
        line = read.lines[int(origin.step) - 1] if origin.step.isdigit() else 0
        where = f"{name}:{line}" if line else f"parity layer ({origin.step})"
        steps.append(Step(origin.instruction, where, line, written.get(line, "")))
    copies = {
        copy_dir(str(number)): step
        for number, step in enumerate(read.steps, 1)
        if step.type == "COPY"
    }
    return Composite(steps, copies)


def _entry(tar: tarfile.TarFile, path: Path, name: str, mode: int | None) -> None:
    """One file, folder or symlink as the SDK's upload holds it (its own mode, `mode` when the
    step sets one), owned by root, with a fixed mtime (the engine's cache ignores mtimes)."""
    info = tarfile.TarInfo(name)
    info.mtime = 946684800
    st = path.lstat()
    info.mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        tar.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, info.mode if mode is None else mode
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.size, info.mode = st.st_size, info.mode if mode is None else mode
        with path.open("rb") as data:
            tar.addfile(info, data)


def _sources(folder: Path, src: str) -> dict[str, Path]:
    """What the SDK uploads for COPY `src`: the matches (a folder with all under it), by their
    path relative to `folder`."""
    if _GLOB.search(src):
        matches = glob.glob(src, root_dir=folder, recursive=True, include_hidden=True)
    else:
        matches = [src] if os.path.lexists(folder / src) else []
    found: dict[str, Path] = {}
    for match in matches:
        rel = posixpath.normpath(match)
        path = folder / rel
        if rel != ".":  # `COPY .`: the folder's contents, as the SDK uploads them
            found[rel] = path
        if path.is_dir() and not path.is_symlink():
            for inner in path.rglob("*"):
                found[inner.relative_to(folder).as_posix()] = inner
    return found


def build_context(unit: BuildUnit, plan: Composite) -> io.BytesIO:
    """The build context: the Dockerfile, and each COPY step's files in its folder laid out as
    the local backend lays out the SDK's upload (`boxsmith._internal.backend.builds`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = plan.dockerfile.encode()
        info = tarfile.TarInfo(DOCKERFILE_NAME)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
        for folder, step in plan.copies.items():
            top = tarfile.TarInfo(folder)
            top.type, top.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(top)
            base = static_prefix(step.arg(0))
            mode = int(step.arg(3), 8) & 0o7777 if step.arg(3) else None
            for rel, path in sorted(_sources(unit.folder, step.arg(0)).items()):
                in_scope = base in (".", rel) or rel.startswith(base + "/")
                _entry(tar, path, f"{folder}/{rel}", mode if in_scope else None)
    buffer.seek(0)
    return buffer


def _files_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == TEMPLATE_PY or "__pycache__" in rel.split("/"):
            continue  # the pair as code, and its bytecode: nothing the image is built from
        mode = path.lstat().st_mode  # copied with their modes (folders' too), as E2B does
        digest.update(f"{rel}\0{mode:o}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            data = path.read_bytes()
            if rel == TOML:
                data = unstamp_publish(data.decode("utf-8", "replace")).encode()
            digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def build_key(unit: BuildUnit, parity_id: str) -> str:
    """What a template's image is built from: an image labelled with it needs no build."""
    return hashlib.sha256(
        "\0".join(
            [
                PARITY_VERSION,
                _written(unit),
                buildenv.LABEL,  # images from before that label are built again (cached)
                parity_id,
                _files_digest(unit.folder),
                unit.user,
                unit.workdir,
            ]
        ).encode()
    ).hexdigest()


def _written(unit: BuildUnit) -> str:
    """The digest of the instructions written for `unit` (the parity base left out: its id is
    in the key): any change to how steps are written builds the image again."""
    steps = composite(unit, "<parity base>", ca=False).steps
    return hashlib.sha256("\n".join(step.text for step in steps).encode()).hexdigest()


def step_of(unit: BuildUnit, steps: list[Step], header: str) -> str:
    """`spec position (origin): instruction` of the step a `Step n/m : ...` header names;
    `header` itself when it names none of `steps`."""
    match = STEP_LINE.match(header)
    if not match or int(match.group(1)) > len(steps):
        return header
    step = steps[int(match.group(1)) - 1]
    spec = spec_position(unit, step.line) if step.line else ""
    where = f"{spec} ({step.origin})" if spec else step.origin
    return f"{where}: {step.shown or step.text}"


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
