"""envd's filesystem, served host-side on a sandbox's container: the `filesystem.Filesystem`
Connect service (`filesystem_app`) and the `/files` upload and download endpoint (`files_app`).

Like envd, every operation acts as root and gives what it creates to the requesting user
(`Authorization: Basic base64("user:")` on RPCs, `?username=` on `/files`, else the sandbox's
user); relative paths resolve against that user's home. Each RPC is one `docker exec` of a
small POSIX script whose output is NUL-separated (GNU `find -printf`, so any file name is
safe); downloads stream from `get_archive`, uploads are spooled to a temporary file and then
streamed into `put_archive` as a tar with the user's uid and gid. Watchers are not implemented
(the inherited methods answer UNIMPLEMENTED). Needs `/bin/sh`, GNU findutils and coreutils.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import posixpath
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import IO, Any

import anyio.to_thread
import docker
import docker.errors
import requests.exceptions
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from e2b.envd.filesystem import filesystem_connect
from e2b.envd.filesystem.filesystem_pb import (
    EntryInfo,
    FileType,
    ListDirRequest,
    ListDirResponse,
    MakeDirRequest,
    MakeDirResponse,
    MoveRequest,
    MoveResponse,
    RemoveRequest,
    RemoveResponse,
    StatRequest,
    StatResponse,
)
from protobuf.wkt import Timestamp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from boxsmith.backend.runtime import (
    Sandboxes,
    SandboxGone,
    SandboxHandle,
    not_found,
)

__all__ = ["FilesystemService", "files_app", "filesystem_app"]

_CHUNK = 1 << 20
_SPOOL_IN_MEMORY = 4 << 20  # larger uploads spill to a temporary file
_FIND_FORMAT = r"%y\0%s\0%m\0%u\0%g\0%T@\0%l\0%p\0"
_GO_DIR, _GO_SYMLINK = 1 << 31, 1 << 27  # Go FileMode bits in Docker's path stat
_HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.UNAVAILABLE: 502,
    Code.RESOURCE_EXHAUSTED: 507,
}
# Scripts exit with these to name an error; their stderr is the message.
_EXIT_CODES = {
    10: Code.NOT_FOUND,
    11: Code.ALREADY_EXISTS,
    12: Code.INVALID_ARGUMENT,
    13: Code.UNAUTHENTICATED,
}

# `ensure` is envd's EnsureDirs: create the missing directories of a path, 0755, owned by the user.
_PRELUDE = r"""set -u
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
_IDENTITY = r"""id -u -- "$1" >/dev/null 2>&1 || die 13 "invalid username: '$1'"
printf '%s\0%s\0%s\0' "$(id -u -- "$1")" "$(id -g -- "$1")" "$(getent passwd "$1" | cut -d: -f6)"
"""
_STAT = r"""exists "$2" || die 10 "file not found: $2"
exec find "$2" -maxdepth 0 -printf "$1"
"""
_LIST = r"""[ -e "$2" ] || die 10 "directory not found: $2"
[ -d "$2" ] || die 12 "path is not a directory: $2"
exec find -H "$2" -mindepth 1 -maxdepth "$3" -printf "$1"
"""
_MKDIR = r"""uid=$1 gid=$2
if exists "$3"; then
  [ -d "$3" ] && die 11 "directory already exists: $3"
  die 12 "path already exists but it is not a directory: $3"
fi
ensure "$3"
"""
_MOVE = r"""uid=$1 gid=$2
exists "$4" || die 10 "source file not found: $4"
ensure "$6"
mv -f -T -- "$4" "$5" || exit 1
exec find "$5" -maxdepth 0 -printf "$3"
"""
_REMOVE = r"""exec rm -rf -- "$1"
"""
# For each (path, parent): make the parent, refuse a directory, follow a symlink as envd's
# open(2) would, and print the real path and the mode to keep (an overwrite keeps it).
_PREPARE = r"""uid=$1 gid=$2
shift 2
while [ $# -gt 0 ]; do
  ensure "$2"
  [ -d "$1" ] && die 12 "path is a directory: $1"
  if [ -L "$1" ]; then readlink -f -z -- "$1" || exit 1; else printf '%s\0' "$1"; fi
  mode=-
  [ -f "$1" ] && mode=$(stat -L -c %a -- "$1")
  printf '%s\0' "$mode"
  shift 2
done
"""


def _gone(sandbox_id: str) -> ConnectError:
    # The SDK maps "was not found" to SandboxNotRunningException (RPCs and /files alike).
    return ConnectError(Code.UNAVAILABLE, not_found(sandbox_id))


