"""The REST control plane the e2b SDK calls (E2B_API_URL): template builds v2 and sandboxes.

Shapes, statuses and error bodies follow the SDK's generated client exactly
(docs/backend.md): success with the documented status only,
every error as `{"code": <int>, "message": <text>}`, build ids as UUIDs. Requests need the
`X-API-KEY` header except the build-context upload, whose URL carries a one-time token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsmith.backend import builds
from boxsmith.backend.api_sandboxes import SandboxAPI
from boxsmith.backend.limits import Limits
from boxsmith.backend.runtime import ENVD_VERSION
from boxsmith.backend.sandboxes import BACKEND_LABEL, SandboxManager
from boxsmith.backend.store import Build, Store, now
from boxsmith.backend.wire import DEFAULT_TAG, error, iso, split_name, template_ref
from boxsmith.engine import LABEL, Engine, EngineError
from boxsmith.targets import name_error, tag_error

__all__ = ["ControlPlane"]

_log = logging.getLogger(__name__)
DEFAULT_CPU = 2
DEFAULT_MEMORY = 512


def _normalized(tags: list[str]) -> list[str]:
    """Tags as E2B stores them (trimmed, lowercased); ValueError naming the first it refuses."""
    out = [t.strip().lower() for t in tags]
    for tag in out:
        problem = tag_error(tag)
        if problem:
            raise ValueError(problem)
    return out


class ControlPlane:
    """Holds the state the REST handlers share; `app()` builds the Starlette application.

    Args:
        store: the SQLite state.
        engine: an entered Engine.
        sandboxes: the sandbox manager.
        uploads: where build-context uploads go.
        api_key: the key every request must carry.
        base_url: how clients reach this server (for upload URLs).
        mirrors, ca: as for local builds (`boxsmith.parity.parity_base`).
        limits: what this backend allows (`boxsmith.backend.limits`).
    """

    def __init__(
        self,
        store: Store,
        engine: Engine,
        sandboxes: SandboxManager,
        uploads: builds.UploadStore,
        *,
        api_key: str,
        base_url: str,
        backend_id: str,
        mirrors: dict[str, str],
        ca: bytes | None,
        build_jobs: int = 2,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.sandboxes = sandboxes
        self.uploads = uploads
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.backend_id = backend_id
        self.mirrors = mirrors
        self.ca = ca
        self.limits = limits or Limits()
        self._pool = ThreadPoolExecutor(max_workers=build_jobs, thread_name_prefix="tbuild")
        self._upload_tokens: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop accepting builds and wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- plumbing ----------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def _route(
        self, path: str, handler: Callable[[Request], Awaitable[Response]], methods: list[str]
    ) -> Route:
        async def guarded(request: Request) -> Response:
            if not self._authorized(request):
                return error(
                    401, "Invalid API key, it must be the key `boxsmith backend env` prints"
                )
            try:
                return await handler(request)
            except EngineError as exc:
                return error(500, exc.message)
            except ValueError as exc:
                return error(400, f"invalid request: {exc}")

        return Route(path, guarded, methods=methods)

    def app(self) -> Starlette:
        """The Starlette application with every control-plane route."""
        r = self._route
        sb = SandboxAPI(self.store, self.sandboxes, self.limits)
        return Starlette(
            routes=[
                r("/v3/templates", self.request_build, ["POST"]),
                r("/templates", self.list_templates, ["GET"]),
                r("/templates/tags", self.assign_tags, ["POST"]),
                r("/templates/tags", self.delete_tags, ["DELETE"]),
                r("/templates/aliases/{alias:path}", self.alias, ["GET"]),
                r("/templates/{tid}/files/{hash}", self.file_link, ["GET"]),
                r("/templates/{tid}/builds/{bid}/status", self.build_status, ["GET"]),
                r("/templates/{tid}/tags", self.list_tags, ["GET"]),
                r("/templates/{tid}", self.delete_template, ["DELETE"]),
                r("/v2/templates/{tid}/builds/{bid}", self.start_build, ["POST"]),
                r("/v2/sandboxes", sb.create_sandbox, ["POST"]),
                r("/v2/sandboxes", sb.list_sandboxes, ["GET"]),
                r("/v2/sandboxes/{sid}/connect", sb.connect_sandbox, ["POST"]),
                r("/sandboxes/{sid}", sb.get_sandbox, ["GET"]),
                r("/sandboxes/{sid}", sb.kill_sandbox, ["DELETE"]),
                r("/sandboxes/{sid}/timeout", sb.set_timeout, ["POST"]),
                r("/sandboxes/{sid}/metrics", sb.metrics, ["GET"]),
                Route("/_uploads/{token}", self.receive_upload, methods=["PUT"]),
                Route("/health", self.health, methods=["GET"]),
            ]
        )

    async def health(self, request: Request) -> Response:
        """Liveness of the control plane (no key needed)."""
        return JSONResponse({"status": "ok", "backend": self.backend_id})

    # -- templates ---------------------------------------------------------------------------

    async def request_build(self, request: Request) -> Response:
        """POST /v3/templates: a template (new or known by name) and a build in `waiting`."""
        body = await request.json()
        name = str(body.get("name") or body.get("alias") or "")
        if not name:
            return error(400, "name is required")
        base, tag = split_name(name)
        try:
            problem = name_error(base)
            if problem:
                raise ValueError(problem)
            given = [tag or DEFAULT_TAG, *(str(t) for t in body.get("tags") or [])]
            tags = list(dict.fromkeys(_normalized(given)))
        except ValueError as exc:
            return error(400, str(exc))
        template = self.store.template_for_name(base, create=True)
        assert template is not None
        build = self.store.new_build(
            template.id,
            cpu_count=int(body.get("cpuCount") or DEFAULT_CPU),
            memory_mb=int(body.get("memoryMB") or DEFAULT_MEMORY),
            tags=tags,
        )
        return JSONResponse(
            {
                "templateID": template.id,
                "buildID": build.id,
                "public": False,
                "names": [f"{base}:{t}" for t in tags],
                "tags": tags,
                "aliases": [base],
            },
            status_code=202,
        )

    async def file_link(self, request: Request) -> Response:
        """GET /templates/{tid}/files/{hash}: present, or where to upload it."""
        files_hash = request.path_params["hash"]
        if self.uploads.has(files_hash):
            return JSONResponse({"present": True}, status_code=201)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._upload_tokens[token] = (request.path_params["tid"], files_hash)
        return JSONResponse(
            {"present": False, "url": f"{self.base_url}/_uploads/{token}"}, status_code=201
        )

    async def receive_upload(self, request: Request) -> Response:
        """PUT /_uploads/{token}: the build context of one COPY step (tar, usually gzipped)."""
        with self._lock:
            target = self._upload_tokens.pop(request.path_params["token"], None)
        if target is None:
            return error(404, "unknown or used upload URL; ask for a new one")
        _, files_hash = target
        spool = await _spool(request)
        try:
            await asyncio.to_thread(self.uploads.save, files_hash, spool)
        finally:
            spool.close()
        return Response(status_code=200)

    async def start_build(self, request: Request) -> Response:
        """POST /v2/templates/{tid}/builds/{bid}: build the steps into an image, in the
        background."""
        build = self.store.build(request.path_params["bid"])
        if build is None or build.template_id != request.path_params["tid"]:
            return error(404, "build not found")
        if build.status != "waiting":
            return error(400, f"build {build.id} was already started ({build.status})")
        try:
            build_request = builds.BuildRequest.from_json(await request.json())
        except builds.BuildRequestError as exc:
            return error(400, str(exc))
        parent = None
        if build_request.from_template:
            try:
                tid, tag = template_ref(self.store, build_request.from_template)
            except LookupError:
                return error(400, f"template {build_request.from_template!r} not found")
            parent = self.store.tagged_build(tid, tag or DEFAULT_TAG)
            if parent is None or parent.status != "ready":
                return error(400, f"template {build_request.from_template!r} has no ready build")
        self.store.update_build(build.id, status="building")
        self._pool.submit(self._run_build, build, build_request, parent)
        return Response(status_code=202)

    def _run_build(self, build: Build, request: builds.BuildRequest, parent: Build | None) -> None:
        template = self.store.template(build.template_id)
        name = template.name if template else build.template_id
        image = f"boxsmith-local/{name}:{build.id}"

        def log(entry: builds.LogEntry) -> None:
            self.store.add_log(build.id, entry.timestamp, entry.level, entry.message, entry.step)

        try:
            result = builds.run_build(
                self.engine,
                request,
                image_ref=image,
                labels={LABEL: "1", BACKEND_LABEL: self.backend_id},
                uploads=self.uploads,
                mirrors=self.mirrors,
                ca=self.ca,
                log=log,
                template_image=parent.image if parent else None,
            )
            config = self.engine.image_config(image)
            start_cmd = request.start_cmd or (parent.start_cmd if parent else None)
            ready_cmd = request.ready_cmd or (parent.ready_cmd if parent else None)
            self.store.update_build(
                build.id,
                status="ready",
                image=result,
                start_cmd=start_cmd,
                ready_cmd=ready_cmd,
                user=config.get("User") or "user",
                workdir=config.get("WorkingDir") or "/home/user",
            )
            self.store.set_tags(build.template_id, build.id, build.tags)
            self.store.add_log(build.id, now(), "info", f"build {build.id} ready: {image}", None)
        except builds.StepFailed as exc:
            self.store.add_log(build.id, now(), "error", str(exc), exc.step)
            self.store.update_build(build.id, status="error", reason=str(exc), reason_step=exc.step)
        except Exception as exc:
            _log.exception("build %s failed", build.id)
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.store.add_log(build.id, now(), "error", message, "base")
            self.store.update_build(build.id, status="error", reason=message, reason_step="base")

    async def build_status(self, request: Request) -> Response:
        """GET .../builds/{bid}/status?logsOffset&limit: status and log entries from the offset."""
        build = self.store.build(request.path_params["bid"])
        if build is None or build.template_id != request.path_params["tid"]:
            return error(404, "build not found")
        offset = max(0, int(request.query_params.get("logsOffset", 0)))
        limit = min(max(1, int(request.query_params.get("limit", 100))), 1000)
        rows = self.store.logs(build.id, offset, limit)
        entries = [
            {
                "timestamp": iso(row.timestamp),
                "message": row.message,
                "level": row.level,
                **({"step": row.step} if row.step else {}),
            }
            for row in rows
        ]
        body: dict[str, Any] = {
            "templateID": build.template_id,
            "buildID": build.id,
            "status": build.status,
            "logs": [f"{e['timestamp']} {e['message']}" for e in entries],
            "logEntries": entries,
        }
        if build.status == "error":
            body["reason"] = {
                "message": build.reason or "build failed",
                **({"step": build.reason_step} if build.reason_step else {}),
            }
        return JSONResponse(body)

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

    async def delete_template(self, request: Request) -> Response:
        """DELETE /templates/{tid}: forget a template (its images stay until pruned)."""
        try:
            tid, _ = template_ref(self.store, request.path_params["tid"])
        except LookupError:
            return error(404, "template not found")
        self.store.delete_template(tid)
        return Response(status_code=204)

    async def assign_tags(self, request: Request) -> Response:
        """POST /templates/tags {target: name:tag, tags}: point more tags at that build."""
        body = await request.json()
        try:
            tid, tag = template_ref(self.store, str(body.get("target", "")))
        except LookupError:
            return error(404, "template not found")
        build = self.store.tagged_build(tid, tag or DEFAULT_TAG)
        if build is None:
            return error(404, f"tag {tag or DEFAULT_TAG!r} not found")
        try:
            tags = _normalized([str(t) for t in body.get("tags") or []])
        except ValueError as exc:
            return error(400, str(exc))
        self.store.set_tags(tid, build.id, tags)
        return JSONResponse({"tags": tags, "buildID": build.id}, status_code=201)

    async def delete_tags(self, request: Request) -> Response:
        """DELETE /templates/tags {name, tags}."""
        body = await request.json()
        try:
            tid, _ = template_ref(self.store, str(body.get("name", "")))
        except LookupError:
            return error(404, "template not found")
        tags = [str(t).strip().lower() for t in body.get("tags") or []]
        if DEFAULT_TAG in tags:
            return error(400, f"the {DEFAULT_TAG!r} tag cannot be removed")
        self.store.remove_tags(tid, tags)
        return Response(status_code=204)

    async def list_tags(self, request: Request) -> Response:
        """GET /templates/{tid}/tags."""
        try:
            tid, _ = template_ref(self.store, request.path_params["tid"])
        except LookupError:
            return error(404, "template not found")
        return JSONResponse(
            [
                {"tag": tag, "buildID": build_id, "createdAt": iso(created)}
                for tag, build_id, created in self.store.tags(tid)
            ]
        )


async def _spool(request: Request) -> Any:
    """The request body in a spooled temp file (memory up to 8 MB, then disk)."""
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - caller closes it
    async for chunk in request.stream():
        spool.write(chunk)
    spool.seek(0)
    return spool
