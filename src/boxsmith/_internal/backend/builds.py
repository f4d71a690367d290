"""Template builds v2: the e2b SDK's build request as a Docker image, built as E2B would build it.

The SDK asks for a build (`POST /v3/templates`), uploads one tar (gzipped by default) per COPY step
whose files the backend lacks, then posts the steps (`POST /v2/templates/{id}/builds/{b}`),
validated in `build_request`. `run_build` makes sure the parity base of the request's base image
exists (`boxsmith._internal.build.parity.parity_base`), writes the Dockerfile
(`boxsmith._internal.build.e2b_dockerfile`), packs it with the uploads into one build context
(`build_context`: each COPY step's files in the step's folder) and builds it on the legacy
builder, turning Docker's output into E2B's log entries and a failure into E2B's `reason` (the
step and its message). A local proof build of the same steps (`boxsmith build` of the version a
publish sends) writes the same Dockerfile with the same files at the same paths, so the
engine's cache answers this build with the proof build's layers and builds nothing again.

A template's ENV is build-time only, as on E2B: the names it sets (and the base image's values
for them) are recorded in the image label `buildenv.LABEL`, and sandbox commands run after
ready do not see them (`boxsmith._internal.docker.buildenv`). Known differences: ENV values get
Docker's `$VAR` substitution, not a shell's; RUN uses a non-login bash (E2B: `bash -l`, whose
/etc/profile would reset PATH); start and ready commands are run by the caller when a sandbox
starts. docs/backend.md says more.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from boxsmith._internal.backend.build_request import BuildRequest, BuildStep, short
from boxsmith._internal.backend.build_uploads import UploadStore
from boxsmith._internal.build.e2b_dockerfile import (
    BASE,
    DEFAULT_USER,
    DEFAULT_WORKDIR,
    FINALIZE,
    StepOrigin,
    copy_dir,
    dockerfile_for,
    static_prefix,
)
from boxsmith._internal.build.parity import Parity, parity_base
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.client import BuildFailed, Engine
from boxsmith.errors import BoxsmithError

__all__ = ["LogEntry", "StepFailed", "build_context", "run_build"]

DOCKERFILE = "Dockerfile"  # its name in the build context; the uploads are in copy-<step>/
_STEP_LINE = re.compile(r"^Step (\d+)/\d+ : ")
_NONZERO = re.compile(r"returned a non-zero code: (\d+)")
_NO_USER = re.compile(r"unable to find user ([^:\s]+): no matching entries in passwd file")
_NOISE = re.compile(r"^ ---> |^Removing intermediate container |^Successfully (built|tagged) ")


class StepFailed(BoxsmithError):
    """A build failed; `step` is E2B's `reason.step`: "base", "finalize" or "1", "2", ...

    Attributes:
        step: the failing step.
        tail: the last lines of build output.
    """

    def __init__(self, message: str, step: str, *, tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.step = step
        self.tail = tail


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One build log line as the status endpoint reports it (level: debug|info|warn|error)."""

    timestamp: datetime
    level: str
    message: str
    step: str | None = None


# -- the build context ---------------------------------------------------------------------------


def _member_path(name: str) -> str | None:
    normalized = posixpath.normpath(name)
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../"):
        return None
    return normalized


def _add_upload(tar: tarfile.TarFile, uploads: UploadStore, step: BuildStep, folder: str) -> None:
    """Unpack the upload of COPY `step` into `folder` of `tar`. The step's mode goes on what
    E2B's copy script chmods (the file, or the directory and everything under it), here in the
    build context, since the legacy builder has no `COPY --chmod`."""
    top = tarfile.TarInfo(folder)
    top.type, top.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(top)
    base = static_prefix(step.arg(0))
    mode = int(step.arg(3), 8) & 0o7777 if step.arg(3) else None
    with (
        uploads.open(str(step.files_hash)) as stream,
        tarfile.open(fileobj=stream, mode="r|") as src,
    ):
        for member in src:
            name = _member_path(member.name)
            if name is None or name == ".":
                continue  # the SDK writes neither; nothing outside the folder either way
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.mode, info.mtime, info.type = member.mode, member.mtime, member.type
            in_scope = base in (".", name) or name.startswith(base + "/")
            if mode is not None and in_scope and (member.isreg() or member.isdir()):
                info.mode = mode  # E2B: chmod (-R) on the copied file or directory
            if member.isreg():
                info.size = member.size
                tar.addfile(info, src.extractfile(member))
            elif member.isdir():
                tar.addfile(info)
            elif member.issym():
                info.linkname = member.linkname
                tar.addfile(info)
            elif member.islnk() and (target := _member_path(member.linkname)) is not None:
                info.linkname = f"{folder}/{target}"
                tar.addfile(info)


