"""The Docker engine boundary: every Docker call boxsmith makes goes through `Engine`.

`Engine` is a context manager. Entering it checks that an engine answers and speaks a recent enough
API (`EngineUnavailable`, exit 3, naming `scripts/docker-up`, when not); leaving it removes every
container it started, also after an exception or Ctrl-C. Everything it creates carries the label
`dev.boxsmith=1`; containers also carry a per-session label so a sweep finds them even when the
process was interrupted between creating and recording one. docker's and requests' exceptions are
translated into `EngineError` here and nowhere else, chained with `from`.

A process killed with kill -9 never leaves its `with` block. So an `Engine` made for a project
(`project=settings.project_id`) labels its containers with the project, and a container started
with a `lifetime` with its expiry (unix seconds): its command must end by then (the caller's
part, e.g. `sleep` as the main process) and docker then removes it (`auto_remove`). Entering such
an `Engine` also removes the project's containers past their expiry that are still there.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import socket
import tarfile
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, TextIO

import docker
import docker.errors
import requests
import requests.exceptions

from boxsmith.errors import BoxsmithError

__all__ = [
    "EXPIRES_LABEL",
    "LABEL",
    "MIN_API",
    "PROJECT_LABEL",
    "BuildFailed",
    "Engine",
    "EngineError",
    "EngineUnavailable",
    "ImageInfo",
    "RunResult",
    "split_ref",
]

LABEL = "dev.boxsmith"
SESSION_LABEL = "dev.boxsmith.session"
PROJECT_LABEL = "dev.boxsmith.project"  # settings.project_id of the project it was started for
EXPIRES_LABEL = "dev.boxsmith.expires"  # unix seconds after which it is removed on sight
MIN_API = "1.41"  # Docker 20.10, the engine Debian 12 ships as docker.io
_HINT = "run `scripts/docker-up` (as root on Debian it installs and starts dockerd)"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the legacy builder colours a step's stderr
_FOREIGN = (docker.errors.DockerException, requests.exceptions.RequestException)


class EngineError(BoxsmithError):
    """A Docker engine call failed (exit 3)."""


class EngineUnavailable(EngineError):
    """No Docker engine answers, or it is too old for boxsmith (exit 3)."""


class BuildFailed(EngineError):
    """`docker build` or an import failed (exit 3).

    Attributes:
        step: the last `Step n/m : INSTRUCTION` line before the failure ("" when unknown).
        tail: the last lines of build output.
        reason: the engine's error text.
    """

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        step: str = "",
        tail: tuple[str, ...] = (),
        reason: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.step = step
        self.tail = tail
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What boxsmith reads from `docker image inspect`."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    size: int


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of a command run to completion in a throwaway container."""

    exit_code: int
    stdout: str
    stderr: str


def split_ref(ref: str) -> tuple[str, str]:
    """`name:tag` -> (`name`, `tag`); the tag defaults to `latest` (a registry port is no tag)."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def _reason(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        text = str(exc.explanation)
    else:
        text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _text(data: object) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else ""


def _api_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@contextlib.contextmanager
def _translated(action: str, error: type[EngineError] = EngineError) -> Iterator[None]:
    """Re-raise docker's and requests' exceptions as boxsmith's, naming what was being done."""
    try:
        yield
    except _FOREIGN as exc:
        raise error(f"{action}: {_reason(exc)}", _HINT) from exc


