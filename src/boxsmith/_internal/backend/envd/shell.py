"""How the envd services act on a sandbox's container: `Shell` runs small POSIX scripts there
as root (one `docker exec` each, off the event loop, output NUL-separated) and moves archives
in and out; docker's errors become Connect errors (a vanished container is a gone sandbox).
Shared by the filesystem RPCs (`files`) and the `/files` endpoint (`transfer`).
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import docker
import docker.errors
import requests.exceptions
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from boxsmith._internal.backend.runtime import (
    Sandboxes,
    SandboxGone,
    SandboxHandle,
    not_found,
)
from boxsmith._internal.backend.wire import scrub

__all__ = [
    "CHUNK",
    "EXIT_CODES",
    "PRELUDE",
    "Identity",
    "Shell",
    "docker_errors",
    "gone",
    "resolve",
]

CHUNK = 1 << 20
# Scripts exit with these to name an error; their stderr is the message.
EXIT_CODES = {
    10: Code.NOT_FOUND,
    11: Code.ALREADY_EXISTS,
    12: Code.INVALID_ARGUMENT,
    13: Code.UNAUTHENTICATED,
}


# `ensure` is envd's EnsureDirs: create the missing directories of a path, 0755, owned by the user.
PRELUDE = r"""set -u
die() { printf '%s\n' "$2" >&2; exit "$1"; }
exists() { [ -e "$1" ] || [ -L "$1" ]; }
ensure() {
  cur= rest=${1#/}
  while [ -n "$rest" ]; do
    comp=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
    cur=$cur/$comp
    [ -d "$cur" ] && continue
    exists "$cur" && die 12 "path is a file: $cur"
    { mkdir -m 755 -- "$cur" && chown -- "$uid:$gid" "$cur"; } || exit 1
  done
}
"""
IDENTITY = r"""id -u -- "$1" >/dev/null 2>&1 || die 13 "invalid username: '$1'"
printf '%s\0%s\0%s\0' "$(id -u -- "$1")" "$(id -g -- "$1")" "$(getent passwd "$1" | cut -d: -f6)"
"""


def gone(sandbox_id: str) -> ConnectError:
    # The SDK maps "was not found" to SandboxNotRunningException (RPCs and /files alike).
    return ConnectError(Code.UNAVAILABLE, not_found(sandbox_id))


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int
    home: str


class Shell:
    """Runs the scripts in a sandbox's container, off the event loop; raises ConnectError."""

    def __init__(self, sandboxes: Sandboxes, client: docker.DockerClient) -> None:
        self.sandboxes = sandboxes
        self.api = client.api
        self._identities: dict[tuple[str, str], Identity] = {}

    def handle(self, sandbox_id: str) -> SandboxHandle:
        try:
            return self.sandboxes.get(sandbox_id)
        except SandboxGone as exc:
            raise gone(sandbox_id) from exc

    async def identity(self, handle: SandboxHandle, user: str) -> Identity:
        """uid, gid and home of a user, looked up once per container."""
        key = (handle.container_id, user)
        if key not in self._identities:
            uid, gid, home = (await self.run(handle, IDENTITY, user)).decode().split("\0")[:3]
            if user == handle.user:
                home = handle.home
            if len(self._identities) > 4096:  # a long-running server: forget old containers
                self._identities.clear()
            self._identities[key] = Identity(int(uid), int(gid), home or "/")
        return self._identities[key]

    async def run(self, handle: SandboxHandle, script: str, *args: str) -> bytes:
        """Run `script` as root with `args` as $1...; its stdout, or ConnectError."""
        code, out, err = await anyio.to_thread.run_sync(self._exec, handle, script, args)
        if code == 0:
            return out
        message = err.decode(errors="replace").strip() or f"exit status {code}"
        raise ConnectError(EXIT_CODES.get(code, Code.INTERNAL), message)

    def _exec(
        self, handle: SandboxHandle, script: str, args: tuple[str, ...]
    ) -> tuple[int, bytes, bytes]:
        argv = ["/bin/sh", "-c", PRELUDE + script, "envd", *args]
        with docker_errors(handle.id):
            created = self.api.exec_create(
                handle.container_id, argv, user="root", workdir="/", environment={"LC_ALL": "C"}
            )
            out, err = self.api.exec_start(created["Id"], demux=True)
            code = self.api.exec_inspect(created["Id"])["ExitCode"]
        return int(code), out or b"", err or b""

    def get_archive(
        self, handle: SandboxHandle, path: str
    ) -> tuple[Generator[bytes, None, None], dict[str, Any]]:
        with docker_errors(handle.id, missing=f"path '{path}' does not exist"):
            stream, stat = self.api.get_archive(handle.container_id, path, chunk_size=CHUNK)
        return stream, stat

    def put_archive(self, handle: SandboxHandle, tar: Iterator[bytes]) -> None:
        with docker_errors(handle.id):
            self.api.put_archive(handle.container_id, "/", tar)


@contextlib.contextmanager
def docker_errors(sandbox_id: str, missing: str = "") -> Iterator[None]:
    """Translate docker's exceptions into ConnectError; a vanished container is a gone sandbox.

    Messages keep the path in the container, never where the host stores it.
    """
    try:
        yield
    except docker.errors.APIError as exc:
        text = scrub(str(exc.explanation or exc))
        if exc.status_code == 409 or "No such container" in text:
            raise gone(sandbox_id) from exc
        if exc.status_code == 404 and missing:
            raise ConnectError(Code.NOT_FOUND, missing) from exc
        raise ConnectError(_code(text), f"docker: {text}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ConnectError(Code.INTERNAL, f"docker: {scrub(str(exc))}") from exc


def _code(text: str) -> Code:
    if "no space left" in text:
        return Code.RESOURCE_EXHAUSTED
    if "file name too long" in text or "not a directory" in text:
        return Code.INVALID_ARGUMENT  # the request's path, not the backend, is at fault
    return Code.INTERNAL


def resolve(path: str, home: str) -> str:
    """envd's ExpandAndResolve: `~` and relative paths are under the user's home."""
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif path.startswith("~"):
        raise ConnectError(Code.INVALID_ARGUMENT, f"cannot expand user-specific home dir: {path}")
    if "\0" in path:
        raise ConnectError(Code.INVALID_ARGUMENT, f"invalid path: {path!r}")
    path = posixpath.normpath(posixpath.join(home, path))
    return "/" + path.lstrip("/")
