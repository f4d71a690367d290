"""envd's filesystem, served host-side on a sandbox's container: the `filesystem.Filesystem`
Connect service (`filesystem_app`); the `/files` upload and download endpoint is `transfer`,
and both run their scripts through `shell.Shell`.

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
import posixpath
from typing import Any

import docker
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

from boxsmith._internal.backend.envd import metadata
from boxsmith._internal.backend.envd.shell import Identity, Shell, resolve
from boxsmith._internal.backend.runtime import Sandboxes, SandboxHandle

__all__ = ["FilesystemService", "filesystem_app"]

_FIND_FORMAT = r"%y\0%s\0%m\0%u\0%g\0%T@\0%Y\0%p\0"  # %Y: a symlink's target's type
_FIELDS = 8
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


def _go_permissions(kind: str, bits: int) -> str:
    """Go's FileMode.String(), which envd reports: `-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`."""
    flags = {"d": "d", "l": "L", "b": "D", "c": "D", "p": "p", "s": "S"}.get(kind, "")
    flags += "u" * bool(bits & 0o4000) + "g" * bool(bits & 0o2000)
    flags += "c" * (kind == "c") + "t" * bool(bits & 0o1000)
    rwx = "".join(c if bits & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return (flags or "-") + rwx


_TYPES = {"f": FileType.FILE, "d": FileType.DIRECTORY, "l": FileType.SYMLINK}


Row = list[bytes]  # the _FIND_FORMAT fields of one path


def _rows(out: bytes) -> list[Row]:
    """The paths `find -printf _FIND_FORMAT` printed, in envd's (lexical, depth-first) order."""
    fields = out.split(b"\0")[:-1]
    rows = (fields[i : i + _FIELDS] for i in range(0, len(fields) - _FIELDS + 1, _FIELDS))
    return sorted(rows, key=lambda r: r[7].split(b"/"))


def _entries(
    rows: list[Row], targets: dict[str, str], metadata: dict[str, dict[str, str]]
) -> list[EntryInfo]:
    """EntryInfos as envd gives them: a symlink's `type` is its target's, `is_symlink` marks
    it, `symlink_target` is `targets[path]` (absolute, resolved); `metadata[path]` (the
    `user.e2b.*` xattrs) when there is any."""
    entries = []
    for kind_b, size, mode, owner, group, mtime, target_kind, path_b in rows:
        kind, bits = kind_b.decode(), int(mode, 8)
        path = path_b.decode(errors="surrogateescape")
        seconds, _, fraction = mtime.partition(b".")
        symlink = kind == "l"
        entries.append(
            EntryInfo(
                name=_text(posixpath.basename(path) or path),
                type=_TYPES.get(target_kind.decode(), FileType.UNSPECIFIED),
                path=_text(path),
                size=int(size),
                mode=bits & 0o777,
                permissions=_go_permissions(kind, bits),
                owner=owner.decode(errors="replace"),
                group=group.decode(errors="replace"),
                modified_time=Timestamp(
                    seconds=int(seconds), nanos=int(fraction[:9].ljust(9, b"0"))
                ),
                symlink_target=targets.get(path, "") if symlink else None,
                metadata=metadata.get(path) or None,
                is_symlink=symlink,
            )
        )
    return entries


def _text(name: str) -> str:
    """A name for the wire: bytes that are not UTF-8 replaced, as before."""
    return name.encode(errors="surrogateescape").decode(errors="replace")


def _first(entries: list[EntryInfo], path: str) -> EntryInfo:
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

    def __init__(
        self, sandboxes: Sandboxes, client: docker.DockerClient, ledger: metadata.Ledger
    ) -> None:
        self._shell = Shell(sandboxes, client)
        self._ledger = ledger

    async def _caller(self, ctx: RequestContext[Any, Any]) -> tuple[SandboxHandle, Identity]:
        handle = self._shell.handle(ctx.request_headers.get("e2b-sandbox-id", ""))
        user = _basic_user(ctx.request_headers.get("authorization")) or handle.user
        return handle, await self._shell.identity(handle, user)

    async def _found(self, handle: SandboxHandle, out: bytes) -> list[EntryInfo]:
        """The entries of a `find -printf _FIND_FORMAT`, with their symlinks' targets and, in a
        sandbox whose files got metadata here, their metadata: read in one more exec (a batch
        of them for a long listing)."""
        rows = _rows(out)
        kinds = [
            ((row[0] + row[6]).decode(), row[7].decode(errors="surrogateescape")) for row in rows
        ]
        links = [path for kind, path in kinds if kind.startswith("l")]
        if not self._ledger.has(handle.id):
            kinds = [entry for entry in kinds if entry[0].startswith("l")]
        if not kinds:
            return _entries(rows, {}, {})
        resolved, metadatas = await metadata.read(self._shell, handle, kinds)
        return _entries(rows, dict(zip(links, resolved, strict=False)), metadatas)

    async def stat(
        self, request: StatRequest, ctx: RequestContext[StatRequest, StatResponse], /
    ) -> StatResponse:
        handle, who = await self._caller(ctx)
        path = resolve(request.path, who.home)
        out = await self._shell.run(handle, _STAT, _FIND_FORMAT, path)
        return StatResponse(entry=_first(await self._found(handle, out), path))

    async def list_dir(
        self, request: ListDirRequest, ctx: RequestContext[ListDirRequest, ListDirResponse], /
    ) -> ListDirResponse:
        handle, who = await self._caller(ctx)
        path, depth = resolve(request.path, who.home), str(request.depth or 1)
        out = await self._shell.run(handle, _LIST, _FIND_FORMAT, path, depth)
        return ListDirResponse(entries=await self._found(handle, out))

    async def make_dir(
        self, request: MakeDirRequest, ctx: RequestContext[MakeDirRequest, MakeDirResponse], /
    ) -> MakeDirResponse:
        handle, who = await self._caller(ctx)
        path = resolve(request.path, who.home)
        await self._shell.run(handle, _MKDIR, str(who.uid), str(who.gid), path)
        name = posixpath.basename(path) or path
        return MakeDirResponse(entry=EntryInfo(name=name, type=FileType.DIRECTORY, path=path))

    async def move(
        self, request: MoveRequest, ctx: RequestContext[MoveRequest, MoveResponse], /
    ) -> MoveResponse:
        handle, who = await self._caller(ctx)
        source = resolve(request.source, who.home)
        target = resolve(request.destination, who.home)
        ids = (str(who.uid), str(who.gid))
        parent = posixpath.dirname(target)
        out = await self._shell.run(handle, _MOVE, *ids, _FIND_FORMAT, source, target, parent)
        return MoveResponse(entry=_first(await self._found(handle, out), target))

    async def remove(
        self, request: RemoveRequest, ctx: RequestContext[RemoveRequest, RemoveResponse], /
    ) -> RemoveResponse:
        handle, who = await self._caller(ctx)
        await self._shell.run(handle, _REMOVE, resolve(request.path, who.home))
        return RemoveResponse()


def filesystem_app(
    sandboxes: Sandboxes, client: docker.DockerClient, ledger: metadata.Ledger
) -> filesystem_connect.FilesystemASGIApplication:
    """The Connect app serving `/filesystem.Filesystem/*` (mount at `app.path`)."""
    service = FilesystemService(sandboxes, client, ledger)
    return filesystem_connect.FilesystemASGIApplication(service)