class Engine:
    """One connection to a Docker engine, checked on entry and cleaned up on exit.

    Args:
        err: where to log each Docker call (default: nowhere).
        environ: environment to read DOCKER_HOST and friends from (default: `os.environ`).
        timeout: seconds to wait for one API response (a build step's output counts as one).
        project: the project's id (`Settings.project_id`): containers carry it, and entering
            removes the project's expired ones.
    """

    def __init__(
        self,
        *,
        err: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: int = 900,
        project: str | None = None,
    ) -> None:
        self._err = err
        self._environ = environ
        self._timeout = timeout
        self._project = project
        self._client: docker.DockerClient | None = None
        self._session = uuid.uuid4().hex[:12]
        self._streams: set[requests.Response] = set()
        self._aborted: weakref.WeakSet[requests.Response] = weakref.WeakSet()
        self._streams_lock = threading.Lock()
        self.version = ""
        self.api_version = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        environ = os.environ if self._environ is None else self._environ
        host = environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if host.startswith("unix://"):
            # Checked here first: docker-py leaks the socket of a refused unix connection.
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(5)
                try:
                    probe.connect(host.removeprefix("unix://"))
                except OSError as exc:
                    raise EngineUnavailable(
                        f"no Docker engine answers at {host}: {exc.strerror or exc}", _HINT
                    ) from exc
        try:
            client = docker.DockerClient.from_env(environment=self._environ, timeout=15)
            info = client.version()
        except _FOREIGN as exc:
            raise EngineUnavailable(
                f"no Docker engine answers at {host}: {_reason(exc)}", _HINT
            ) from exc
        self.version = str(info.get("Version", "?"))
        self.api_version = str(info.get("ApiVersion", "0"))
        if _api_tuple(self.api_version) < _api_tuple(MIN_API):
            client.close()
            raise EngineUnavailable(
                f"Docker engine {self.version} speaks API {self.api_version}; "
                f"boxsmith needs API {MIN_API} (Docker 20.10) or newer",
                "upgrade Docker, or run `scripts/docker-up` on a Debian 12 machine",
            )
        client.api.timeout = self._timeout
        self._client = client
        self._log(f"engine {self.version} (API {self.api_version})")
        if self._project is not None:
            try:
                self.sweep_expired()
            except EngineError as error:  # a sweep is housekeeping; the command goes on
                self._log(f"warning: could not sweep expired containers: {error.message}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is None:
            return
        try:
            for container_id in self.containers({SESSION_LABEL: self._session}):
                self._remove(container_id)
        except EngineError as error:  # never hide the exception that got us here
            self._log(f"warning: could not sweep this session's containers: {error.message}")
        finally:
            self._client.close()
            self._client = None

    @property
    def client(self) -> docker.DockerClient:
        """The docker SDK client, for callers that need calls `Engine` does not wrap (the local
        backend's envd shim: streaming exec, archives). Thread-safe."""
        return self._docker

    @property
    def session(self) -> dict[str, str]:
        """The label every container this Engine starts carries (and that `__exit__` sweeps)."""
        return {SESSION_LABEL: self._session}

    @property
    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            raise RuntimeError("Engine used outside its `with` block")
        return self._client

    def _log(self, line: str) -> None:
        if self._err is not None:
            self._err.write(f"docker: {line}\n")
            self._err.flush()

    # -- images ------------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo | None:
        """Inspect a local image; None when there is none by that reference."""
        with _translated(f"inspecting image {ref}"):
            try:
                image = self._docker.images.get(ref)
            except docker.errors.ImageNotFound:
                return None
            return ImageInfo(
                id=str(image.id),
                tags=tuple(image.tags),
                labels={str(k): str(v) for k, v in (image.labels or {}).items()},
                size=int(image.attrs.get("Size", 0)),
            )

    def image_config(self, ref: str) -> dict[str, object]:
        """The image's `Config` (User, WorkingDir, Env, Labels, ...); {} when there is none."""
        with _translated(f"inspecting image {ref}"):
            try:
                image = self._docker.images.get(ref)
            except docker.errors.ImageNotFound:
                return {}
            config = image.attrs.get("Config") or {}
            return dict(config) if isinstance(config, dict) else {}

    def pull(self, ref: str, *, timeout: int = 30) -> None:
        """Pull `ref`, giving up after `timeout` seconds without an answer."""
        self._log(f"pull {ref} (timeout {timeout}s)")
        name, tag = split_ref(ref)
        self._docker.api.timeout = timeout
        try:
            with _translated(f"pulling {ref}"):
                self._docker.images.pull(name, tag)
        finally:
            self._docker.api.timeout = self._timeout

    def tag(self, source: str, ref: str) -> None:
        """`docker tag source ref`."""
        self._log(f"tag {source} {ref}")
        name, tag = split_ref(ref)
        with _translated(f"tagging {source} as {ref}"):
            self._docker.images.get(source).tag(name, tag)

    def remove_image(self, ref: str) -> None:
        """`docker rmi ref` (untags when other tags remain); a missing image is no error."""
        self._log(f"rmi {ref}")
        with (
            _translated(f"removing image {ref}"),
            contextlib.suppress(docker.errors.ImageNotFound),
        ):
            self._docker.images.remove(ref)

    def import_tar(self, tar: Path, ref: str, changes: Sequence[str]) -> str:
        """`docker import --change ... tar ref`; returns the new image id."""
        self._log(f"import {tar.name} as {ref}")
        name, tag = split_ref(ref)
        with _translated(f"importing {tar} as {ref}", BuildFailed):
            self._docker.api.import_image_from_file(
                str(tar), repository=name, tag=tag, changes=list(changes)
            )
            return str(self._docker.images.get(ref).id)

    def build(
        self,
        context: Path | BinaryIO,
        ref: str,
        *,
        labels: Mapping[str, str],
        dockerfile: str | None = None,
        on_step: Callable[[str], None] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> str:
        """`docker build -t ref context` with labels; returns the image id.

        `context` is a folder, or an uncompressed tar stream of one (then `dockerfile` names the
        Dockerfile inside it). Intermediate containers are removed even when a step fails
        (`forcerm`). `on_step` is called with each `Step n/m : ...` line, `on_line` with every
        output line. A failing step raises `BuildFailed` with `step` and `tail` set.
        """
        self._log(f"build {ref}")
        tail: deque[str] = deque(maxlen=40)
        step = ""
        with _translated(f"building {ref}", BuildFailed):
            stream = self._build_stream(context, ref, {LABEL: "1", **labels}, dockerfile)
            pending = ""  # output arrives in pieces; a line is whole at its newline

            def emit(line: str) -> None:
                nonlocal step
                tail.append(line)
                if on_line is not None:
                    on_line(line)
                if line.startswith("Step "):
                    step = line
                    if on_step is not None:
                        on_step(line)

            try:
                for chunk in stream:
                    *lines, pending = (pending + str(chunk.get("stream", ""))).split("\n")
                    for line in lines:
                        emit(_ANSI.sub("", line).rstrip("\r"))
                    if "error" in chunk and pending:
                        emit(_ANSI.sub("", pending))
                        pending = ""
                    if "error" in chunk:
                        reason = _ANSI.sub("", str(chunk["error"])).strip()
                        raise BuildFailed(
                            f"building {ref} failed: {reason}",
                            "fix the failing step; the output above is its end",
                            step=step,
                            tail=tuple(tail),
                            reason=reason,
                        )
            except BaseException as exc:
                # On Ctrl-C (or a callback raising KeyboardInterrupt to cancel), closing the
                # connections makes the engine cancel the builds still running.
                if not isinstance(exc, Exception):
                    self.abort()
                raise
            finally:
                stream.close()
            return str(self._docker.images.get(ref).id)

    def _build_stream(
        self,
        context: Path | BinaryIO,
        ref: str,
        labels: Mapping[str, str],
        dockerfile: str | None,
    ) -> Generator[dict[str, object], None, None]:
        """POST /build and decode its stream, keeping the response so `abort` can cut it.

        docker-py's `api.build` hides the response; its parameters are the same as here.
        """
        api: Any = self._docker.api  # the private helpers docker-py's own build uses
        if isinstance(context, Path):
            body: BinaryIO = io.BytesIO()
            with tarfile.open(fileobj=body, mode="w") as tar:
                tar.add(str(context), arcname=".")
            body.seek(0)
        else:
            body = context
        params = {
            "t": ref,
            "rm": True,
            "forcerm": True,
            "pull": False,
            "dockerfile": dockerfile,
            "labels": json.dumps(dict(labels)),
        }
        response = api._post(
            api._url("/build"),
            data=body,
            params=params,
            headers={"Content-Type": "application/tar"},
            stream=True,
            timeout=None,
        )
        with self._streams_lock:
            self._streams.add(response)
        try:
            yield from api._stream_helper(response, decode=True)
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            if response not in self._aborted:
                raise
            raise BuildFailed(f"building {ref} was cancelled", "run it again") from exc
        finally:
            with self._streams_lock:
                self._streams.discard(response)
            response.close()
        if response in self._aborted:
            raise BuildFailed(f"building {ref} was cancelled", "run it again")

    def abort(self) -> None:
        """Cut every build stream in flight; the engine then cancels those builds.

        Safe to call from any thread; the client stays usable.
        """
        with self._streams_lock:
            streams = list(self._streams)
        for response in streams:
            self._aborted.add(response)
            raw: Any = response.raw
            with contextlib.suppress(Exception):
                raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)

    # -- containers --------------------------------------------------------------------------

    def run(
        self,
        image: str,
        command: Sequence[str],
        *,
        timeout: float = 120,
        environment: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> RunResult:
        """Run `command` in a new container of `image`, wait for it, and remove the container
        (a run killed before that leaves it to the next sweep, a minute past `timeout`)."""
        self._log(f"run {image}: {shlex.join(command)}")
        action = f"running `{shlex.join(command)}` in {image}"
        with _translated(action):
            container = self._docker.containers.create(
                image,
                list(command),
                labels=self._labels(timeout + 60),
                environment=dict(environment or {}),
                user=user or "",
                detach=True,
            )
        try:
            with _translated(action):
                container.start()
                try:
                    status = container.wait(timeout=timeout)
                except requests.exceptions.RequestException as exc:  # a read timeout
                    raise EngineError(
                        f"{action}: no exit within {timeout:g}s", "raise the timeout"
                    ) from exc
                stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
                stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
            return RunResult(int(status.get("StatusCode", -1)), stdout, stderr)
        finally:
            self._remove(str(container.id))

    def start_container(
        self,
        image: str,
        command: Sequence[str],
        *,
        labels: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        cpus: float | None = None,
        memory_mb: int | None = None,
        lifetime: float | None = None,
    ) -> str:
        """Create and start a long-running container of `image`; returns its id.

        It carries boxsmith's labels (and this session's, so leaving the `Engine` removes it)
        and docker's init as PID 1, which reaps the orphans background commands leave. With
        `lifetime` (seconds), `command` must end within it: the container is labelled with its
        expiry and removed by docker when it ends, so a killed boxsmith leaves nothing behind.
        """
        self._log(f"start {image}: {shlex.join(command)}")
        with _translated(f"starting a container of {image}"):
            container = self._docker.containers.run(
                image,
                list(command),
                labels={**self._labels(lifetime), **(labels or {})},
                environment=dict(environment or {}),
                detach=True,
                auto_remove=lifetime is not None,
                init=True,
                nano_cpus=int(cpus * 1e9) if cpus else None,
                mem_limit=f"{memory_mb}m" if memory_mb else None,
            )
        return str(container.id)

    def _labels(self, lifetime: float | None) -> dict[str, str]:
        """boxsmith's, this session's, and (when known) the project's and the expiry's labels."""
        own = {LABEL: "1", SESSION_LABEL: self._session}
        if self._project is not None:
            own[PROJECT_LABEL] = self._project
        if lifetime is not None:
            own[EXPIRES_LABEL] = str(int(time.time() + lifetime) + 1)
        return own

    def exec(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        environment: Mapping[str, str] | None = None,
        detach: bool = False,
    ) -> RunResult:
        """`docker exec` and wait for the end (or start it in the background with `detach`).

        The caller bounds the run time (e.g. with `timeout` inside the container).
        """
        with _translated(f"running `{shlex.join(command)}` in container {container_id[:12]}"):
            exec_id = self._docker.api.exec_create(
                container_id,
                list(command),
                user=user or "",
                workdir=workdir,
                environment=dict(environment or {}),
                stdout=not detach,
                stderr=not detach,
            )["Id"]
            output = self._docker.api.exec_start(exec_id, detach=detach, demux=True)
            if detach:
                return RunResult(0, "", "")
            stdout, stderr = output if isinstance(output, tuple) else (b"", b"")
            code = self._docker.api.exec_inspect(exec_id).get("ExitCode")
        return RunResult(-1 if code is None else int(code), _text(stdout), _text(stderr))

    def container_state(self, container_id: str) -> str:
        """`running`, `exited`, ... or `gone` when there is no such container."""
        with _translated(f"inspecting container {container_id[:12]}"):
            try:
                return str(self._docker.containers.get(container_id).status)
            except docker.errors.NotFound:
                return "gone"

    def remove_container(self, container_id: str) -> None:
        """Remove a container (running or not); a missing one is no error."""
        self._log(f"rm -f {container_id[:12]}")
        self._remove(container_id)

    def containers(self, labels: Mapping[str, str] | None = None) -> list[str]:
        """Ids of containers (running or not) carrying all `labels` (default: `dev.boxsmith=1`)."""
        wanted = labels or {LABEL: "1"}
        with _translated("listing containers"):
            found = self._docker.containers.list(
                all=True, filters={"label": [f"{k}={v}" for k, v in wanted.items()]}
            )
        return [str(c.id) for c in found]

    def sweep_expired(self) -> list[str]:
        """Remove this project's containers past their expiry (left by a killed run); their ids."""
        if self._project is None:
            return []
        with _translated("listing containers"):
            found = self._docker.containers.list(
                all=True, filters={"label": [f"{PROJECT_LABEL}={self._project}", EXPIRES_LABEL]}
            )
        now = time.time()
        expired = []
        for container in found:
            try:
                expires = float(container.labels.get(EXPIRES_LABEL, ""))
            except ValueError:
                continue  # not boxsmith's writing: leave it
            if expires <= now:
                self._log(f"rm -f {container.short_id} (expired, left by a killed run)")
                self._remove(str(container.id))
                expired.append(str(container.id))
        return expired

    def _remove(self, container_id: str) -> None:
        try:
            self._docker.containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            pass
        except _FOREIGN as exc:
            self._log(f"warning: could not remove container {container_id[:12]}: {_reason(exc)}")
