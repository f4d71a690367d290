"""Template builds v2: the e2b SDK's build request as a Docker image, built as E2B would build it.

The SDK uploads one tar (gzipped by default) per COPY step and then posts the steps
(docs/backend.md), validated in `build_request.py`. `run_build`
writes one Dockerfile on boxsmith's parity base (`boxsmith._internal.build.parity.parity_base`) and
builds it on
the legacy builder, each step run the way E2B's build server runs it (e2b-dev/infra
`orchestrator/.../template/build/commands/*.go`):

- E2B's prefix `USER root` + `WORKDIR /`; its finalize (`parity.sh finalize`), then the last USER
  and WORKDIR set (`user` and `/home/user` when never set, the parent's for `fromTemplate`);
- RUN with bash (sh when the image has none) as the step's user, USER switched around it;
- COPY owned by the step's user or else the current one (`u` means `u:u`), sources resolved like
  E2B's copy script (the path before the first glob; a directory's contents are copied); a mode is
  set on the files in the build context (the legacy builder has no `COPY --chmod`), on what
  E2B's script chmods: the file, or the directory and everything under it;
- WORKDIR created by the current user (Docker alone would create it as root);
- USER creating a missing user with passwordless sudo;
- `force` (skip_cache) busts Docker's RUN cache from that step on with a unique ARG.

A template's ENV is build-time only, as on E2B: the names it sets (and the base image's values
for them) are recorded in the image label `buildenv.LABEL`, and sandbox commands run after
ready do not see them (`boxsmith._internal.docker.buildenv`). Known differences: ENV values get
Docker's `$VAR`
substitution, not a shell's; RUN uses a non-login bash (E2B: `bash -l`, whose /etc/profile
would reset PATH); start and ready commands are run by the caller when a sandbox starts.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import re
import shlex
import shutil
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from boxsmith._internal.backend.build_request import (
    FILES_HASH,
    LOGIN,
    BuildRequest,
    BuildRequestError,
    BuildStep,
    short,
)
from boxsmith._internal.build.parity import SCRIPT_IN_IMAGE, Parity, ca_args, parity_base
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.client import BuildFailed, Engine
from boxsmith._internal.dockerfile.syntax import env_quoted
from boxsmith.errors import BoxsmithError

__all__ = [
    "BuildRequest",
    "BuildRequestError",
    "BuildStep",
    "LogEntry",
    "StepFailed",
    "StepOrigin",
    "UploadStore",
    "build_context",
    "dockerfile_for",
    "run_build",
]

BASE, FINALIZE = "base", "finalize"  # E2B's reason.step for the phases around the steps
DEFAULT_USER, DEFAULT_WORKDIR = "user", "/home/user"
DOCKERFILE = "Dockerfile"  # its name in the build context; upload folders are hashes
SKIP_CACHE_ARG = "BOXSMITH_SKIP_CACHE"
_STEP_LINE = re.compile(r"^Step (\d+)/\d+ : ")
_NONZERO = re.compile(r"returned a non-zero code: (\d+)")
_NOISE = re.compile(r"^ ---> |^Removing intermediate container |^Successfully (built|tagged) ")
# E2B runs every command with /bin/bash; `sh -c RUNNER cmd` does so where bash exists.
_RUNNER = 'exec "$(command -v bash || echo /bin/sh)" -c "$0"'


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


# -- uploads -------------------------------------------------------------------------------------


class UploadStore:
    """The COPY steps' uploads by files hash, stored as received (gzipped tar or plain tar).

    The folder is the owner's only (0700) and so is every upload (0600): build contexts may
    hold whatever a template copies, secrets included.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, files_hash: str) -> Path:
        """Where the upload for `files_hash` lives; BuildRequestError for a malformed hash."""
        if not FILES_HASH.fullmatch(files_hash):
            raise BuildRequestError(f"invalid files hash {files_hash!r}")
        return self.root / files_hash

    def has(self, files_hash: str) -> bool:
        """Whether that upload is stored."""
        return self.path(files_hash).is_file()

    def save(self, files_hash: str, stream: BinaryIO) -> None:
        """Store an upload atomically (a temp file in the store, then a rename)."""
        with self.receiving(files_hash) as out:
            shutil.copyfileobj(stream, out, 1 << 20)

    @contextmanager
    def receiving(self, files_hash: str) -> Iterator[BinaryIO]:
        """A file (mode 0600) that becomes the upload for `files_hash` when the block ends
        cleanly; an exception in the block removes it, so nothing partial stays on disk."""
        target = self.path(files_hash)
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".upload-")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
            os.replace(temp, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def open(self, files_hash: str) -> io.BufferedIOBase:
        """The stored upload as a plain tar stream (gunzipped when it starts with gzip's magic)."""
        path = self.path(files_hash)
        with path.open("rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        return gzip.open(path, "rb") if gzipped else path.open("rb")


# -- the Dockerfile ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepOrigin:
    """Where one Dockerfile instruction comes from.

    Attributes:
        step: the SDK step number ("1" is the first step, as E2B's `reason.step`), or
            "base" / "finalize".
        instruction: the Dockerfile instruction.
        title: that step as E2B shows it (`RUN echo hi`, `FROM debian:bookworm-slim`).
        command: the shell command the instruction runs, named when it fails ("" for none).
    """

    step: str
    instruction: str
    title: str
    command: str = ""


@dataclass
class _Writer:
    step: str = BASE
    title: str = ""
    origins: list[StepOrigin] = field(default_factory=list)

    def add(self, instruction: str, command: str = "") -> None:
        self.origins.append(StepOrigin(self.step, instruction, self.title, command))

    def run(self, script: str, command: str) -> None:
        self.add(f"RUN {json.dumps(['/bin/sh', '-c', script])}", command)


def _static_prefix(src: str) -> str:
    """What E2B copies for `src`: its path up to the last `/` before a glob character
    (doublestar's SplitPattern on `src/`), normalized; "." for the whole upload."""
    pattern, split, index = src.rstrip("/") + "/", -1, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1
        elif char == "/":
            split = index
        elif char in "*?[{":
            break
        index += 1
    return posixpath.normpath(pattern[:split]) if split > 0 else "."


def _upload_dir(step: BuildStep) -> str:
    """The step's folder in the build context; the mode is in the name because the files hash
    does not cover it, and the files carry it."""
    mode = step.arg(3)
    return f"{step.files_hash}-{mode}" if mode else str(step.files_hash)


def _sh_quoted(text: str) -> str:
    """`text` in sh double quotes, `$VAR` expanded as E2B's `mkdir -p "<path>"` does."""
    return '"' + re.sub(r'([\\"`])', r"\\\1", text) + '"'


def _create_user(login: str) -> str:
    name, sudoers = shlex.quote(login), "/etc/sudoers.d/e2b-" + re.sub(r"[^\w-]", "_", login)
    return (
        f"id -u {name} >/dev/null 2>&1 || {{ if command -v useradd >/dev/null 2>&1; "
        f"then useradd -m -s /bin/bash {name}; else adduser -D {name}; fi; }}; "
        f"if [ -d /etc/sudoers.d ]; then echo '{login} ALL=(ALL:ALL) NOPASSWD: ALL' > {sudoers}"
        f" && chmod 0440 {sudoers}; fi; "
        f"if getent group sudo >/dev/null 2>&1; then usermod -aG sudo {name} || true; fi"
    )


def dockerfile_for(
    request: BuildRequest,
    *,
    base_ref: str,
    ca: bool,
    user: str = DEFAULT_USER,
    workdir: str = DEFAULT_WORKDIR,
    nonce: str | None = None,
) -> tuple[str, list[StepOrigin]]:
    """The Dockerfile of `request` and the origin of each of its instructions, in order.

    Args:
        request: the build request.
        base_ref: the parity base to build FROM.
        ca: add the ARGs that point tools at the parity base's host CA (`ca_args`).
        user, workdir: the final USER and WORKDIR when the steps set none.
        nonce: the value of the cache-busting ARG for `force` (default: a random one).
    """
    out = _Writer(title=f"FROM {request.from_image or request.from_template}")
    out.add(f"FROM {base_ref}")
    for line in [*ca_args(ca), "USER root", "WORKDIR /"]:
        out.add(line)
    bust = f"ARG {SKIP_CACHE_ARG}={nonce or uuid.uuid4().hex}"
    busted = request.force
    if busted:
        out.add(bust)
    current_user, current_dir = "root", "/"
    final_user, final_dir = user, workdir
    for number, step in enumerate(request.steps, 1):
        out.step, out.title = str(number), step.title()
        if step.force and not busted:
            out.add(bust)
            busted = True
        if step.type == "RUN":
            command, run_as = step.arg(0), step.arg(1) or current_user
            if run_as != current_user:
                out.add(f"USER {run_as}")
            out.add(f"RUN {json.dumps(['/bin/sh', '-c', _RUNNER, command])}", command)
            if run_as != current_user:
                out.add(f"USER {current_user}")
        elif step.type == "COPY":
            owner = step.arg(2) or current_user
            owner = owner if ":" in owner else f"{owner}:{owner}"
            base = _static_prefix(step.arg(0))
            source = _upload_dir(step) + ("" if base == "." else f"/{base}")
            out.add(f"COPY --chown={owner} {json.dumps([source, step.arg(1)])}")
        elif step.type == "ENV":
            pairs = zip(step.args[::2], step.args[1::2], strict=True)
            out.add("ENV " + " ".join(f"{key}={env_quoted(value)}" for key, value in pairs))
        elif step.type == "WORKDIR":
            path = step.arg(0)
            if current_user != "root":
                out.run(f"mkdir -p -- {_sh_quoted(path)}", f'mkdir -p "{path}"')
            out.add(f"WORKDIR {path}")
            current_dir = final_dir = posixpath.normpath(posixpath.join(current_dir, path))
        else:  # USER
            name = step.arg(0)
            login = name.split(":")[0]
            if login not in ("root", DEFAULT_USER) and LOGIN.fullmatch(login):
                if current_user != "root":
                    out.add("USER root")
                out.run(_create_user(login), f"create user {login}")
            out.add(f"USER {name}")
            current_user = final_user = name
    out.step, out.title = FINALIZE, f"finalize (user {final_user}, workdir {final_dir})"
    out.add("USER root")
    out.add(f"RUN sh {SCRIPT_IN_IMAGE} finalize")
    out.add(f"USER {final_user}")
    out.add(f"WORKDIR {final_dir}")
    return "\n".join(o.instruction for o in out.origins) + "\n", out.origins


# -- the build context ---------------------------------------------------------------------------


def _member_path(name: str) -> str | None:
    normalized = posixpath.normpath(name)
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../"):
        return None
    return normalized


def _add_upload(tar: tarfile.TarFile, uploads: UploadStore, step: BuildStep, folder: str) -> None:
    top = tarfile.TarInfo(folder)
    top.type, top.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(top)
    base = _static_prefix(step.arg(0))
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
            done: set[str] = set()
            for number, step in enumerate(request.steps, 1):
                folder = _upload_dir(step)
                if step.type != "COPY" or folder in done:
                    continue
                done.add(folder)
                try:
                    _add_upload(tar, uploads, step, folder)
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
    for number, step in enumerate(request.steps, 1):
        if step.type == "COPY" and not uploads.has(str(step.files_hash)):
            raise _missing(number, step)
    parity = _parity(
        engine,
        base,
        title=title,
        mirrors=mirrors,
        ca=ca,
        pull_timeout=pull_timeout,
        tracker=tracker,
    )
    user, workdir = DEFAULT_USER, DEFAULT_WORKDIR
    inherited: dict[str, str | None] = {}
    if request.from_template:  # a child keeps its parent's user and workdir unless it sets them
        config = engine.image_config(base)
        user = str(config.get("User") or user)
        workdir = str(config.get("WorkingDir") or workdir)
        inherited = buildenv.parse(config.get("Labels"))  # and its ENV stays build-time only
    dockerfile, tracker.origins = dockerfile_for(
        request, base_ref=parity.tag, ca=ca is not None, user=user, workdir=workdir
    )
    names = [k for step in request.steps if step.type == "ENV" for k in step.args[::2]]
    base_env = buildenv.config_env(engine.image_config(parity.tag))
    label = buildenv.label_value(names, base_env, inherited)
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
