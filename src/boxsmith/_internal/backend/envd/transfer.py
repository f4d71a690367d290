"""envd's `/files` endpoint, served host-side on a sandbox's container (`files_app`): GET
downloads a file (`download`: docker's `get_archive`, or `cat` where that sees nothing or a
`stat` size says nothing, as in `/proc`); POST uploads multipart or octet-stream bodies
(gunzipped when sent so), spooled to temporary files and then streamed into `put_archive` as
a tar owned by the requesting user (`?username=`, else the sandbox's user), keeping an
overwritten file's mode.
Errors are envd's JSON `{"code", "message"}`.

Access is envd's: the sandbox's token in `X-Access-Token`, or a v1 signature of the path, the
operation (GET read, POST write) and the user in the URL (`runtime.signature_error`); else 401
before anything else. An upload larger than the backend's limit is refused with 413 as soon as
its size is known (Content-Length) or, streamed, once it passes the limit: nothing is written.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

import anyio.to_thread
import docker
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsmith._internal.backend.envd import metadata
from boxsmith._internal.backend.envd.download import download
from boxsmith._internal.backend.envd.shell import CHUNK, Identity, Shell, resolve
from boxsmith._internal.backend.runtime import (
    FileRequest,
    Sandboxes,
    SandboxHandle,
    signature_error,
    signed_by,
)

__all__ = ["files_app"]

_SPOOL_IN_MEMORY = 4 << 20  # larger uploads spill to a temporary file
_DRAIN = 256 << 10  # Go's http server reads this much of a body its handler did not
_HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.UNAVAILABLE: 502,
    Code.RESOURCE_EXHAUSTED: 507,
}
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


def _error(status: int, message: str) -> Response:
    return JSONResponse({"code": status, "message": message}, status_code=status)


class _TooLarge(Exception):
    """An upload past the backend's size limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the upload is larger than this backend's limit of {limit >> 20} MiB "
            "(BOXSMITH_BACKEND_MAX_UPLOAD_MB)"
        )