@dataclass(frozen=True, slots=True)
class _Identity:
    uid: int
    gid: int
    home: str


class _Shell:
    """Runs the scripts in a sandbox's container, off the event loop; raises ConnectError."""

    def __init__(self, sandboxes: Sandboxes, client: docker.DockerClient) -> None:
        self.sandboxes = sandboxes
        self.api = client.api
        self._identities: dict[tuple[str, str], _Identity] = {}

    def handle(self, sandbox_id: str) -> SandboxHandle:
        try:
            return self.sandboxes.get(sandbox_id)
        except SandboxGone as exc:
            raise _gone(sandbox_id) from exc

    async def identity(self, handle: SandboxHandle, user: str) -> _Identity:
        """uid, gid and home of a user, looked up once per container."""
        key = (handle.container_id, user)
        if key not in self._identities:
            uid, gid, home = (await self.run(handle, _IDENTITY, user)).decode().split("\0")[:3]
            if user == handle.user:
                home = handle.home
            if len(self._identities) > 4096:  # a long-running server: forget old containers
                self._identities.clear()
            self._identities[key] = _Identity(int(uid), int(gid), home or "/")
        return self._identities[key]

    async def run(self, handle: SandboxHandle, script: str, *args: str) -> bytes:
        """Run `script` as root with `args` as $1...; its stdout, or ConnectError."""
        code, out, err = await anyio.to_thread.run_sync(self._exec, handle, script, args)
        if code == 0:
            return out
        message = err.decode(errors="replace").strip() or f"exit status {code}"
        raise ConnectError(_EXIT_CODES.get(code, Code.INTERNAL), message)

    def _exec(
        self, handle: SandboxHandle, script: str, args: tuple[str, ...]
    ) -> tuple[int, bytes, bytes]:
        argv = ["/bin/sh", "-c", _PRELUDE + script, "envd", *args]
        with _docker_errors(handle.id):
            created = self.api.exec_create(
                handle.container_id, argv, user="root", workdir="/", environment={"LC_ALL": "C"}
            )
            out, err = self.api.exec_start(created["Id"], demux=True)
            code = self.api.exec_inspect(created["Id"])["ExitCode"]
        return int(code), out or b"", err or b""

    def get_archive(
        self, handle: SandboxHandle, path: str
    ) -> tuple[Generator[bytes, None, None], dict[str, Any]]:
        with _docker_errors(handle.id, missing=f"path '{path}' does not exist"):
            stream, stat = self.api.get_archive(handle.container_id, path, chunk_size=_CHUNK)
        return stream, stat

    def put_archive(self, handle: SandboxHandle, tar: Iterator[bytes]) -> None:
        with _docker_errors(handle.id):
            self.api.put_archive(handle.container_id, "/", tar)


