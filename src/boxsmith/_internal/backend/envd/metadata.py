"""File metadata as envd 0.6.2 keeps it: user extended attributes `user.e2b.<key>` on the file.

Writing (`from_headers`, `pax_headers`): an upload's `X-Metadata-<key>: <value>` headers (keys
lowercased, the first value of a repeated header, an empty key dropped) are checked with envd's
rules and become `SCHILY.xattr.user.e2b.<key>` PAX records of the member `put_archive` unpacks;
Docker's unpacking sets them on the new file. Docker replaces a file it unpacks over, so an
overwrite leaves exactly the new set, as envd's WriteMetadata does (which also removes stale
keys). Nothing in the image is needed, and nothing is written from the host into the container's
files.

Reading (`READ_SCRIPT`, `parse`): Docker's `get_archive` carries no user xattrs, and images have
neither `getfattr` nor Python, so a script in the container copies the attributes only (GNU
`cp --attributes-only --preserve=xattr`, no data read) of the regular files into a temporary
directory and lets GNU tar (Essential in Debian and Ubuntu) archive those empty copies and the
other entries with `--xattrs`; the backend reads the PAX records. As envd's ReadMetadata it is
best effort (no metadata where the tools or the filesystem do not keep xattrs) and follows
symlinks; values that are not UTF-8 are skipped.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from connectrpc.code import Code
from connectrpc.errors import ConnectError

if TYPE_CHECKING:
    from boxsmith._internal.backend.envd.shell import Shell
    from boxsmith._internal.backend.runtime import SandboxHandle

__all__ = ["READ_SCRIPT", "Ledger", "from_headers", "parse", "pax_headers", "read", "read_args"]

PREFIX = "user.e2b."
_HEADER = b"x-metadata-"
_PAX = "SCHILY.xattr." + PREFIX
_MAX_KEY = 255 - len(PREFIX)  # the kernel's limit on an xattr's name
_MAX_TOTAL = 4096  # envd's budget for one file's names and values (one ext4 block)

# Arguments: (kind, path) pairs, kind being find's %y%Y (`ff` a file, `lf` a link to one, `ld`
# ...). Prints the temporary directory, NUL; each symlink's resolved target (envd's
# symlink_target: absolute, followed to the end; "" on a loop), NUL-ended, in order; then a
# tar of the entries' `user.e2b.*` xattrs, each a member named by its path (a file's copy under
# the directory).
READ_SCRIPT = r"""tmp=$(mktemp -d) || exit 1
trap 'rm -rf -- "$tmp"' EXIT
mkdir "$tmp/c" || exit 1
printf '%s\0' "$tmp"
: >"$tmp/files"
: >"$tmp/names"
while [ $# -gt 1 ]; do
  case $1 in l?) realpath -z -m -- "$2" 2>/dev/null || printf '\0' ;; esac
  case $1 in
    ?f) printf '%s\0' "$2" >>"$tmp/files"; printf '%s\0' "$tmp/c$2" >>"$tmp/names" ;;
    *) printf '%s\0' "$2" >>"$tmp/names" ;;
  esac
  shift 2
done
xargs -0 -r -a "$tmp/files" cp --parents -L --attributes-only --preserve=xattr \
  -t "$tmp/c" -- 2>/dev/null
tar -c -f - -P -h --format=posix --no-recursion --xattrs --xattrs-include='user.e2b.*' \
  --null --no-unquote -T "$tmp/names" 2>/dev/null
