"""`GET /files`: a file of a sandbox streamed out, as envd's open-and-copy gives it.

Most files come from docker's `get_archive` (symlinks followed, the size known). What that
cannot see, or where a `stat` size says nothing, is read with `cat` in the container instead
(streamed, no Content-Length): the kernel's `/proc` and `/sys` files, which `get_archive` calls
missing and whose `stat` size is 0, and any file it reports as empty. gzip when the SDK asks for
exactly that.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import anyio.to_thread
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from starlette.responses import Response, StreamingResponse

from boxsmith._internal.backend.envd import docker_exec as envd_exec
from boxsmith._internal.backend.envd.shell import CHUNK, Shell, docker_errors
from boxsmith._internal.backend.runtime import SandboxHandle

__all__ = ["download"]

_GO_DIR, _GO_SYMLINK = 1 << 31, 1 << 27  # Go FileMode bits in Docker's path stat
# What envd's open(2) would refuse, before `cat` streams anything.
_READABLE = r"""[ -e "$1" ] || die 10 "path '$1' does not exist"
[ -d "$1" ] && die 12 "path '$1' is a directory"
exit 0
"""


class _Source(Protocol):
    size: int | None

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (docker's archive stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._rest = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            self._rest = next(self._chunks, b"")
            if not self._rest:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


class _Archived:
    """The file at a path (symlinks followed), streamed out of `get_archive`."""

    def __init__(self, shell: Shell, handle: SandboxHandle, path: str) -> None:
        for _ in range(16):
            self._stream, stat = shell.get_archive(handle, path)
            if not stat["mode"] & (_GO_DIR | _GO_SYMLINK):
                break
            self._stream.close()  # drops the response, so the daemon stops sending
            if stat["mode"] & _GO_DIR:
                raise ConnectError(Code.INVALID_ARGUMENT, f"path '{path}' is a directory")
            path = stat["linkTarget"]
        else:
            raise ConnectError(Code.INVALID_ARGUMENT, f"too many levels of symbolic links: {path}")
        reader = io.BufferedReader(_ChunkReader(self._stream), CHUNK)
        self._tar = tarfile.open(fileobj=reader, mode="r|")  # noqa: SIM115 - closed in close()
        member = self._tar.next()
        file = self._tar.extractfile(member) if member else None
        if member is None or file is None:
            self.close()
            raise ConnectError(Code.INTERNAL, f"docker sent no file for '{path}'")
        self._file = file
        self.size: int | None = member.size

    def read(self, size: int) -> bytes:
        return self._file.read(size)

    def close(self) -> None:
        self._tar.close()
        self._stream.close()


class _Catted:
    """The file at a path as `cat` (as root) prints it: its size is not known up front."""

    size: int | None = None

    def __init__(self, shell: Shell, handle: SandboxHandle, path: str) -> None:
        with docker_errors(handle.id):
            exec_id = shell.api.exec_create(handle.container_id, ["cat", "--", path], user="root")
            self._sock = shell.api.exec_start(exec_id["Id"], socket=True)
        self._frames = envd_exec.frames(self._sock)
        self._rest = b""

    def read(self, size: int) -> bytes:
        while len(self._rest) < size:
            stream, chunk = next(self._frames, (0, b""))
            if not chunk:
                break
            if stream == 1:  # stdout; cat's stderr is not the file
                self._rest += chunk
        chunk, self._rest = self._rest[:size], self._rest[size:]
        return chunk

    def close(self) -> None:
        envd_exec.close(self._sock)


async def _open(shell: Shell, handle: SandboxHandle, path: str) -> _Source:
    try:
        archived = await anyio.to_thread.run_sync(_Archived, shell, handle, path)
    except ConnectError as exc:
        if exc.code != Code.NOT_FOUND:  # get_archive does not see /proc or /sys
            raise
    else:
        if archived.size:
            return archived
        await anyio.to_thread.run_sync(archived.close)  # empty, or a kernel file's 0
    await shell.run(handle, _READABLE, path)
    catted: _Source = await anyio.to_thread.run_sync(_Catted, shell, handle, path)
    return catted


def _wants_gzip(accept: str) -> bool:
    # The SDK's `gzip=True` replaces httpx's default "gzip, deflate" with exactly "gzip"; only
    # then compress (identity is always acceptable, and compressing costs CPU on loopback).
    return [c.split(";")[0].strip().lower() for c in accept.split(",")] == ["gzip"]


async def download(shell: Shell, handle: SandboxHandle, path: str, accept: str) -> Response:
    """The response to `GET /files` for `path` (resolved), streamed; ConnectError when it
    cannot be read."""
    source = await _open(shell, handle, path)
    gzip = zlib.compressobj(1, zlib.DEFLATED, 31) if _wants_gzip(accept) else None

    def read() -> tuple[bytes, bool]:
        chunk = source.read(CHUNK)
        if gzip is None:
            return chunk, not chunk
        return (gzip.compress(chunk), False) if chunk else (gzip.flush(), True)

    async def body() -> AsyncIterator[bytes]:
        try:
            done = False
            while not done:
                chunk, done = await anyio.to_thread.run_sync(read)
                yield chunk
        finally:
            await anyio.to_thread.run_sync(source.close)

    headers = {}
    if gzip is not None:
        headers["Content-Encoding"] = "gzip"
    elif source.size is not None:
        headers["Content-Length"] = str(source.size)
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)
