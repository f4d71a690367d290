"""The sandbox routes of the REST control plane: create, connect, get, list, kill, timeout.

Registered by `boxsmith._internal.backend.api.ControlPlane.app`, behind the same API-key guard
as every other route; the sandboxes themselves are containers of
`boxsmith._internal.backend.sandboxes`.

Bodies are checked field by field (a wrong type, an env var name with `=` or NUL, a timeout past
`Limits.max_timeout`: `wire.BadRequest`, answered 400 in E2B's shape). Create and connect return
the sandbox's `envdAccessToken`, as E2B does; a create asking for `secure: false` is refused
unless the backend allows insecure sandboxes (`Limits.allow_insecure`), because an open data
plane lets every local user into the sandbox. At most `Limits.max_sandboxes` sandboxes run or
start at once; past it a create gets 429.

Create, connect and get answer the backend's `domain` (`Limits.domain`, `localhost:<port>` by
default), from which the SDK makes preview hosts (`get_host`, served by `backend.preview`). A
create with `network: {allowPublicTraffic: false}` gets a `trafficAccessToken` that those hosts
then require; every other sandbox's ports are public, as on E2B.

A create whose build's image was removed behind the backend's back gets 404 naming the build
(which is marked broken, so the next publish publishes it again). A create whose client goes
away while it waits for ready (a disconnect, a killed process) is cancelled: its container is
removed and its place under the limit given back when the request ends.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from boxsmith._internal.backend.limits import Limits
from boxsmith._internal.backend.records import Build, SandboxRow, now
from boxsmith._internal.backend.runtime import ENVD_VERSION, SandboxGone
from boxsmith._internal.backend.sandboxes import CreateCancelled, CreateFailed, SandboxManager
from boxsmith._internal.backend.store import Store
from boxsmith._internal.backend.wire import (
    BadRequest,
    error,
    field_int,
    field_str,
    iso,
    json_object,
    page_token,
    query_int,
    query_time,
    resolve_build,
    split_name,
    template_ref,
    token_position,
)

__all__ = ["SandboxAPI"]

DEFAULT_TIMEOUT = 300  # seconds, as E2B
CLIENT_ID = "local"
_STATES = {"running", "paused"}  # E2B's states; no sandbox of this backend is ever paused
INSECURE_REFUSED = (
    "secure: false is refused: every sandbox of this backend (as on E2B) needs its envd access "
    "token, because an open data plane lets any user of this machine run commands in it; start "
    "the backend with BOXSMITH_BACKEND_ALLOW_INSECURE=1 to allow insecure sandboxes"
)


class SandboxAPI:
    """The sandbox handlers.

    Args:
        store: the SQLite state.
        sandboxes: the sandbox manager.
        limits: what this backend allows.
    """

    def __init__(self, store: Store, sandboxes: SandboxManager, limits: Limits) -> None:
        self.store = store
        self.sandboxes = sandboxes
        self.limits = limits
        self._starting = 0  # creates in flight, counted against limits.max_sandboxes

    def _sandbox_json(
        self, row: SandboxRow, token: str | None, traffic: str | None = None, *, detail: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "templateID": row.template_id,
            "sandboxID": row.id,
            "clientID": CLIENT_ID,
            "envdVersion": ENVD_VERSION,
            "alias": row.alias,
            "domain": self.limits.domain or None,
            # E2B gives one only to sandboxes whose ports are not public
            "trafficAccessToken": traffic,
        }
        if token is not None:  # E2B leaves it out for an insecure sandbox
            body["envdAccessToken"] = token
        if detail:
            body.update(
                {
                    "startedAt": iso(row.started_at),
                    "endAt": iso(row.end_at),
                    "cpuCount": row.cpu_count,
                    "memoryMB": row.memory_mb,
                    "diskSizeMB": 0,
                    "state": "running",
                    "metadata": row.metadata,
                }
            )
        return body

    def _running(self, sandbox_id: str) -> tuple[SandboxRow, str | None, str | None] | None:
        """(record, access token, traffic token) of a running sandbox."""
        row = self.sandboxes.running(sandbox_id)
        route = self.sandboxes.route(sandbox_id)
        try:
            token = self.sandboxes.get(sandbox_id).access_token
        except SandboxGone:  # killed in between
            return None
        return None if row is None or route is None else (row, token, route.traffic_token)

    async def create_sandbox(self, request: Request) -> Response:
        """POST /v2/sandboxes (and v1's POST /sandboxes): boot a sandbox; returns once its ready
        command passed."""
        body = await json_object(request)
        ref = field_str(body, "templateID", required=True) or ""
        timeout = self._timeout(body) or DEFAULT_TIMEOUT
        metadata = _strings(body, "metadata")
        env = _env_vars(body)
        secure = _flag(body, "secure", default=True)
        public_traffic = _public_traffic(body)
        if not secure and not self.limits.allow_insecure:
            return error(400, INSECURE_REFUSED)
        try:
            tid, tag = template_ref(self.store, ref)
        except LookupError:
            return error(404, f"template {ref!r} not found")
        build = resolve_build(self.store, tid, tag)
        if build is None or build.status != "ready":
            return error(404, _no_ready(ref, build))
        broken = await asyncio.to_thread(self.sandboxes.check_image, build)
        if broken:
            return error(404, f"template {ref!r} has no ready build: {broken}")
        template = self.store.template(tid)
        alias = template.name if template else tid
        return await self._start(
            request,
            build,
            alias,
            timeout=timeout,
            metadata=metadata,
            env=env,
            access=(secure, public_traffic),
        )

    async def _start(
        self,
        request: Request,
        build: Build,
        alias: str,
        *,
        timeout: int,
        metadata: dict[str, str],
        env: dict[str, str],
        access: tuple[bool, bool],
    ) -> Response:
        """Boot a sandbox of `build` within the limit of sandboxes, `access` its (secure,
        public traffic); cancelled (its container removed) when the client of `request` goes
        away before it is ready."""
        # Counted and reserved with no await in between: concurrent creates cannot both pass.
        if self.sandboxes.count() + self._starting >= self.limits.max_sandboxes:
            refused = error(429, self._too_many())
            # the SDK would retry a bare 429 for up to ~20 s; a full backend stays full
            refused.headers["Should-Retry"] = "false"
            return refused
        self._starting += 1
        cancel = threading.Event()
        try:
            create = asyncio.ensure_future(
                asyncio.to_thread(
                    self.sandboxes.create,
                    build,
                    alias,
                    timeout=timeout,
                    metadata=metadata,
                    env=env,
                    secure=access[0],
                    public_traffic=access[1],
                    cancel=cancel,
                )
            )
            left = asyncio.ensure_future(_client_left(request))
            await asyncio.wait({create, left}, return_when=asyncio.FIRST_COMPLETED)
            if not create.done():
                cancel.set()  # the wait for ready ends, its container is removed
            left.cancel()
            row = await create  # once cancelled, within one ready attempt
        except asyncio.CancelledError:  # the server stops: the same for the container
            cancel.set()
            raise
        except CreateCancelled as exc:
            return error(499, str(exc))  # nobody reads it
        except CreateFailed as exc:
            return error(500, str(exc))
        finally:
            self._starting -= 1
        if cancel.is_set():  # ready just as its client left
            await asyncio.to_thread(self.sandboxes.kill, row.id)
            return error(499, f"sandbox {row.id}: cancelled, its client left")
        running = self._running(row.id)
        if running is None:
            return error(500, f"sandbox {row.id} stopped as it started")
        return JSONResponse(self._sandbox_json(*running, detail=False), status_code=201)

    def _too_many(self) -> str:
        limit = self.limits.max_sandboxes
        return (
            f"you have reached the maximum number of concurrent sandboxes of this backend "
            f"({limit}); kill one, or start the backend with a higher "
            "BOXSMITH_BACKEND_MAX_SANDBOXES"
        )

    def _timeout(self, body: Mapping[str, Any]) -> int | None:
        """The body's `timeout` in seconds (None when absent); BadRequest past the limit
        (BOXSMITH_BACKEND_MAX_TIMEOUT, 24 h by default as on E2B)."""
        return field_int(body, "timeout", low=1, high=self.limits.max_timeout)

    async def connect_sandbox(self, request: Request) -> Response:
        """POST /v2/sandboxes/{sid}/connect (and v1's): a running sandbox (its timeout extended if
        asked)."""
        body = await json_object(request, empty_ok=True)
        timeout = self._timeout(body)
        running = self._running(request.path_params["sid"])
        if running is None:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        row = running[0]
        if timeout is not None:
            end = now() + timedelta(seconds=timeout)
            if end > row.end_at:
                self.sandboxes.set_end(row.id, end)
        return JSONResponse(self._sandbox_json(*running, detail=False), status_code=200)

    async def get_sandbox(self, request: Request) -> Response:
        """GET /sandboxes/{sid} (with the access token, as E2B's detail has it)."""
        running = self._running(request.path_params["sid"])
        if running is None:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        return JSONResponse(self._sandbox_json(*running, detail=True))

    async def list_sandboxes(self, request: Request) -> Response:
        """GET /v2/sandboxes: sandboxes filtered as E2B's API does (`metadata` as `k=v&...`,
        `state`, `template` id or name, `startedAfter`), ordered by start time (`order`, newest
        first by default), at most `limit` (1-100, default 100) a page; `x-next-token` names the
        next page, passed back as `nextToken`."""
        query = request.query_params
        limit = query_int(request, "limit", 100, low=1, high=100)
        states = {s.strip() for s in query.get("state", "running").split(",") if s.strip()}
        if not states <= _STATES:
            raise BadRequest(f"state must be running or paused, got {query.get('state')!r}")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest(f"order must be asc or desc, got {order[:20]!r}")
        wanted = dict(urllib.parse.parse_qsl(query.get("metadata", "")))
        template = split_name(query["template"])[0] if query.get("template") else None
        after = query_time(request, "startedAfter")
        token = query.get("nextToken")
        cursor = token_position(token) if token else None
        rows = [
            row
            for row in self.store.sandboxes("running")
            if "running" in states
            and self.sandboxes.running(row.id) is not None
            and all(row.metadata.get(k) == v for k, v in wanted.items())
            and template in (None, row.template_id, row.alias)
            and (after is None or row.started_at >= after)
        ]
        rows.sort(key=lambda row: (row.started_at, row.id), reverse=order == "desc")
        if cursor is not None:  # the rows after the previous page's last, in this order
            rows = [r for r in rows if _beyond((r.started_at, r.id), cursor, order)]
        page = rows[:limit]
        response = JSONResponse([self._sandbox_json(row, None, detail=True) for row in page])
        if len(rows) > limit:
            response.headers["x-next-token"] = page_token(page[-1].started_at, page[-1].id)
        return response

    async def kill_sandbox(self, request: Request) -> Response:
        """DELETE /sandboxes/{sid}: 204, or 404 when it is not running."""
        killed = await asyncio.to_thread(self.sandboxes.kill, request.path_params["sid"])
        if not killed:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        return Response(status_code=204)

    async def set_timeout(self, request: Request) -> Response:
        """POST /sandboxes/{sid}/timeout {timeout}: the sandbox ends that many seconds from now."""
        timeout = self._timeout(await json_object(request))
        if timeout is None:
            raise BadRequest("timeout is required")
        if not self.sandboxes.set_end(
            request.path_params["sid"], now() + timedelta(seconds=timeout)
        ):
            return error(404, f"sandbox {request.path_params['sid']} not found")
        return Response(status_code=204)

    async def metrics(self, request: Request) -> Response:
        """GET /sandboxes/{sid}/metrics: none are collected locally."""
        if self.sandboxes.running(request.path_params["sid"]) is None:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        return JSONResponse([])


async def _client_left(request: Request) -> None:
    """Return once the client of `request` went away (its body is read by then: the next ASGI
    message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _beyond(key: tuple[Any, str], cursor: tuple[Any, str], order: str) -> bool:
    """Whether a row at `key` comes after `cursor` in a listing of `order`."""
    return key > cursor if order == "asc" else key < cursor


def _no_ready(ref: str, build: Build | None) -> str:
    """Why template `ref` cannot be started: no build, or its build failed or broke."""
    if build is None or build.status != "error":
        return f"template {ref!r} has no ready build"
    return f"template {ref!r} has no ready build: {build.reason or f'build {build.id} failed'}"


def _flag(body: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def _public_traffic(body: Mapping[str, Any]) -> bool:
    """`network.allowPublicTraffic` (default true, as on E2B); the other network options
    (egress rules) are not enforced by this backend."""
    network = body.get("network")
    if network is None:
        return True
    if not isinstance(network, dict):
        raise BadRequest("network must be an object")
    return _flag(network, "allowPublicTraffic", default=True)


def _strings(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """An object of strings (metadata, envVars); absent or null is empty."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadRequest(f"{name}[{key!r}] must be a string")
    return dict(value)


def _env_vars(body: Mapping[str, Any]) -> dict[str, str]:
    """envVars, each a name a process environment can hold: not empty, no `=` or NUL in it,
    no NUL in the value. Messages name the variable, never its value (a secret)."""
    env = _strings(body, "envVars")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise BadRequest(
                f"envVars name {name!r} is not valid: it must be non-empty, without '=' or NUL"
            )
        if "\0" in value:
            raise BadRequest(f"envVars[{name!r}] must not contain a NUL character")
    return env
