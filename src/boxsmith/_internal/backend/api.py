"""The REST control plane the e2b SDK calls (E2B_API_URL): template builds v2 and sandboxes.

Shapes, statuses and error bodies follow the SDK's generated client exactly (docs/backend.md):
success with the documented status only, every error as `{"code": <int>, "message": <text>}`,
build ids as UUIDs. Requests need the `X-API-KEY` header except the build-context upload, whose
URL carries a one-time token.

Every body is read as a JSON object with typed fields (`wire`); a wrong shape or type is a 400,
an unknown route a 404, a wrong method a 405, an E2B cloud feature the backend lacks (pause,
snapshots, volumes, ...) a 501, an unexpected failure a 500 with a generic message (the
traceback goes to the backend's log), all in E2B's shape and without host paths.

The handlers live by what they serve: builds (`api_builds`), templates and tags (`api_templates`),
sandboxes (`api_sandboxes`); this module routes to them behind the key check and answers what no
route serves.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxsmith._internal.backend.api_builds import BuildAPI
from boxsmith._internal.backend.api_sandboxes import SandboxAPI
from boxsmith._internal.backend.api_templates import TemplateAPI
from boxsmith._internal.backend.build_uploads import UploadStore
from boxsmith._internal.backend.limits import Limits
from boxsmith._internal.backend.sandboxes import SandboxManager
from boxsmith._internal.backend.store import Store
from boxsmith._internal.backend.wire import INTERNAL, error, scrub
from boxsmith._internal.docker.client import Engine
from boxsmith.errors import BoxsmithError

__all__ = ["ControlPlane"]

_log = logging.getLogger(__name__)
# E2B cloud features the local backend does not have: 501 naming them, so a caller learns why
# (a 404 would make the SDK report a sandbox that runs as "not found").
_CLOUD_ONLY = (
    (re.compile(r"/sandboxes/[^/]+/(pause|resume)"), "pausing and resuming sandboxes"),
    (re.compile(r"(/sandboxes/[^/]+)?/snapshots(/.*)?"), "snapshots"),
    (re.compile(r"/volumes?(content)?(/.*)?"), "volumes"),
    (re.compile(r"/secrets(/.*)?"), "secrets"),
    (re.compile(r"(/v\d)?/sandboxes/[^/]+/(logs|refreshes)"), "sandbox logs and refreshes"),
)


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
        # sorted: starlette builds the header from a set, whose order varies between processes
        allowed = ", ".join(
            sorted(m.strip() for m in (headers or {}).get("Allow", "").split(",") if m.strip())
        )
        message = f"method {request.method} is not allowed on {request.url.path} ({allowed})"
        refused = error(status, message)
        refused.headers["Allow"] = allowed
        return refused
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
        uploads: UploadStore,
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
        self.sandboxes = sandboxes
        self.limits = limits or Limits()
        self.api_key = api_key
        self.backend_id = backend_id
        self.host_folders = (uploads.root.parent,)  # the data folder: no message shows it
        self.builds = BuildAPI(
            store,
            engine,
            uploads,
            scrub=self._scrub,
            base_url=base_url.rstrip("/"),
            backend_id=backend_id,
            mirrors=mirrors,
            ca=ca,
            limits=self.limits,
            build_jobs=build_jobs,
        )

    def close(self) -> None:
        """Stop accepting builds and cancel the running ones (`BuildAPI.close`)."""
        self.builds.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def _scrub(self, text: str) -> str:
        return scrub(text, self.host_folders)

    def _route(
        self,
        path: str,
        handlers: dict[str, Callable[[Request], Awaitable[Response]]],
        *,
        key: bool = True,
    ) -> Route:
        """One route for `path`, each method to its handler (a 405 names them all)."""

        async def guarded(request: Request) -> Response:
            if key and not self._authorized(request):
                return error(
                    401, "Invalid API key, it must be the key `boxsmith backend env` prints"
                )
            handler = handlers["GET" if request.method == "HEAD" else request.method]
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

        return Route(path, guarded, methods=list(handlers))

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
        b, t = self.builds, TemplateAPI(self.store)
        sb = SandboxAPI(self.store, self.sandboxes, self.limits)
        return Starlette(
            routes=[
                r("/v3/templates", {"POST": b.request_build}),
                r("/templates", {"GET": t.list_templates}),
                r("/templates/tags", {"POST": t.assign_tags, "DELETE": t.delete_tags}),
                r("/templates/aliases/{alias:path}", {"GET": t.alias}),
                r("/templates/{tid}/files/{hash}", {"GET": b.file_link}),
                r("/templates/{tid}/builds/{bid}/status", {"GET": b.build_status}),
                r("/templates/{tid}/tags", {"GET": t.list_tags}),
                r("/templates/{tid}", {"DELETE": t.delete_template, "GET": t.list_builds}),
                r("/v2/templates/{tid}/builds/{bid}", {"POST": b.start_build}),
                r("/v2/sandboxes", {"POST": sb.create_sandbox, "GET": sb.list_sandboxes}),
                r("/v2/sandboxes/{sid}/connect", {"POST": sb.connect_sandbox}),
                # the v1 routes older SDK lines call: the same bodies and answers
                r("/sandboxes", {"POST": sb.create_sandbox, "GET": sb.list_sandboxes}),
                r("/sandboxes/{sid}/connect", {"POST": sb.connect_sandbox}),
                r("/sandboxes/{sid}", {"GET": sb.get_sandbox, "DELETE": sb.kill_sandbox}),
                r("/sandboxes/{sid}/timeout", {"POST": sb.set_timeout}),
                r("/sandboxes/{sid}/metrics", {"GET": sb.metrics}),
                r("/_uploads/{token}", {"PUT": b.receive_upload}, key=False),
                r("/health", {"GET": self.health}, key=False),
            ],
            exception_handlers={HTTPException: _unrouted, Exception: _unrouted},
        )

    async def health(self, request: Request) -> Response:
        """Liveness of the control plane (no key needed)."""
        return JSONResponse({"status": "ok", "backend": self.backend_id})
