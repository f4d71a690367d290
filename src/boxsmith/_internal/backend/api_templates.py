"""The template routes of the REST control plane: list templates and their builds, look up an
alias, delete a template, and assign, remove and list tags.
"""

from __future__ import annotations

import urllib.parse

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from boxsmith._internal.backend.api_builds import DEFAULT_CPU, DEFAULT_MEMORY
from boxsmith._internal.backend.runtime import ENVD_VERSION
from boxsmith._internal.backend.store import Store
from boxsmith._internal.backend.wire import (
    DEFAULT_TAG,
    NotFound,
    error,
    field_str,
    field_strings,
    iso,
    json_object,
    normalized_tags,
    split_name,
    template_ref,
)

__all__ = ["TemplateAPI"]


class TemplateAPI:
    """The template handlers.

    Args:
        store: the SQLite state.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def _template(self, ref: str) -> tuple[str, str | None]:
        """(template id, tag) of `ref`; NotFound (404) when no template has that id or name."""
        try:
            return template_ref(self.store, ref)
        except LookupError:
            raise NotFound("template not found") from None

    async def alias(self, request: Request) -> Response:
        """GET /templates/aliases/{alias}: 200 when a template by that name exists."""
        name, _ = split_name(urllib.parse.unquote(request.path_params["alias"]))
        template = self.store.template_for_name(name)
        if template is None:
            return error(404, f"template {name!r} not found")
        return JSONResponse({"templateID": template.id, "public": False})

    async def list_templates(self, request: Request) -> Response:
        """GET /templates: every template with its latest ready build."""
        out = []
        for template in self.store.templates():
            build = self.store.tagged_build(template.id, DEFAULT_TAG)
            if build is None:
                continue
            out.append(
                {
                    "templateID": template.id,
                    "buildID": build.id,
                    "cpuCount": build.cpu_count,
                    "memoryMB": build.memory_mb,
                    "diskSizeMB": 0,
                    "public": False,
                    "aliases": [template.name],
                    "names": [template.name],
                    "createdAt": iso(template.created_at),
                    "updatedAt": iso(build.finished_at or build.created_at),
                    "createdBy": None,
                    "lastSpawnedAt": None,
                    "spawnCount": 0,
                    "buildCount": 1,
                    "envdVersion": ENVD_VERSION,
                    "buildStatus": build.status,
                }
            )
        return JSONResponse(out)

    async def list_builds(self, request: Request) -> Response:
        """GET /templates/{tid}: the template with every build, newest first (E2B's
        TemplateWithBuilds; no pagination: a local backend has few builds)."""
        tid, _ = self._template(request.path_params["tid"])
        template = self.store.template(tid)
        assert template is not None
        all_builds = self.store.template_builds(tid)
        latest = self.store.tagged_build(tid, DEFAULT_TAG)
        return JSONResponse(
            {
                "templateID": tid,
                "buildID": latest.id if latest else "",
                "cpuCount": latest.cpu_count if latest else DEFAULT_CPU,
                "memoryMB": latest.memory_mb if latest else DEFAULT_MEMORY,
                "diskSizeMB": 0,
                "public": False,
                "aliases": [template.name],
                "names": [template.name],
                "createdAt": iso(template.created_at),
                "updatedAt": iso(all_builds[0].created_at if all_builds else template.created_at),
                "createdBy": None,
                "lastSpawnedAt": None,
                "spawnCount": 0,
                "buildCount": len(all_builds),
                "envdVersion": ENVD_VERSION,
                "buildStatus": latest.status if latest else "waiting",
                "builds": [
                    {
                        "buildID": b.id,
                        "status": b.status,
                        "createdAt": iso(b.created_at),
                        "updatedAt": iso(b.finished_at or b.created_at),
                        **({"finishedAt": iso(b.finished_at)} if b.finished_at else {}),
                        "cpuCount": b.cpu_count,
                        "memoryMB": b.memory_mb,
                        "diskSizeMB": 0,
                        "envdVersion": ENVD_VERSION,
                    }
                    for b in all_builds
                ],
            }
        )

    async def delete_template(self, request: Request) -> Response:
        """DELETE /templates/{tid}: forget a template (its images stay until pruned)."""
        tid, _ = self._template(request.path_params["tid"])
        self.store.delete_template(tid)
        return Response(status_code=204)

    async def assign_tags(self, request: Request) -> Response:
        """POST /templates/tags {target: name:tag, tags}: point more tags at that build."""
        body = await json_object(request)
        target = field_str(body, "target", required=True) or ""
        tags = normalized_tags(field_strings(body, "tags"))
        tid, tag = self._template(target)
        build = self.store.tagged_build(tid, tag or DEFAULT_TAG)
        if build is None:
            return error(404, f"tag {tag or DEFAULT_TAG!r} not found")
        self.store.set_tags(tid, build.id, tags)
        return JSONResponse({"tags": tags, "buildID": build.id}, status_code=201)

    async def delete_tags(self, request: Request) -> Response:
        """DELETE /templates/tags {name, tags}."""
        body = await json_object(request)
        name = field_str(body, "name", required=True) or ""
        tags = normalized_tags(field_strings(body, "tags"))
        tid, _ = self._template(name)
        if DEFAULT_TAG in tags:
            return error(400, f"the {DEFAULT_TAG!r} tag cannot be removed")
        self.store.remove_tags(tid, tags)
        return Response(status_code=204)

    async def list_tags(self, request: Request) -> Response:
        """GET /templates/{tid}/tags."""
        tid, _ = self._template(request.path_params["tid"])
        return JSONResponse(
            [
                {"tag": tag, "buildID": build_id, "createdAt": iso(created)}
                for tag, build_id, created in self.store.tags(tid)
            ]
        )