def build_context(request: BuildRequest, uploads: UploadStore, dockerfile: str) -> BinaryIO:
    """An uncompressed tar of `dockerfile` and each COPY step's upload unpacked under its folder.

    The tar is spooled to a temporary file next to the uploads (closed by the caller); uploads
    are streamed member by member.

    Raises:
        StepFailed: an upload is missing or is not a readable tar.
    """
    out = tempfile.TemporaryFile(dir=uploads.root, prefix=".context-")  # noqa: SIM115 - returned
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = dockerfile.encode()
            info = tarfile.TarInfo(DOCKERFILE)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
            for number, step in enumerate(request.steps, 1):
                if step.type != "COPY":
                    continue
                try:
                    _add_upload(tar, uploads, step, copy_dir(str(number)))
                except FileNotFoundError as exc:
                    raise _missing(number, step) from exc
                except (tarfile.TarError, OSError, EOFError) as exc:
                    raise StepFailed(
                        f"step {number} ({step.title()}) failed: its upload "
                        f"{step.files_hash} is not a readable tar archive: {exc}",
                        str(number),
                    ) from exc
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def _check_uploads(request: BuildRequest, uploads: UploadStore) -> None:
    """StepFailed for the first COPY step whose files were never uploaded."""
    for number, step in enumerate(request.steps, 1):
        if step.type == "COPY" and not uploads.has(str(step.files_hash)):
            raise _missing(number, step)


def _missing(number: int, step: BuildStep) -> StepFailed:
    return StepFailed(
        f"step {number} ({step.title()}) failed: its files ({step.files_hash}) were never "
        "uploaded; build again so the SDK uploads them",
        str(number),
    )


# -- the build -----------------------------------------------------------------------------------

_parity_locks: dict[str, threading.Lock] = {}
_parity_guard = threading.Lock()


class _Tracker:
    """Turns build output into log entries and a failure into E2B's reason."""

    def __init__(
        self, origins: list[StepOrigin], total: int, log: Callable[[LogEntry], None]
    ) -> None:
        self.origins, self.total, self.log = origins, total, log
        self.index = -1
        self.step = BASE

    def emit(self, level: str, message: str, step: str) -> None:
        self.log(LogEntry(datetime.now(UTC), level, message, step))

    @property
    def origin(self) -> StepOrigin:
        if 0 <= self.index < len(self.origins):
            return self.origins[self.index]
        if self.index < 0:  # nothing ran yet: the base
            return self.origins[0]
        return StepOrigin(FINALIZE, "LABEL", "finalize")  # the labels step the engine adds

    def line(self, line: str) -> None:
        match = _STEP_LINE.match(line)
        if match:
            self.index = int(match.group(1)) - 1
            origin = self.origin
            if origin.step != self.step:
                self.step = origin.step
                label = f"builder {origin.step}/{self.total}" if origin.step.isdigit() else None
                self.emit("info", f"[{label or origin.step}] {origin.title}", origin.step)
            self.emit("debug", line, origin.step)
        elif line.strip():
            self.emit("debug" if _NOISE.match(line) else "info", line, self.step)

    def failure(self, exc: BuildFailed) -> StepFailed:
        origin = self.origin
        reason = exc.reason or exc.message
        unknown = _NO_USER.search(reason)
        if unknown and origin.command:  # E2B's envd refuses the user before running anything
            return StepFailed(
                f"failed to run command '{short(origin.command, 200)}': command failed: "
                f"unauthenticated: invalid username: '{unknown.group(1)}'",
                origin.step,
                tail=exc.tail,
            )
        code = _NONZERO.search(reason)
        if code and origin.command:
            reason = (
                f"The command '{short(origin.command, 200)}' returned a non-zero code: "
                f"{code.group(1)}"
            )
        if origin.step.isdigit():
            message = f"step {origin.step} ({origin.title}) failed: {reason}"
        else:
            message = f"{origin.step} ({origin.title}) failed: {reason}"
        return StepFailed(message, origin.step, tail=exc.tail)


