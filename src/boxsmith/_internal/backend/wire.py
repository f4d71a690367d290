"""What every REST handler of the local backend shares: E2B's error body, its timestamps, JSON
bodies of the right shape with typed fields, tags as E2B stores them, `name[:tag]` references
resolved against the store, and error text without host paths.

A handler raises `BadRequest` (a ValueError) for a body or parameter it refuses; the control
plane's route guard answers it in E2B's shape (400, or the exception's `status`), so the SDK
raises its own exception type.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from boxsmith._internal.backend.records import Build
from boxsmith._internal.backend.store import Store
from boxsmith._internal.spec.names import tag_error

__all__ = [
    "DEFAULT_TAG",
    "INTERNAL",
    "MAX_JSON_BYTES",
    "BadRequest",
    "NotFound",
    "TooLarge",
    "error",
    "field_int",
    "field_str",
    "field_strings",
    "iso",
    "json_object",
    "normalized_tags",
    "page_token",
    "query_int",
    "query_time",
    "resolve_build",
    "scrub",
    "split_name",
    "template_ref",
    "token_position",
]

DEFAULT_TAG = "default"  # what a bare template name means, as on E2B
MAX_JSON_BYTES = 16 << 20  # a JSON body; the largest the SDK sends (a build's steps) is far less
INTERNAL = "internal error in the local backend; its log (server.log in the data folder) says more"


class BadRequest(ValueError):
    """A request body or parameter the backend refuses (400, or `status`)."""

    status = 400


class NotFound(BadRequest):
    """What a request names does not exist (404)."""

    status = 404


class TooLarge(BadRequest):
    """A request body over its limit (413)."""

    status = 413


def error(status: int, message: str) -> JSONResponse:
    """E2B's error body; the SDK's parser needs both keys."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


def iso(value: Any) -> str:
    """A datetime as E2B writes it (UTC, `Z`)."""
    return str(value.isoformat()).replace("+00:00", "Z")


async def json_object(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; BadRequest for anything else (an empty body is `{}`
    where `empty_ok`), TooLarge past MAX_JSON_BYTES (read no further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise TooLarge(f"the JSON body is larger than {MAX_JSON_BYTES >> 20} MB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if empty_ok and not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, not {_kind(data)}")
    return data


def _kind(value: object) -> str:
    """A JSON value's type as the JSON world names it."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def field_str(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """`body[key]` as a string (None when absent or null); BadRequest for another type."""
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, not {_kind(value)}")
    return value


def field_strings(body: Mapping[str, Any], key: str) -> list[str]:
    """`body[key]` as a list of strings ([] when absent or null); BadRequest otherwise."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"{key} must be a list of strings")
    return value


def field_int(body: Mapping[str, Any], key: str, *, low: int, high: int) -> int | None:
    """`body[key]` as a whole number from `low` to `high` (None when absent or null)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be a whole number, not {_kind(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be between {low} and {high}, got {value}")
    return value


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    """Query parameter `name` as a whole number from `low` to `high`; BadRequest otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,12}", raw.strip()):
        raise BadRequest(f"query parameter {name}={raw[:40]!r} is not a whole number")
    value = int(raw.strip())
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name} must be between {low} and {high}, got {value}")
    return value


def query_time(request: Request, name: str) -> datetime | None:
    """Query parameter `name` as an ISO 8601 time (UTC when it names no zone); BadRequest for
    another value, None when absent."""
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"query parameter {name}={raw[:40]!r} is not an ISO 8601 time") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def page_token(started_at: datetime, item_id: str) -> str:
    """The opaque `x-next-token` of a listing: the position (start time, id) of the last item
    of the page, which the next page starts after."""
    raw = f"{started_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_position(token: str) -> tuple[datetime, str]:
    """The (start time, id) a `page_token` holds; BadRequest for a token it did not make."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, sep, item_id = raw.partition("|")
        position = datetime.fromisoformat(when)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        sep = ""
    if not sep or not item_id or position.tzinfo is None:
        raise BadRequest("invalid nextToken: pass the x-next-token of the previous page")
    return position, item_id


# Docker's own folders on the host: a layer's root (`.../overlay2/<id>/merged/etc` is `/etc`
# in the image) and the legacy builder's unpacked build context.
_LAYER = re.compile(
    r"/[^\s'\":]*?/(?:overlay2|fuse-overlayfs|aufs|btrfs|zfs|vfs)/[0-9a-z]{16,}(?:-init)?"
    r"/(?:merged|diff|work|mnt)(?=(/?))"
)
_CONTEXT = re.compile(r"/[^\s'\":]*?/tmp/docker-builder\d+")
# A containerd snapshot's root (`.../snapshots/<n>/fs/etc` is `/etc` in the container), then
# whatever else names Docker's or containerd's state folders.
_SNAPSHOT = re.compile(r"/[^\s:'\"]*?/snapshots/[0-9]+/fs(?=(/?))")
_DOCKER_STATE = re.compile(
    r"/(?:var/lib/docker|var/lib/containerd|run/containerd|run/docker)[^\s:'\"]*"
)


def scrub(text: str, folders: Iterable[Path | str] = ()) -> str:
    """`text` without host paths: Docker's layer and snapshot folders give way to the path inside
    the image or container, its build-context folder to `<build context>`, each of `folders` (say
    the data folder) and what is under it to `<host folder>/...`, any other path in Docker's state
    folders to `<docker>`. Paths inside a sandbox or image are kept."""
    text = _LAYER.sub(lambda m: "" if m.group(1) else "/", text)
    text = _SNAPSHOT.sub(lambda m: "" if m.group(1) else "/", text)
    text = _CONTEXT.sub("<build context>", text)
    names = {str(folder).rstrip("/") for folder in folders} - {""}
    for name in sorted(names, key=len, reverse=True):  # the longest (most specific) first
        text = re.sub(re.escape(name) + r"(?![\w.-])", "<host folder>", text)
    return _DOCKER_STATE.sub("<docker>", text)


def normalized_tags(tags: list[str]) -> list[str]:
    """Tags as E2B stores them (trimmed, lowercased); BadRequest naming the first it refuses."""
    out = [t.strip().lower() for t in tags]
    for tag in out:
        problem = tag_error(tag)
        if problem:
            raise BadRequest(problem)
    return out


def split_name(name: str) -> tuple[str, str | None]:
    """(name, tag or None) of `name[:tag]`, trimmed and lowercased as E2B stores them (template
    and build ids are lowercase already)."""
    base, sep, tag = name.strip().lower().partition(":")
    return base, (tag if sep else None)


def template_ref(store: Store, ref: str) -> tuple[str, str | None]:
    """(template id, tag) for an id, a name or name:tag; LookupError when unknown."""
    name, tag = split_name(urllib.parse.unquote(ref))
    template = store.template(name) or store.template_for_name(name)
    if template is None:
        raise LookupError(name)
    return template.id, tag


def resolve_build(store: Store, template_id: str, tag: str | None) -> Build | None:
    """The build `name:tag` means: a tag, or a build id (`name:<uuid>`); bare is default."""
    by_tag = store.tagged_build(template_id, tag or DEFAULT_TAG)
    if by_tag is not None or tag is None:
        return by_tag
    build = store.build(tag)
    return build if build is not None and build.template_id == template_id else None
