"""What boxsmith remembers of past builds and smoke runs: `.boxsmith/history.jsonl`.

The index (generated/index.json) keeps what is committed: versions and publish records. The build
time and image size of each version and the smoke results over time describe this machine (its
engine, its cache, its network), so they live with the machine's other state under `.boxsmith/`,
never in generated/. `boxsmith report` draws its charts from them.

One JSON object per line, appended: each record is one `write()` of one line under 4 KiB to a
file opened with O_APPEND, so two commands appending at once never interleave a line. The file is
bounded: past `MAX_BYTES` it becomes `history.jsonl.1` (the previous `.1` is dropped) and a new
file starts; readers read both, oldest first.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from boxsmith.config import Settings

__all__ = ["MAX_BYTES", "MAX_LINE", "history_file", "read_history", "record_build", "record_smoke"]

FILE_NAME = "history.jsonl"
MAX_BYTES = 1 << 20
"""The size past which the file is rotated (about 5,000 records)."""
MAX_LINE = 4096
"""The longest line: one write() of it is atomic with O_APPEND on local file systems."""
_TEXT = 200  # the longest string field kept


class _Suite(Protocol):
    """A smoke suite result (`smoke.report.SuiteResult`): its JSON form."""

    def to_json(self) -> Mapping[str, object]: ...


def history_file(settings: Settings) -> Path:
    """`.boxsmith/history.jsonl` of the project."""
    return settings.state_dir / FILE_NAME


def record_build(
    settings: Settings,
    *,
    name: str,
    version: str,
    status: str,
    seconds: float,
    size: int,
    image_id: str = "",
) -> None:
    """Append one finished build (`built` or `failed`): its time and image size."""
    _append(
        settings,
        {
            "event": "build",
            "at": _now(),
            "template": name,
            "version": version,
            "status": status,
            "seconds": round(seconds, 2),
            "size": size,
            "image_id": image_id,
        },
    )


def record_smoke(settings: Settings, suites: Iterable[_Suite], *, run: str = "") -> None:
    """Append one record per suite of a smoke run (`run`: e.g. `smoke-container`): its status
    and each check's name, kind, status and screenshot (a page check's, when it has one)."""
    at = _now()
    for suite in suites:
        data = suite.to_json()
        ref = str(data.get("name", ""))
        name, _, version = ref.rpartition(":")
        raw = data.get("checks")
        checks = [_check(c) for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
        record: dict[str, Any] = {
            "event": "smoke",
            "at": at,
            "template": name or ref,
            "version": version,
            "run": run,
            "target": _short(data.get("target", "")),
            "status": _short(data.get("status", "")),
            "seconds": data.get("seconds", 0),
            "checks": checks,
        }
        while len(_line(record)) > MAX_LINE and record["checks"]:
            record["checks"] = record["checks"][:-1]  # the line stays one atomic write
            record["truncated"] = True
        _append(settings, record)


def read_history(settings: Settings) -> list[dict[str, Any]]:
    """Every record, oldest first (the rotated file, then the current one); a line that is not
    a JSON object (a torn write of a crashed run) is left out."""
    path = history_file(settings)
    records: list[dict[str, Any]] = []
    for file in (path.with_name(FILE_NAME + ".1"), path):
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                records.append(item)
    return records


def _check(raw: Mapping[str, object]) -> dict[str, str]:
    check = {key: _short(raw.get(key, "")) for key in ("name", "kind", "status")}
    if raw.get("screenshot"):
        check["screenshot"] = _short(raw["screenshot"], 400)
    return check


def _short(value: object, limit: int = _TEXT) -> str:
    text = str(value) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _line(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n").encode()


def _append(settings: Settings, record: Mapping[str, Any]) -> None:
    """Append `record` as one line; best effort (history never fails the command that ran)."""
    line = _line(record)
    if len(line) > MAX_LINE:
        return
    path = history_file(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open(path, len(line))
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        return


def _open(path: Path, adding: int) -> int:
    """The file opened for appending; rotated first when `adding` bytes would pass MAX_BYTES."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    fd = os.open(path, flags, 0o644)
    if os.fstat(fd).st_size + adding <= MAX_BYTES:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one rotation: the others find the new file below
        if _same_file(fd, path):
            os.replace(path, path.with_name(FILE_NAME + ".1"))
    finally:
        os.close(fd)
    return os.open(path, flags, 0o644)


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (not rotated by another run)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