@contextlib.contextmanager
def _docker_errors(sandbox_id: str, missing: str = "") -> Iterator[None]:
    """Translate docker's exceptions into ConnectError; a vanished container is a gone sandbox."""
    try:
        yield
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        if exc.status_code == 409 or "No such container" in text:
            raise _gone(sandbox_id) from exc
        if exc.status_code == 404 and missing:
            raise ConnectError(Code.NOT_FOUND, missing) from exc
        code = Code.RESOURCE_EXHAUSTED if "no space left" in text else Code.INTERNAL
        raise ConnectError(code, f"docker: {text}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ConnectError(Code.INTERNAL, f"docker: {exc}") from exc


def _resolve(path: str, home: str) -> str:
    """envd's ExpandAndResolve: `~` and relative paths are under the user's home."""
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif path.startswith("~"):
        raise ConnectError(Code.INVALID_ARGUMENT, f"cannot expand user-specific home dir: {path}")
    if "\0" in path:
        raise ConnectError(Code.INVALID_ARGUMENT, f"invalid path: {path!r}")
    path = posixpath.normpath(posixpath.join(home, path))
    return "/" + path.lstrip("/")


def _go_permissions(kind: str, bits: int) -> str:
    """Go's FileMode.String(), which envd reports: `-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`."""
    flags = {"d": "d", "l": "L", "b": "D", "c": "D", "p": "p", "s": "S"}.get(kind, "")
    flags += "u" * bool(bits & 0o4000) + "g" * bool(bits & 0o2000)
    flags += "c" * (kind == "c") + "t" * bool(bits & 0o1000)
    rwx = "".join(c if bits & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return (flags or "-") + rwx


_TYPES = {"f": FileType.FILE, "d": FileType.DIRECTORY, "l": FileType.SYMLINK}


def _entries(out: bytes) -> list[EntryInfo]:
    """EntryInfos from `find -printf _FIND_FORMAT`, in envd's (lexical, depth-first) order."""
    fields = out.split(b"\0")[:-1]
    rows = sorted(
        (fields[i : i + 8] for i in range(0, len(fields) - 7, 8)), key=lambda r: r[7].split(b"/")
    )
    entries = []
    for kind_b, size, mode, owner, group, mtime, target, path_b in rows:
        kind, path, bits = kind_b.decode(), path_b.decode(errors="replace"), int(mode, 8)
        seconds, _, fraction = mtime.partition(b".")
        symlink = kind == "l"
        entries.append(
            EntryInfo(
                name=posixpath.basename(path) or path,
                type=_TYPES.get(kind, FileType.UNSPECIFIED),
                path=path,
                size=int(size),
                mode=bits & 0o777,
                permissions=_go_permissions(kind, bits),
                owner=owner.decode(errors="replace"),
                group=group.decode(errors="replace"),
                modified_time=Timestamp(
                    seconds=int(seconds), nanos=int(fraction[:9].ljust(9, b"0"))
                ),
                symlink_target=target.decode(errors="replace") if symlink else None,
                is_symlink=symlink,
            )
        )
    return entries


def _entry(out: bytes, path: str) -> EntryInfo:
    entries = _entries(out)
    if not entries:  # removed between the test and find
        raise ConnectError(Code.NOT_FOUND, f"file not found: {path}")
    return entries[0]


def _basic_user(header: str | None) -> str | None:
    """The user of `Authorization: Basic base64("user:")`; None without the header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError(scheme)
        return base64.b64decode(token, validate=True).decode().partition(":")[0] or None
    except (ValueError, binascii.Error) as exc:
        raise ConnectError(Code.UNAUTHENTICATED, "invalid Authorization header") from exc


class FilesystemService(filesystem_connect.Filesystem):
    """The `filesystem.Filesystem` service: Stat, ListDir, MakeDir, Move, Remove.

    Args:
        sandboxes: the registry the `E2b-Sandbox-Id` header is looked up in.
        client: a docker client (thread-safe; used from worker threads).
    """

    def __init__(self, sandboxes: Sandboxes, client: docker.DockerClient) -> None:
        self._shell = _Shell(sandboxes, client)

    async def _caller(self, ctx: RequestContext[Any, Any]) -> tuple[SandboxHandle, _Identity]:
        handle = self._shell.handle(ctx.request_headers.get("e2b-sandbox-id", ""))
        user = _basic_user(ctx.request_headers.get("authorization")) or handle.user
        return handle, await self._shell.identity(handle, user)

    async def stat(
        self, request: StatRequest, ctx: RequestContext[StatRequest, StatResponse], /
    ) -> StatResponse:
        handle, who = await self._caller(ctx)
        path = _resolve(request.path, who.home)
        out = await self._shell.run(handle, _STAT, _FIND_FORMAT, path)
        return StatResponse(entry=_entry(out, path))

    async def list_dir(
        self, request: ListDirRequest, ctx: RequestContext[ListDirRequest, ListDirResponse], /
    ) -> ListDirResponse:
        handle, who = await self._caller(ctx)
        path, depth = _resolve(request.path, who.home), str(request.depth or 1)
        out = await self._shell.run(handle, _LIST, _FIND_FORMAT, path, depth)
        return ListDirResponse(entries=_entries(out))

    async def make_dir(
        self, request: MakeDirRequest, ctx: RequestContext[MakeDirRequest, MakeDirResponse], /
    ) -> MakeDirResponse:
        handle, who = await self._caller(ctx)
        path = _resolve(request.path, who.home)
        await self._shell.run(handle, _MKDIR, str(who.uid), str(who.gid), path)
        name = posixpath.basename(path) or path
        return MakeDirResponse(entry=EntryInfo(name=name, type=FileType.DIRECTORY, path=path))

    async def move(
        self, request: MoveRequest, ctx: RequestContext[MoveRequest, MoveResponse], /
    ) -> MoveResponse:
        handle, who = await self._caller(ctx)
        source = _resolve(request.source, who.home)
        target = _resolve(request.destination, who.home)
        ids = (str(who.uid), str(who.gid))
        parent = posixpath.dirname(target)
        out = await self._shell.run(handle, _MOVE, *ids, _FIND_FORMAT, source, target, parent)
        return MoveResponse(entry=_entry(out, target))

    async def remove(
        self, request: RemoveRequest, ctx: RequestContext[RemoveRequest, RemoveResponse], /
    ) -> RemoveResponse:
        handle, who = await self._caller(ctx)
        await self._shell.run(handle, _REMOVE, _resolve(request.path, who.home))
        return RemoveResponse()


def filesystem_app(
    sandboxes: Sandboxes, client: docker.DockerClient
) -> filesystem_connect.FilesystemASGIApplication:
    """The Connect app serving `/filesystem.Filesystem/*` (mount at `app.path`)."""
    return filesystem_connect.FilesystemASGIApplication(FilesystemService(sandboxes, client))


# -- /files ----------------------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    return JSONResponse({"code": status, "message": message}, status_code=status)


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


class _Download:
    """The file at a path (symlinks followed), streamed out of `get_archive`."""

    def __init__(self, shell: _Shell, handle: SandboxHandle, path: str) -> None:
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
        reader = io.BufferedReader(_ChunkReader(self._stream), _CHUNK)
        self._tar = tarfile.open(fileobj=reader, mode="r|")  # noqa: SIM115 - closed in close()
        member = self._tar.next()
        file = self._tar.extractfile(member) if member else None
        if member is None or file is None:
            self.close()
            raise ConnectError(Code.INTERNAL, f"docker sent no file for '{path}'")
        self.file, self.size = file, member.size

    def close(self) -> None:
        self._tar.close()
        self._stream.close()


def _wants_gzip(accept: str) -> bool:
    # The SDK's `gzip=True` replaces httpx's default "gzip, deflate" with exactly "gzip"; only
    # then compress (identity is always acceptable, and compressing costs CPU on loopback).
    return [c.split(";")[0].strip().lower() for c in accept.split(",")] == ["gzip"]


async def _download(shell: _Shell, handle: SandboxHandle, path: str, accept: str) -> Response:
    download = await anyio.to_thread.run_sync(_Download, shell, handle, path)
    gzip = zlib.compressobj(1, zlib.DEFLATED, 31) if _wants_gzip(accept) else None

    def read() -> tuple[bytes, bool]:
        chunk = download.file.read(_CHUNK)
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
            await anyio.to_thread.run_sync(download.close)

    headers = {"Content-Encoding": "gzip"} if gzip else {"Content-Length": str(download.size)}
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


async def _decoded(request: Request) -> AsyncIterator[bytes]:
    """The request body, gunzipped when it says `Content-Encoding: gzip`."""
    if request.headers.get("content-encoding", "").lower() != "gzip":
        async for chunk in request.stream():
            yield chunk
        return
    unzip = zlib.decompressobj(31)
    try:
        async for received in request.stream():
            chunk = received
            while chunk:
                yield unzip.decompress(chunk)
                chunk = unzip.unused_data  # the next gzip member, if any
                if chunk:
                    unzip = zlib.decompressobj(31)
        if not unzip.eof:
            raise zlib.error("truncated gzip stream")
    except zlib.error as exc:
        message = f"error decompressing request body: {exc}"
        raise ConnectError(Code.INVALID_ARGUMENT, message) from exc


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)


_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
# httpx writes a filename HTML5-style: `"` as %22, control characters as %XX, `\` doubled.
_UNESCAPE = re.compile(r"\\(.)|%(22|0[0-9A-F]|1[0-9A-CEF])")


def _disposition(head: bytes) -> dict[str, str]:
    """The parameters of a part's Content-Disposition (name, filename)."""
    for line in head.decode(errors="replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            return {
                m[1].lower(): _UNESCAPE.sub(lambda e: e[1] or chr(int(e[2], 16)), m[2]) or m[3]
                for m in _PARAM.finditer(value)
            }
    return {}


async def _multipart(
    chunks: AsyncIterator[bytes], boundary: str, parts: list[tuple[str, IO[bytes]]]
) -> None:
    """Append the `file` parts of a multipart body to parts as (filename, spooled content)."""
    delimiter = b"\r\n--" + boundary.encode()
    buffer, sink = bytearray(b"\r\n"), None
    source = aiter(chunks)

    async def more() -> None:
        chunk = await anext(source, None)
        if chunk is None:
            raise ConnectError(Code.INVALID_ARGUMENT, "error reading form: unexpected end")
        buffer.extend(chunk)

    while True:
        while (at := buffer.find(delimiter)) < 0:  # a part's content (or the preamble)
            keep = len(buffer) - len(delimiter)  # a delimiter may straddle two chunks
            if keep > 0:
                if sink is not None:
                    sink.write(buffer[:keep])
                del buffer[:keep]
            await more()
        if sink is not None:
            sink.write(buffer[:at])
        del buffer[: at + len(delimiter)]
        while len(buffer) < 2:
            await more()
        if buffer.startswith(b"--"):
            return
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > 65536:
                raise ConnectError(Code.INVALID_ARGUMENT, "error reading form: headers too long")
            await more()
        params, sink = _disposition(bytes(buffer[:end])), None
        del buffer[: end + 4]
        if params.get("name") == "file":
            sink = _spool()
            parts.append((params.get("filename", ""), sink))


def _tar(members: list[tuple[str, IO[bytes], int, _Identity]]) -> Iterator[bytes]:
    """A tar of spooled files, streamed (put_archive sends it chunked)."""
    now = int(time.time())
    for name, spool, mode, who in members:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.size, info.mode, info.mtime = spool.seek(0, io.SEEK_END), mode, now
        info.uid, info.gid = who.uid, who.gid
        spool.seek(0)
        yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        while chunk := spool.read(_CHUNK):
            yield chunk
        yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


async def _write(
    shell: _Shell, handle: SandboxHandle, who: _Identity, files: list[tuple[str, IO[bytes]]]
) -> list[dict[str, str]]:
    paths = [_resolve(name, who.home) for name, _ in files]
    if len(set(paths)) < len(paths):
        message = "you cannot upload multiple files to the same path in one upload request"
        raise ConnectError(Code.INVALID_ARGUMENT, message)
    args = [arg for path in paths for arg in (path, posixpath.dirname(path))]
    out = await shell.run(handle, _PREPARE, str(who.uid), str(who.gid), *args)
    fields = out.decode(errors="surrogateescape").split("\0")
    members = [
        (real, spool, 0o644 if mode == "-" else int(mode, 8), who)
        for real, mode, (_, spool) in zip(fields[0::2], fields[1::2], files, strict=False)
    ]
    await anyio.to_thread.run_sync(shell.put_archive, handle, _tar(members))
    return [{"name": posixpath.basename(p), "type": "file", "path": p} for p in paths]


async def _upload(
    request: Request, shell: _Shell, handle: SandboxHandle, who: _Identity
) -> list[dict[str, str]]:
    kind, _, rest = request.headers.get("content-type", "").partition(";")
    kind, path = kind.strip().lower(), request.query_params.get("path")
    files: list[tuple[str, IO[bytes]]] = []
    try:
        if kind == "application/octet-stream":
            if not path:
                message = "path query parameter is required for raw body upload"
                raise ConnectError(Code.INVALID_ARGUMENT, message)
            files.append((path, _spool()))
            async for chunk in _decoded(request):
                files[0][1].write(chunk)
        elif kind.startswith("multipart/"):
            params = {k.lower(): q or t for k, q, t in _PARAM.findall(";" + rest)}
            if not params.get("boundary"):
                raise ConnectError(Code.INVALID_ARGUMENT, "multipart body without a boundary")
            await _multipart(_decoded(request), params["boundary"], files)
            # envd: `?path=` (sent for single-file writes) wins over the part's filename
            files[:] = [(path or name, spool) for name, spool in files]
        else:
            message = f"unsupported content type: {kind}, expected multipart/form-data or "
            raise ConnectError(Code.INVALID_ARGUMENT, message + "application/octet-stream")
        return await _write(shell, handle, who, files)
    finally:
        for _, spool in files:
            spool.close()


def files_app(sandboxes: Sandboxes, client: docker.DockerClient) -> Starlette:
    """The `/files` endpoint: GET downloads `?path=`, POST uploads (multipart or octet-stream).

    Errors are envd's JSON `{"code", "message"}`: 404 missing, 400 a directory or a bad
    request, 401 an unknown user, 502 an unknown sandbox.
    """
    shell = _Shell(sandboxes, client)

    async def endpoint(request: Request) -> Response:
        try:
            handle = shell.handle(request.headers.get("e2b-sandbox-id", ""))
            who = await shell.identity(handle, request.query_params.get("username") or handle.user)
            if request.method == "POST":
                return JSONResponse(await _upload(request, shell, handle, who))
            path = _resolve(request.query_params.get("path", ""), who.home)
            return await _download(shell, handle, path, request.headers.get("accept-encoding", ""))
        except ConnectError as exc:
            return _error(_HTTP_STATUS.get(exc.code, 500), exc.message)

    return Starlette(routes=[Route("/files", endpoint, methods=["GET", "POST"])])