async def _bounded(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, gunzipped, raising _TooLarge once more than `limit` bytes came (so a
    huge body, or a small gzip bomb, never reaches the disk)."""
    received = 0
    async for chunk in _decoded(request):
        received += len(chunk)
        if received > limit:
            raise _TooLarge(limit)
        yield chunk


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


def _tar(
    members: list[tuple[str, IO[bytes], int, Identity]], xattrs: dict[str, str]
) -> Iterator[bytes]:
    """A tar of spooled files, streamed (put_archive sends it chunked); each member carries
    `xattrs` as PAX records (Docker sets them on the file)."""
    now = int(time.time())
    for name, spool, mode, who in members:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.size, info.mode, info.mtime = spool.seek(0, io.SEEK_END), mode, now
        info.uid, info.gid, info.pax_headers = who.uid, who.gid, xattrs
        spool.seek(0)
        yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        while chunk := spool.read(CHUNK):
            yield chunk
        yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


async def _write(
    shell: Shell,
    handle: SandboxHandle,
    who: Identity,
    files: list[tuple[str, IO[bytes]]],
    written: dict[str, str],
    *,
    ledger: metadata.Ledger,
) -> list[dict[str, Any]]:
    paths = [resolve(name, who.home) for name, _ in files]
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
    tar = _tar(members, metadata.pax_headers(written))
    if written:  # from now on this sandbox's listings read metadata
        ledger.mark(handle.id)
    await anyio.to_thread.run_sync(shell.put_archive, handle, tar)
    answer: list[dict[str, Any]] = [
        {"name": posixpath.basename(p), "type": "file", "path": p} for p in paths
    ]
    if written:  # envd answers what the files now carry, read back
        kinds = [("ff", real) for real, *_ in members]
        persisted = (await metadata.read(shell, handle, kinds))[1]
        for entry, (_, real) in zip(answer, kinds, strict=False):
            if persisted.get(real):
                entry["metadata"] = persisted[real]
    return answer


async def _upload(
    request: Request,
    shell: Shell,
    handle: SandboxHandle,
    who: Identity,
    *,
    limit: int,
    ledger: metadata.Ledger,
) -> list[dict[str, Any]]:
    kind, _, rest = request.headers.get("content-type", "").partition(";")
    kind, path = kind.strip().lower(), request.query_params.get("path")
    try:
        written = metadata.from_headers(request.headers.raw)  # before the body, as envd
    except ConnectError:
        await _drain(request)
        raise
    files: list[tuple[str, IO[bytes]]] = []
    try:
        if kind == "application/octet-stream":
            if not path:
                message = "path query parameter is required for raw body upload"
                raise ConnectError(Code.INVALID_ARGUMENT, message)
            files.append((path, _spool()))
            async for chunk in _bounded(request, limit):
                files[0][1].write(chunk)
        elif kind.startswith("multipart/"):
            params = {k.lower(): q or t for k, q, t in _PARAM.findall(";" + rest)}
            if not params.get("boundary"):
                raise ConnectError(Code.INVALID_ARGUMENT, "multipart body without a boundary")
            await _multipart(_bounded(request, limit), params["boundary"], files)
            # envd: `?path=` (sent for single-file writes) wins over the part's filename
            files[:] = [(path or name, spool) for name, spool in files]
        else:
            message = f"unsupported content type: {kind}, expected multipart/form-data or "
            raise ConnectError(Code.INVALID_ARGUMENT, message + "application/octet-stream")
        return await _write(shell, handle, who, files, written, ledger=ledger)
    finally:
        for _, spool in files:
            spool.close()


async def _drain(request: Request) -> None:
    """Read (and drop) up to _DRAIN bytes of a refused request's body, as Go's server does, so
    the client, still sending, reads the answer instead of a reset connection."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > _DRAIN:
            return


def files_app(
    sandboxes: Sandboxes,
    client: docker.DockerClient,
    *,
    max_upload_bytes: int,
    ledger: metadata.Ledger,
) -> Starlette:
    """The `/files` endpoint: GET downloads `?path=`, POST uploads (multipart or octet-stream).

    Errors are envd's JSON `{"code", "message"}`: 401 without the token or a valid signature,
    404 missing, 400 a directory or a bad request, 401 an unknown user, 413 an upload over
    `max_upload_bytes`, 502 an unknown sandbox. A write with metadata marks its sandbox in
    `ledger`.
    """
    shell = Shell(sandboxes, client)

    async def endpoint(request: Request) -> Response:
        query = request.query_params
        signed = FileRequest(
            path=query.get("path", ""),
            operation="write" if request.method == "POST" else "read",
            username=query.get("username", ""),
            signature=query.get("signature"),
            expiration=query.get("signature_expiration"),
        )
        try:
            handle = _sandbox(request, shell, sandboxes, signed)
            if handle is None:
                return _error(401, "invalid signature")
            refused = signature_error(handle, signed, request.headers.get("x-access-token", ""))
            if refused:
                return _error(401, refused)
            if request.method == "POST" and _declared_size(request) > max_upload_bytes:
                return _error(413, str(_TooLarge(max_upload_bytes)))
            who = await shell.identity(handle, signed.username or handle.user)
            if request.method == "POST":
                uploaded = await _upload(
                    request, shell, handle, who, limit=max_upload_bytes, ledger=ledger
                )
                return JSONResponse(uploaded)
            path = resolve(signed.path, who.home)
            return await download(shell, handle, path, request.headers.get("accept-encoding", ""))
        except ConnectError as exc:
            return _error(_HTTP_STATUS.get(exc.code, 500), exc.message)
        except _TooLarge as exc:
            return _error(413, str(exc))

    return Starlette(routes=[Route("/files", endpoint, methods=["GET", "POST"])])


def _sandbox(
    request: Request, shell: Shell, sandboxes: Sandboxes, signed: FileRequest
) -> SandboxHandle | None:
    """The sandbox a request is for: the `E2b-Sandbox-Id` header's (ConnectError when it does
    not run), else the one whose token signed the URL (None when none did)."""
    sandbox_id = request.headers.get("e2b-sandbox-id")
    if sandbox_id is not None or signed.signature is None:
        return shell.handle(sandbox_id or "")
    return signed_by(sandboxes, signed)


def _declared_size(request: Request) -> int:
    """The body's Content-Length (0 when absent or compressed: then it is counted as it comes)."""
    raw = request.headers.get("content-length", "")
    if request.headers.get("content-encoding") or not raw.isdigit():
        return 0
    return int(raw)
