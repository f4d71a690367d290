"""What every REST handler of the local backend shares: E2B's error body, its timestamps, JSON
bodies of the right shape, and `name[:tag]` references resolved against the store.

A handler raises `BadRequest` (a ValueError) for a body it refuses; the control plane's route
guard answers it as 400 in E2B's shape, so the SDK raises its own exception type.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from boxsmith.backend.store import Build, Store

__all__ = [
    "DEFAULT_TAG",
    "BadRequest",
    "error",
    "iso",
    "json_object",
    "resolve_build",
    "split_name",
    "template_ref",
]

DEFAULT_TAG = "default"  # what a bare template name means, as on E2B


class BadRequest(ValueError):
    """A request body or parameter the backend refuses (400)."""


def error(status: int, message: str) -> JSONResponse:
    """E2B's error body; the SDK's parser needs both keys."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


def iso(value: Any) -> str:
    """A datetime as E2B writes it (UTC, `Z`)."""
    return str(value.isoformat()).replace("+00:00", "Z")


async def json_object(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; BadRequest for anything else (an empty body is `{}`
    where `empty_ok`)."""
    raw = await request.body()
    if empty_ok and not raw.strip():
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(data).__name__}")
    return data


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
