"""The Docker engine boundary: every Docker call boxsmith makes goes through `Engine`.

`Engine` is a context manager. Entering it checks that an engine answers and speaks a recent enough
API (`EngineUnavailable`, exit 3, naming `scripts/docker-up`, when not); leaving it removes every
container it started, also after an exception or Ctrl-C. What it creates is labelled
(`boxsmith._internal.docker.labels`: boxsmith's, the session's, the project's, an expiry), so a
killed run's containers are found and removed. docker's and requests' exceptions are translated
into `EngineError` at this boundary only (`boxsmith._internal.docker.engine_errors`), chained with
`from`; builds stream through `boxsmith._internal.docker.build_stream`, which Ctrl-C can cut.
"""

# This module reads better whole: `Engine` is the one boundary class, each method a few lines
# around one docker call (its errors, labels, connection and build streams live beside it).

from __future__ import annotations

import contextlib
import shlex
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, TextIO

import docker
import docker.errors
import requests.exceptions

from boxsmith._internal.docker.build_stream import BuildStreams, follow
from boxsmith._internal.docker.connect import MIN_API, connect
from boxsmith._internal.docker.engine_errors import (
    FOREIGN,
    BuildFailed,
    EngineError,
    EngineUnavailable,
    reason,
    translated,
)
from boxsmith._internal.docker.labels import (
    EXPIRES_LABEL,
    LABEL,
    PROJECT_LABEL,
    SESSION_LABEL,
    container_labels,
    expired,
)

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


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What boxsmith reads from `docker image inspect`."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    size: int
    created: str = ""  # the engine's `Created` time (RFC 3339)


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


