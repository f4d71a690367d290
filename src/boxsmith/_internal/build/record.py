"""The build record: answer a no-change `boxsmith build` without loading the spec models or docker.

After a `boxsmith build` in which every selected template built or was already up to date,
`.boxsmith/build-record.json` (gitignored) records what the answer depended on: the project's
fingerprint (`stamp.fingerprint`: boxsmith's code, the specs, the files they copy, generated/),
pyproject.toml (the mirror map), the host CA bundle, the selection, and the id of every image
involved (each template's image, its parity base and its base image). The next `build` with the
same selection first recomputes the fingerprint and asks the engine (one raw HTTP request per
image on its unix socket) whether those images still have those ids. Equal ids mean equal
labels and so equal build keys: the full run would find every template cached, and this answers
the same, in a fraction of its time. Anything else (a missing record, `--force`, a difference,
an engine not on a unix socket, BOXSMITH_NO_CACHE=1) means the full run.

Import-light on purpose: json, hashlib and a socket; no docker-py, pydantic or Jinja.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from boxsmith._internal.docker.host_ca import host_ca_bundle
from boxsmith._internal.progress import table
from boxsmith._internal.render import stamp
from boxsmith._internal.render.outputs import write_atomic
from boxsmith.config import Settings

__all__ = ["RECORD_FILE", "BuildRecord", "summary_table"]

RECORD_FILE = ".boxsmith/build-record.json"
_SOCKET = "/var/run/docker.sock"


def _digest(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _conditions(
    settings: Settings, names: Sequence[str], labels: Sequence[str], allow_skip: bool
) -> dict[str, object]:
    """Everything besides the project files and the images that the answer depends on."""
    ca = host_ca_bundle()
    return {
        "selection": [list(names), list(labels), allow_skip],
        "docker_host": os.environ.get("DOCKER_HOST", ""),
        "ca": [str(ca or ""), _digest(ca)],
        "pyproject": _digest(settings.root / "pyproject.toml"),
    }


def _get(path: str, url: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET on a unix socket (the engine closes the connection after answering)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(f"GET {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b" ", 2)
    return (int(status[1]) if len(status) > 1 and status[1].isdigit() else 0), body


def _image_ids(refs: Iterable[str]) -> dict[str, str] | None:
    """{ref: image id} from the engine, "" for a missing image; None when it cannot be asked."""
    host = os.environ.get("DOCKER_HOST", "") or f"unix://{_SOCKET}"
    if not host.startswith("unix://"):
        return None
    found: dict[str, str] = {}
    try:
        for ref in refs:
            # The engine routes /images/{name:.*}/json: a reference needs no escaping.
            status, body = _get(host.removeprefix("unix://"), f"/images/{ref}/json")
            if status == 404:
                found[ref] = ""
            elif status == 200:
                found[ref] = str(json.loads(body).get("Id", ""))
            else:
                return None
    except (OSError, ValueError):
        return None
    return found


class BuildRecord:
    """The record as one `boxsmith build` run uses it: `answer` before building, then `save` (all
    built or cached) or `forget`.

    The project's fingerprint is computed once per run: `answer` computes it over the recorded
    context, and `save` reuses it when the context is still the same (the build itself changes no
    file the fingerprint reads). The selection and the engine's images are asked each time.
    """

    def __init__(
        self, settings: Settings, names: Sequence[str], labels: Sequence[str], allow_skip: bool
    ) -> None:
        self.settings = settings
        self._selection = (list(names), list(labels), allow_skip)
        self._fingerprint: tuple[tuple[str, ...], str] | None = None

    def fingerprint(self, context: Iterable[str]) -> str:
        """`stamp.fingerprint` of the project over `context`, computed once per context."""
        files = tuple(sorted(set(context)))
        if self._fingerprint is None or self._fingerprint[0] != files:
            self._fingerprint = (files, stamp.fingerprint(self.settings, files))
        return self._fingerprint[1]

    def _conditions(self) -> dict[str, object]:
        return _conditions(self.settings, *self._selection)

    def answer(self, *, out: TextIO, err: TextIO, as_json: bool) -> int | None:
        """Print the no-change result and return exit 0, or None when the full run must
        decide."""
        if not stamp.enabled():
            return None
        try:
            data = json.loads((self.settings.root / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("conditions") != self._conditions():
            return None
        context, images, rows = data.get("context"), data.get("images"), data.get("rows")
        if not (
            isinstance(context, list)
            and isinstance(images, dict)
            and isinstance(rows, list)
            and all(isinstance(row, dict) for row in rows)
        ):
            return None
        if data.get("fingerprint") != self.fingerprint(str(c) for c in context):
            return None
        if _image_ids(images) != images:
            return None
        _print_cached(
            [{**row, "status": "cached", "seconds": 0.0} for row in rows], out, err, as_json
        )
        return 0

    def save(
        self,
        *,
        context: Iterable[str],
        rows: Sequence[Mapping[str, Any]],
        images: Mapping[str, str],
    ) -> None:
        """Record a build run in which every template is built or cached. Best effort."""
        if not stamp.enabled():
            return
        files = sorted(set(context))
        data = {
            "fingerprint": self.fingerprint(files),
            "context": files,
            "conditions": self._conditions(),
            "images": dict(sorted(images.items())),
            "rows": list(rows),
        }
        with contextlib.suppress(OSError):
            write_atomic(
                self.settings.root / RECORD_FILE, (json.dumps(data, indent=1) + "\n").encode()
            )

    def forget(self) -> None:
        """Drop the record (a build run that did not end with everything up to date)."""
        with contextlib.suppress(OSError):
            (self.settings.root / RECORD_FILE).unlink()


def _print_cached(
    cached: Sequence[Mapping[str, Any]], out: TextIO, err: TextIO, as_json: bool
) -> None:
    for row in cached:
        for note in row.get("notes", []):
            err.write(f"build {row['name']}:{row['version']}: {note}\n")
        err.write(f"build {row['name']}:{row['version']}: unchanged (cached)\n")
    if as_json:
        json.dump({"builds": cached}, out, indent=2)
        out.write("\n")
    else:
        out.write(summary_table(cached))
    err.write(
        f"ok: {len(cached)} template(s): {len(cached)} cached (unchanged since {RECORD_FILE})\n"
    )


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """template, version, status, time, image size; the reasons for skips below the table."""
    text = table(
        ("template", "version", "status", "time", "size"),
        [
            (
                str(r["name"]),
                str(r["version"]),
                str(r["status"]),
                f"{float(r['seconds']):.1f}s",
                f"{int(r['size']) / 1e6:,.0f} MB" if r.get("size") else "-",
            )
            for r in rows
        ],
        right=(3, 4),
    )
    for r in rows:
        if r["status"] == "skipped":
            text += f"skipped {r['name']}:{r['version']}: {r['reason']}\n"
    return text