def _parity(
    engine: Engine,
    base: str,
    *,
    title: str,
    mirrors: Mapping[str, str],
    ca: bytes | None,
    pull_timeout: int,
    tracker: _Tracker,
) -> Parity:
    with _parity_guard:
        lock = _parity_locks.setdefault(base, threading.Lock())
    try:
        with lock:  # one build of a parity base at a time; the others then find it
            parity = parity_base(
                engine,
                base,
                mirrors=mirrors,
                ca=ca,
                pull_timeout=pull_timeout,
                log=lambda line: tracker.emit("info", line, BASE),
                on_line=lambda line: tracker.emit("debug", line, BASE) if line.strip() else None,
            )
    except BoxsmithError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise StepFailed(f"base ({title}) failed: {exc.message}{hint}", BASE) from exc
    for note in parity.notes:
        tracker.emit("info", note, BASE)
    return parity


def run_build(
    engine: Engine,
    request: BuildRequest,
    *,
    image_ref: str,
    labels: Mapping[str, str],
    uploads: UploadStore,
    mirrors: Mapping[str, str],
    ca: bytes | None,
    log: Callable[[LogEntry], None],
    template_image: str | None = None,
    pull_timeout: int = 20,
) -> str:
    """Build `request` into `image_ref`; returns the image id.

    Args:
        engine: an entered Engine.
        request: the parsed build request.
        image_ref: the tag to build.
        labels: labels for the image.
        uploads: where the COPY steps' uploads are.
        mirrors: the resolved mirror map (`boxsmith._internal.build.base_images.resolve_mirrors`).
        ca: the host CA bundle to trust during the build, or None.
        log: receives one entry per build output line; a step's first line says which step.
        template_image: for `fromTemplate`, the image of that template's build to start from.
        pull_timeout: seconds to wait for a registry when the base image is not local.

    Raises:
        StepFailed: with E2B's step ("base", "finalize" or the step number) and message.
    """
    title = f"FROM {request.from_image or request.from_template}"
    tracker = _Tracker([StepOrigin(BASE, "FROM", title)], len(request.steps), log)
    tracker.emit("info", f"[base] {title}", BASE)
    base = request.from_image or template_image
    if base is None:
        raise StepFailed(f"base ({title}) failed: that template has no image", BASE)
    _check_uploads(request, uploads)
    parity = _parity(
        engine,
        base,
        title=title,
        mirrors=mirrors,
        ca=ca,
        pull_timeout=pull_timeout,
        tracker=tracker,
    )
    dockerfile, tracker.origins, label = _dockerfile(
        engine, request, base, parity.tag, ca=ca is not None
    )
    with build_context(request, uploads, dockerfile) as context:
        try:
            return engine.build(
                context,
                image_ref,
                labels={**labels, buildenv.LABEL: label},
                dockerfile=DOCKERFILE,
                on_line=tracker.line,
            )
        except BuildFailed as exc:
            raise tracker.failure(exc) from exc


def _dockerfile(
    engine: Engine, request: BuildRequest, base: str, parity_tag: str, *, ca: bool
) -> tuple[str, list[StepOrigin], str]:
    """The Dockerfile of `request` on the parity base, its instructions' origins, and the
    image's `buildenv` label."""
    user, workdir = DEFAULT_USER, DEFAULT_WORKDIR
    inherited: dict[str, str | None] = {}
    if request.from_template:  # a child keeps its parent's user and workdir unless it sets them
        config = engine.image_config(base)
        user = str(config.get("User") or user)
        workdir = str(config.get("WorkingDir") or workdir)
        inherited = buildenv.parse(config.get("Labels"))  # and its ENV stays build-time only
    text, origins = dockerfile_for(
        request.steps,
        title=f"FROM {request.from_image or request.from_template}",
        base_ref=parity_tag,
        ca=ca,
        force=request.force,
        user=user,
        workdir=workdir,
    )
    names = [k for step in request.steps if step.type == "ENV" for k in step.args[::2]]
    base_env = buildenv.config_env(engine.image_config(parity_tag))
    return text, origins, buildenv.label_value(names, base_env, inherited)