exit 0
"""


# the most argument bytes one READ_SCRIPT exec gets: far below the kernel's limit on an exec's
# arguments (2 MiB with the environment), so a listing of any size reads in batches
_BATCH_BYTES = 256 * 1024


class Ledger:
    """The sandboxes whose files got metadata through this backend: only their listings and
    stats pay READ_SCRIPT's exec for it (one with symlinks pays it anyway, for their targets).

    A sandbox whose files carry `user.e2b.*` xattrs it did not get from here (set inside the
    sandbox, or baked into its template) shows them once a write with metadata marked it.
    """

    def __init__(self) -> None:
        self._marked: set[str] = set()
        self._lock = threading.Lock()

    def mark(self, sandbox_id: str) -> None:
        with self._lock:
            self._marked.add(sandbox_id)

    def has(self, sandbox_id: str) -> bool:
        with self._lock:
            return sandbox_id in self._marked

    def forget(self, sandbox_id: str) -> None:
        """The sandbox stopped."""
        with self._lock:
            self._marked.discard(sandbox_id)


async def read(
    shell: Shell, handle: SandboxHandle, entries: list[tuple[str, str]]
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(symlink targets in order, {path: metadata}) of `entries` (kind, path), READ_SCRIPT run
    in `handle`'s container once per batch of at most _BATCH_BYTES of arguments."""
    targets: list[str] = []
    found: dict[str, dict[str, str]] = {}
    batch: list[tuple[str, str]] = []
    size = 0
    for number, entry in enumerate(entries, 1):
        batch.append(entry)
        size += len(entry[0]) + len(entry[1].encode(errors="surrogateescape")) + 2
        if size >= _BATCH_BYTES or number == len(entries):
            out = await shell.run(handle, READ_SCRIPT, *read_args(batch))
            more_targets, more_found = parse(out, batch)
            targets += more_targets
            found.update(more_found)
            batch, size = [], 0
    return targets, found


def read_args(entries: Iterable[tuple[str, str]]) -> list[str]:
    """READ_SCRIPT's arguments for (kind, path) pairs, kind being find's `%y%Y`."""
    return [arg for kind, path in entries for arg in (kind, path)]


def parse(
    out: bytes, entries: list[tuple[str, str]]
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(the symlinks' targets in order, {path: metadata}) from READ_SCRIPT's output for
    `entries`; a path without `user.e2b.*` xattrs is absent."""
    tmp, _, rest = out.partition(b"\0")
    links = sum(1 for kind, _ in entries if kind.startswith("l"))
    fields = rest.split(b"\0", links)
    targets = [field.decode(errors="replace") for field in fields[:links]]
    archive = fields[links] if len(fields) > links else b""
    copies = tmp.decode(errors="surrogateescape") + "/c"
    names = {copies + path if kind.endswith("f") else path: path for kind, path in entries}
    found: dict[str, dict[str, str]] = {}
    try:
        with tarfile.open(
            fileobj=io.BytesIO(archive), encoding="utf-8", errors="surrogateescape"
        ) as tar:
            for member in tar:
                metadata = _metadata(member.pax_headers)
                if metadata and member.name in names:
                    found[names[member.name]] = metadata
    except tarfile.TarError:
        pass  # best effort, as envd: what came before a damaged archive stands
    return targets, found


def _metadata(records: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for record, value in records.items():
        key = record.removeprefix(_PAX)
        if key == record:
            continue  # another namespace
        try:
            (key + value).encode()
        except UnicodeEncodeError:
            continue  # bytes that are not UTF-8 (surrogate-escaped): envd skips them
        found[key] = value
    return found


def from_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """An upload's metadata from its `X-Metadata-*` headers, as envd reads them (keys
    lowercased, the first of repeated headers, empty keys dropped), checked with envd's rules:
    ConnectError INVALID_ARGUMENT ("invalid metadata: ...") otherwise."""
    metadata: dict[str, str] = {}
    for name, value in raw:
        key = name.lower().removeprefix(_HEADER)
        if key != name.lower() and key:
            metadata.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    problem = _invalid(metadata)
    if problem:
        raise ConnectError(Code.INVALID_ARGUMENT, f"invalid metadata: {problem}")
    return metadata


def _invalid(metadata: Mapping[str, str]) -> str | None:
    """What envd's ValidateMetadata says about `metadata`, or None when it passes."""
    total = 0
    for key, value in metadata.items():
        if len(key) > _MAX_KEY:
            return f"metadata key {key!r} exceeds {_MAX_KEY} bytes"
        for label, text in (("key", key), (f"value for key {key!r}", value)):
            bad = next((i for i, c in enumerate(text) if not " " <= c <= "~"), None)
            if bad is not None:
                return (
                    f"metadata {label} contains non-printable-ASCII byte "
                    f"0x{ord(text[bad]):02x} at offset {bad}"
                )
        total += len(PREFIX) + len(key) + len(value)
    if total > _MAX_TOTAL:
        return f"total metadata size {total} exceeds {_MAX_TOTAL} bytes"
    return None


def pax_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    """The PAX records that make Docker's unpacking set `metadata` as `user.e2b.*` xattrs."""
    return {_PAX + key: value for key, value in metadata.items()}
