"""The build routes of the REST control plane: request a build, upload its files, start it,
follow its status; and the builds themselves, run in a thread pool.

E2B's API has no way to cancel a build, so neither has this one: a client that is interrupted
finds its build again (the version's tag once ready, `GET /templates/{id}` lists the builds)
and waits for it. A build ends as `ready` with its image, or as `error` without one: a failed
build's image (tagged before the failure, e.g. when recording it failed) is removed, and when
the backend stops, the running builds are cancelled (their Docker builds cut) and marked
`error`, so no image outlives the build that made it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from boxsmith._internal.backend.build_request import BuildRequest
from boxsmith._internal.backend.build_uploads import UploadStore
from boxsmith._internal.backend.builds import LogEntry, StepFailed, run_build
from boxsmith._internal.backend.limits import Limits
from boxsmith._internal.backend.records import Build, now
from boxsmith._internal.backend.sandboxes import BACKEND_LABEL
from boxsmith._internal.backend.store import Store
from boxsmith._internal.backend.wire import (
    DEFAULT_TAG,
    INTERNAL,
    BadRequest,
    TooLarge,
    error,
    field_int,
    field_str,
    field_strings,
    iso,
    json_object,
    normalized_tags,
    query_int,
    split_name,
    template_ref,
)
from boxsmith._internal.docker.client import LABEL, Engine
from boxsmith._internal.spec.names import name_error
from boxsmith.errors import BoxsmithError

__all__ = ["DEFAULT_CPU", "DEFAULT_MEMORY", "BuildAPI"]

_log = logging.getLogger(__name__)
DEFAULT_CPU = 2
DEFAULT_MEMORY = 512
MAX_CPU = 32  # E2B's ceiling (and the spec's); 1 or even, as E2B (infra team/limits.go)
MIN_MEMORY, MAX_MEMORY = 128, 65536  # MiB, even; E2B's floor, a local ceiling of 64 GiB
STOPPED = "the backend stopped during the build"  # as `Store.interrupted_builds` are marked


def _even_or_one(value: int | None, key: str) -> int | None:
    if value is not None and value != 1 and value % 2:
        raise BadRequest(f"{key} must be 1 or an even number, got {value}")
    return value


class BuildAPI:
    """The build handlers, and the pool their builds run in.

    Args:
        store: the SQLite state.
        engine: an entered Engine.
        uploads: where build-context uploads go.
        scrub: takes host paths out of a message (`wire.scrub` with the data folder).
        base_url: how clients reach this server (for upload URLs).
        backend_id: this backend's id, a label on every image it builds.
        mirrors, ca: as for local builds (`boxsmith._internal.build.parity.parity_base`).
        limits: what this backend allows (`boxsmith._internal.backend.limits`).
        build_jobs: how many builds run at once.
    """

    def __init__(
        self,
        store: Store,
        engine: Engine,
        uploads: UploadStore,
        *,
        scrub: Callable[[str], str],
        base_url: str,
        backend_id: str,
        mirrors: dict[str, str],
        ca: bytes | None,
        limits: Limits,
        build_jobs: int,
    ) -> None:
        self.store = store
        self.engine = engine
        self.uploads = uploads
        self._scrub = scrub
        self.base_url = base_url
        self.backend_id = backend_id
        self.mirrors = mirrors
        self.ca = ca
        self.limits = limits
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
        tags = list(dict.fromkeys(normalized_tags(given)))
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
        build_request = BuildRequest.from_json(await json_object(request))
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

    def _run_build(self, build: Build, request: BuildRequest, parent: Build | None) -> None:
        template = self.store.template(build.template_id)
        name = template.name if template else build.template_id
        image = f"boxsmith-local/{name}:{build.id}"

        def log(entry: LogEntry) -> None:
            message = self._scrub(entry.message)
            self.store.add_log(build.id, entry.timestamp, entry.level, message, entry.step)

        if self._closing.is_set():  # started as the backend stopped: never ran
            self._failed(build, STOPPED, "base")
            return
        try:
            result = run_build(
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
        except StepFailed as exc:
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
