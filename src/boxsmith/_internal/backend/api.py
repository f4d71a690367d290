"""The REST control plane the e2b SDK calls (E2B_API_URL): template builds v2 and sandboxes.

Shapes, statuses and error bodies follow the SDK's generated client exactly
(docs/backend.md): success with the documented status only,
every error as `{"code": <int>, "message": <text>}`, build ids as UUIDs. Requests need the
`X-API-KEY` header except the build-context upload, whose URL carries a one-time token.

Every body is read as a JSON object with typed fields (`wire`); a wrong shape or type is a 400,
an unknown route a 404, a wrong method a 405, an E2B cloud feature the backend lacks (pause,
snapshots, volumes, ...) a 501, an unexpected failure a 500 with a generic message (the
traceback goes to the backend's log), all in E2B's shape and without host paths.

E2B's API has no way to cancel a build, so neither has this one: a client that is interrupted
finds its build again (the version's tag once ready, `GET /templates/{id}` lists the builds)
and waits for it. A build ends as `ready` with its image, or as `error` without one: a failed
build's image (tagged before the failure, e.g. when recording it failed) is removed, and when
the backend stops, the running builds are cancelled (their Docker builds cut) and marked
`error`, so no image outlives the build that made it.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsmith._internal.backend import builds
from boxsmith._internal.backend.api_sandboxes import SandboxAPI
from boxsmith._internal.backend.limits import Limits
from boxsmith._internal.backend.records import Build, now
from boxsmith._internal.backend.runtime import ENVD_VERSION
from boxsmith._internal.backend.sandboxes import BACKEND_LABEL, SandboxManager
from boxsmith._internal.backend.store import Store
from boxsmith._internal.backend.wire import (
    DEFAULT_TAG,
    BadRequest,
    TooLarge,
    error,
    field_int,
    field_str,
    field_strings,
    iso,
    json_object,
    query_int,
    scrub,
    split_name,
    template_ref,
)
from boxsmith._internal.docker.client import LABEL, Engine
from boxsmith._internal.spec.names import name_error, tag_error
from boxsmith.errors import BoxsmithError

__all__ = ["ControlPlane"]

_log = logging.getLogger(__name__)
DEFAULT_CPU = 2
DEFAULT_MEMORY = 512
MAX_CPU = 32  # E2B's ceiling (and the spec's); 1 or even, as E2B (infra team/limits.go)
MIN_MEMORY, MAX_MEMORY = 128, 65536  # MiB, even; E2B's floor, a local ceiling of 64 GiB
INTERNAL = "internal error in the local backend; its log (server.log in the data folder) says more"
STOPPED = "the backend stopped during the build"  # as `Store.interrupted_builds` are marked
# E2B cloud features the local backend does not have: 501 naming them, so a caller learns why
# (a 404 would make the SDK report a sandbox that runs as "not found").
_CLOUD_ONLY = (
    (re.compile(r"/sandboxes/[^/]+/(pause|resume)"), "pausing and resuming sandboxes"),
    (re.compile(r"(/sandboxes/[^/]+)?/snapshots(/.*)?"), "snapshots"),
    (re.compile(r"/volumes?(content)?(/.*)?"), "volumes"),
    (re.compile(r"/secrets(/.*)?"), "secrets"),
    (re.compile(r"(/v\d)?/sandboxes/[^/]+/(logs|refreshes)"), "sandbox logs and refreshes"),
)


def _normalized(tags: list[str]) -> list[str]:
    """Tags as E2B stores them (trimmed, lowercased); BadRequest naming the first it refuses."""
    out = [t.strip().lower() for t in tags]
    for tag in out:
        problem = tag_error(tag)
        if problem:
            raise BadRequest(problem)
    return out


def _even_or_one(value: int | None, key: str) -> int | None:
    if value is not None and value != 1 and value % 2:
        raise BadRequest(f"{key} must be 1 or an even number, got {value}")
    return value


async def _unrouted(request: Request, exc: Exception) -> Response:
    """404, 405 and 501 for what no route serves, in E2B's shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    where = f"{request.method} {request.url.path}"
    feature = next((name for rx, name in _CLOUD_ONLY if rx.fullmatch(request.url.path)), None)
    if status == 404 and feature:
        status, message = 501, f"{feature}: an E2B cloud feature the local backend lacks ({where})"
    elif status == 404:
        message = f"the local backend has no route {where}"
    elif status == 405:
        headers = exc.headers if isinstance(exc, HTTPException) else None
        allowed = (headers or {}).get("Allow", "")
        message = f"method {request.method} is not allowed on {request.url.path} ({allowed})"
    else:
        _log.error("%s failed", where, exc_info=exc)
        status, message = 500, INTERNAL
    return error(status, message)


