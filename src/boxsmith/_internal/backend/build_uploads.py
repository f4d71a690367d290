"""Where the local backend keeps the build contexts the e2b SDK uploads: one file per COPY step's
files hash, in `uploads/` of the data folder.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from boxsmith._internal.backend.build_request import FILES_HASH, BuildRequestError

__all__ = ["UploadStore"]


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