def _text(data: object) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else ""


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
        self._builds = BuildStreams()
        self.version = ""
        self.api_version = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        client, self.version, self.api_version = connect(self._environ)
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
        with translated(f"inspecting image {ref}"):
            try:
                image = self._docker.images.get(ref)
            except docker.errors.ImageNotFound:
                return None
            return ImageInfo(
                id=str(image.id),
                tags=tuple(image.tags),
                labels={str(k): str(v) for k, v in (image.labels or {}).items()},
                size=int(image.attrs.get("Size", 0)),
                created=str(image.attrs.get("Created", "")),
            )

    def image_config(self, ref: str) -> dict[str, object]:
        """The image's `Config` (User, WorkingDir, Env, Labels, ...); {} when there is none."""
        with translated(f"inspecting image {ref}"):
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
            with translated(f"pulling {ref}"):
                self._docker.images.pull(name, tag)
        finally:
            self._docker.api.timeout = self._timeout

    def tag(self, source: str, ref: str) -> None:
        """`docker tag source ref`."""
        self._log(f"tag {source} {ref}")
        name, tag = split_ref(ref)
        with translated(f"tagging {source} as {ref}"):
            self._docker.images.get(source).tag(name, tag)

    def remove_image(self, ref: str) -> None:
        """`docker rmi ref` (untags when other tags remain); a missing image is no error."""
        self._log(f"rmi {ref}")
        with (
            translated(f"removing image {ref}"),
            contextlib.suppress(docker.errors.ImageNotFound),
        ):
            self._docker.images.remove(ref)

    def remove_unused_image(self, image_id: str) -> bool:
        """Remove the image `image_id` when no tag names it and no container (running or not)
        uses it; whether it is gone. Another image built FROM it keeps it too."""
        with translated(f"removing image {image_id[7:19]}"):
            try:
                image = self._docker.images.get(image_id)
            except docker.errors.ImageNotFound:
                return True
            if image.tags or self._docker.containers.list(all=True, filters={"ancestor": image_id}):
                return False
            self._log(f"rmi {image_id[7:19]} (untagged, unused)")
            try:
                self._docker.images.remove(image_id)
            except docker.errors.ImageNotFound:
                return True
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # a container or child image appeared meanwhile
                    return False
                raise
        return True

    def import_tar(self, tar: Path, ref: str, changes: Sequence[str]) -> str:
        """`docker import --change ... tar ref`; returns the new image id."""
        self._log(f"import {tar.name} as {ref}")
        name, tag = split_ref(ref)
        with translated(f"importing {tar} as {ref}", BuildFailed):
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
        output line. A failing step raises `BuildFailed` with `step` and `tail` set; a build that
        `abort` cut raises `BuildFailed` "cancelled".
        """
        self._log(f"build {ref}")
        labels = {LABEL: "1", **labels}
        with (
            translated(f"building {ref}", BuildFailed),
            self._builds.open(self._docker.api, context, ref, labels, dockerfile) as stream,
        ):
            try:
                follow(stream, ref, on_step=on_step, on_line=on_line)
            except BaseException as exc:
                # On Ctrl-C (or a callback raising KeyboardInterrupt to cancel), closing the
                # connections makes the engine cancel the builds still running.
                if not isinstance(exc, Exception):
                    self.abort()
                raise
            return str(self._docker.images.get(ref).id)

    def abort(self) -> None:
        """Cut every build stream in flight; the engine then cancels those builds.

        Safe to call from any thread; the client stays usable.
        """
        self._builds.abort()

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
        with translated(action):
            container = self._docker.containers.create(
                image,
                list(command),
                labels=self._labels(timeout + 60),
                environment=dict(environment or {}),
                user=user or "",
                detach=True,
            )
        try:
            with translated(action):
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
        with translated(f"starting a container of {image}"):
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
        return container_labels(self._session, self._project, lifetime)

    def exec(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> RunResult:
        """`docker exec` and wait for the end. The caller bounds the run time (e.g. with
        `timeout` inside the container)."""
        with translated(f"running `{shlex.join(command)}` in container {container_id[:12]}"):
            exec_id = self._docker.api.exec_create(
                container_id,
                list(command),
                user=user or "",
                workdir=workdir,
                environment=dict(environment or {}),
            )["Id"]
            output = self._docker.api.exec_start(exec_id, demux=True)
            stdout, stderr = output if isinstance(output, tuple) else (b"", b"")
            code = self._docker.api.exec_inspect(exec_id).get("ExitCode")
        return RunResult(-1 if code is None else int(code), _text(stdout), _text(stderr))

    def container_state(self, container_id: str) -> str:
        """`running`, `exited`, ... or `gone` when there is no such container."""
        with translated(f"inspecting container {container_id[:12]}"):
            try:
                return str(self._docker.containers.get(container_id).status)
            except docker.errors.NotFound:
                return "gone"

    def container_address(self, container_id: str) -> str | None:
        """The container's IP address (on Docker's default bridge when it has one there);
        None when it has none or is gone."""
        with translated(f"inspecting container {container_id[:12]}"):
            try:
                attrs = self._docker.api.inspect_container(container_id)
            except docker.errors.NotFound:
                return None
        networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        for name in sorted(networks, key=lambda name: name != "bridge"):
            address = (networks[name] or {}).get("IPAddress")
            if address:
                return str(address)
        return None

    def remove_container(self, container_id: str) -> None:
        """Remove a container (running or not); a missing one is no error."""
        self._log(f"rm -f {container_id[:12]}")
        self._remove(container_id)

    def containers(self, labels: Mapping[str, str] | None = None) -> list[str]:
        """Ids of containers (running or not) carrying all `labels` (default: `dev.boxsmith=1`)."""
        wanted = labels or {LABEL: "1"}
        with translated("listing containers"):
            found = self._docker.containers.list(
                all=True, filters={"label": [f"{k}={v}" for k, v in wanted.items()]}
            )
        return [str(c.id) for c in found]

    def sweep_expired(self) -> list[str]:
        """Remove this project's containers past their expiry (left by a killed run); their ids."""
        if self._project is None:
            return []
        with translated("listing containers"):
            found = self._docker.containers.list(
                all=True, filters={"label": [f"{PROJECT_LABEL}={self._project}", EXPIRES_LABEL]}
            )
        now = time.time()
        gone = []
        for container in found:
            if expired(container.labels, now):
                self._log(f"rm -f {container.short_id} (expired, left by a killed run)")
                self._remove(str(container.id))
                gone.append(str(container.id))
        return gone

    def _remove(self, container_id: str) -> None:
        try:
            self._docker.containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            pass
        except FOREIGN as exc:
            self._log(f"warning: could not remove container {container_id[:12]}: {reason(exc)}")