class ControlPlane:
    """Holds the state the REST handlers share; `app()` builds the Starlette application.

    Args:
        store: the SQLite state.
        engine: an entered Engine.
        sandboxes: the sandbox manager.
        uploads: where build-context uploads go.
        api_key: the key every request must carry.
        base_url: how clients reach this server (for upload URLs).
        mirrors, ca: as for local builds (`boxsmith._internal.build.parity.parity_base`).
        limits: what this backend allows (`boxsmith._internal.backend.limits`).
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
        self.host_folders = (uploads.root.parent,)  # the data folder: no message shows it
        self._pool = ThreadPoolExecutor(max_workers=build_jobs, thread_name_prefix="tbuild")
        self._upload_tokens: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def close(self) -> None:
        """Stop accepting builds and cancel the running ones (each marked `error`, its image
        removed); queued ones are marked at the next start (`Store.interrupted_builds`)."""
        self._closing.set()
        self.engine.abort()  # cuts the build streams: the engine cancels those builds
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- plumbing ----------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def _scrub(self, text: str) -> str:
        return scrub(text, self.host_folders)

    def _route(
        self,
        path: str,
        handler: Callable[[Request], Awaitable[Response]],
        methods: list[str],
        *,
        key: bool = True,
    ) -> Route:
        async def guarded(request: Request) -> Response:
            if key and not self._authorized(request):
                return error(
                    401, "Invalid API key, it must be the key `boxsmith backend env` prints"
                )
            try:
                response = await handler(request)
            except ValueError as exc:  # BadRequest, BuildRequestError, a refused value
                response = error(getattr(exc, "status", 400), str(exc))
            except BoxsmithError as exc:  # EngineError and the like: the message is for users
                response = error(500, exc.message)
            except Exception:
                _log.exception("%s %s failed", request.method, request.url.path)
                response = error(500, INTERNAL)
            return self._scrubbed(response)

        return Route(path, guarded, methods=methods)

    def _scrubbed(self, response: Response) -> Response:
        """An error response without host paths in its message."""
        if response.status_code < 400 or not isinstance(response, JSONResponse):
            return response
        body = json.loads(bytes(response.body))
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return response
        return error(response.status_code, self._scrub(body["message"]))

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
                r("/templates/{tid}", self.list_builds, ["GET"]),
                r("/v2/templates/{tid}/builds/{bid}", self.start_build, ["POST"]),
                r("/v2/sandboxes", sb.create_sandbox, ["POST"]),
                r("/v2/sandboxes", sb.list_sandboxes, ["GET"]),
                r("/v2/sandboxes/{sid}/connect", sb.connect_sandbox, ["POST"]),
                r("/sandboxes/{sid}", sb.get_sandbox, ["GET"]),
                r("/sandboxes/{sid}", sb.kill_sandbox, ["DELETE"]),
                r("/sandboxes/{sid}/timeout", sb.set_timeout, ["POST"]),
                r("/sandboxes/{sid}/metrics", sb.metrics, ["GET"]),
                r("/_uploads/{token}", self.receive_upload, ["PUT"], key=False),
                r("/health", self.health, ["GET"], key=False),
            ],
            exception_handlers={HTTPException: _unrouted, Exception: _unrouted},
        )

    async def health(self, request: Request) -> Response:
        """Liveness of the control plane (no key needed)."""
        return JSONResponse({"status": "ok", "backend": self.backend_id})

    # -- templates ---------------------------------------------------------------------------

    async def request_build(self, request: Request) -> Response:
        """POST /v3/templates: a template (new or known by name) and a build in `waiting`."""
        body = await json_object(request)
        name = field_str(body, "name") or field_str(body, "alias")
        if not name:
            raise BadRequest("name is required")
        base, tag = split_name(name)
        problem = name_error(base)
        if problem:
            raise BadRequest(problem)
        given = [tag or DEFAULT_TAG, *field_strings(body, "tags")]
        tags = list(dict.fromkeys(_normalized(given)))
        cpu = _even_or_one(field_int(body, "cpuCount", low=1, high=MAX_CPU), "cpuCount")
        memory = field_int(body, "memoryMB", low=MIN_MEMORY, high=MAX_MEMORY)
        if memory is not None and memory % 2:
            raise BadRequest(f"memoryMB must be an even number, got {memory}")
        template = self.store.template_for_name(base, create=True)
        assert template is not None
        build = self.store.new_build(
            template.id,
            cpu_count=cpu or DEFAULT_CPU,
            memory_mb=memory or DEFAULT_MEMORY,
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
        if self.store.template(request.path_params["tid"]) is None:
            return error(404, "template not found")
        if self.uploads.has(files_hash):
            return JSONResponse({"present": True}, status_code=201)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._upload_tokens[token] = (request.path_params["tid"], files_hash)
        return JSONResponse(
            {"present": False, "url": f"{self.base_url}/_uploads/{token}"}, status_code=201
        )

    async def receive_upload(self, request: Request) -> Response:
        """PUT /_uploads/{token}: the build context of one COPY step (tar, usually gzipped),
        streamed to the upload store; 413 past the upload limit, with nothing kept."""
        with self._lock:
            target = self._upload_tokens.pop(request.path_params["token"], None)
        if target is None:
            return error(404, "unknown or used upload URL; ask for a new one")
        _, files_hash = target
        limit = self.limits.max_upload_bytes
        too_large = TooLarge(
            f"the upload is larger than this backend's limit of {limit >> 20} MB "
            "(BOXSMITH_BACKEND_MAX_UPLOAD_MB)"
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large  # before reading a byte
        size = 0
        with self.uploads.receiving(files_hash) as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                out.write(chunk)
        return Response(status_code=200)

    async def start_build(self, request: Request) -> Response:
        """POST /v2/templates/{tid}/builds/{bid}: build the steps into an image, in the
        background."""
        build = self.store.build(request.path_params["bid"])
        if build is None or build.template_id != request.path_params["tid"]:
            return error(404, "build not found")
        if build.status != "waiting":
            return error(400, f"build {build.id} was already started ({build.status})")
        build_request = builds.BuildRequest.from_json(await json_object(request))
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
            message = self._scrub(entry.message)
            self.store.add_log(build.id, entry.timestamp, entry.level, message, entry.step)

        if self._closing.is_set():  # started as the backend stopped: never ran
            self._failed(build, STOPPED, "base")
            return
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
            self._failed(build, self._stopped_or(self._scrub(str(exc))), exc.step, image)
        except BoxsmithError as exc:  # the engine's and the like: their messages are for users
            self._failed(build, self._stopped_or(self._scrub(exc.message)), "base", image)
        except Exception:
            _log.exception("build %s failed", build.id)
            self._failed(build, self._stopped_or(INTERNAL), "base", image)

    def _stopped_or(self, message: str) -> str:
        return STOPPED if self._closing.is_set() else message

    def _failed(self, build: Build, message: str, step: str, image: str = "") -> None:
        if image:  # a build that failed late (or was cancelled) may have tagged its image
            try:
                self.engine.remove_image(image)
            except Exception:
                _log.exception("removing image %s of failed build %s", image, build.id)
        # the status first: a build whose log cannot be written must still end, or its client
        # polls a `building` build forever; each write tried whatever became of the other
        try:
            self.store.update_build(build.id, status="error", reason=message, reason_step=step)
        except Exception:
            _log.exception("marking build %s failed", build.id)
        try:
            self.store.add_log(build.id, now(), "error", message, step)
        except Exception:
            _log.exception("logging the failure of build %s", build.id)

    async def build_status(self, request: Request) -> Response:
        """GET .../builds/{bid}/status?logsOffset&limit: status and log entries from the offset."""
        build = self.store.build(request.path_params["bid"])
        if build is None or build.template_id != request.path_params["tid"]:
            return error(404, "build not found")
        offset = query_int(request, "logsOffset", 0, low=0, high=2**31 - 1)
        limit = query_int(request, "limit", 100, low=0, high=1000)
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

    async def list_builds(self, request: Request) -> Response:
        """GET /templates/{tid}: the template with every build, newest first (E2B's
        TemplateWithBuilds; no pagination: a local backend has few builds)."""
        try:
            tid, _ = template_ref(self.store, request.path_params["tid"])
        except LookupError:
            return error(404, "template not found")
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
        try:
            tid, _ = template_ref(self.store, request.path_params["tid"])
        except LookupError:
            return error(404, "template not found")
        self.store.delete_template(tid)
        return Response(status_code=204)

    async def assign_tags(self, request: Request) -> Response:
        """POST /templates/tags {target: name:tag, tags}: point more tags at that build."""
        body = await json_object(request)
        target = field_str(body, "target", required=True) or ""
        tags = _normalized(field_strings(body, "tags"))
        try:
            tid, tag = template_ref(self.store, target)
        except LookupError:
            return error(404, "template not found")
        build = self.store.tagged_build(tid, tag or DEFAULT_TAG)
        if build is None:
            return error(404, f"tag {tag or DEFAULT_TAG!r} not found")
        self.store.set_tags(tid, build.id, tags)
        return JSONResponse({"tags": tags, "buildID": build.id}, status_code=201)

    async def delete_tags(self, request: Request) -> Response:
        """DELETE /templates/tags {name, tags}."""
        body = await json_object(request)
        name = field_str(body, "name", required=True) or ""
        tags = _normalized(field_strings(body, "tags"))
        try:
            tid, _ = template_ref(self.store, name)
        except LookupError:
            return error(404, "template not found")
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
