"""The sandbox routes of the REST control plane: create, connect, get, list, kill, timeout.

Registered by `boxsmith.backend.api.ControlPlane.app`, behind the same API-key guard as every
other route; the sandboxes themselves are containers of `boxsmith.backend.sandboxes`.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from boxsmith.backend.limits import Limits
from boxsmith.backend.runtime import ENVD_VERSION
from boxsmith.backend.sandboxes import CreateFailed, SandboxManager
from boxsmith.backend.store import SandboxRow, Store, now
from boxsmith.backend.wire import error, iso, resolve_build, template_ref

__all__ = ["SandboxAPI"]

DEFAULT_TIMEOUT = 300  # seconds, as E2B
CLIENT_ID = "local"


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

    def _sandbox_json(self, row: SandboxRow, *, detail: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "templateID": row.template_id,
            "sandboxID": row.id,
            "clientID": CLIENT_ID,
            "envdVersion": ENVD_VERSION,
            "alias": row.alias,
            "domain": None,
        }
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

    async def create_sandbox(self, request: Request) -> Response:
        """POST /v2/sandboxes: boot a sandbox; returns once its ready command passed."""
        body = await request.json()
        ref = str(body.get("templateID") or "")
        try:
            tid, tag = template_ref(self.store, ref)
        except LookupError:
            return error(404, f"template {ref!r} not found")
        build = resolve_build(self.store, tid, tag)
        if build is None or build.status != "ready":
            return error(404, f"template {ref!r} has no ready build")
        template = self.store.template(tid)
        timeout = int(body.get("timeout") or DEFAULT_TIMEOUT)
        if not 0 < timeout <= self.limits.max_timeout:
            return error(400, f"timeout must be between 1 and {self.limits.max_timeout} seconds")
        metadata = {str(k): str(v) for k, v in (body.get("metadata") or {}).items()}
        env = {str(k): str(v) for k, v in (body.get("envVars") or {}).items()}
        try:
            row = await asyncio.to_thread(
                self.sandboxes.create,
                build,
                template.name if template else tid,
                timeout=timeout,
                metadata=metadata,
                env=env,
            )
        except CreateFailed as exc:
            return error(500, str(exc))
        return JSONResponse(self._sandbox_json(row, detail=False), status_code=201)

    async def connect_sandbox(self, request: Request) -> Response:
        """POST /v2/sandboxes/{sid}/connect: a running sandbox (its timeout extended if asked)."""
        row = self.sandboxes.running(request.path_params["sid"])
        if row is None:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        body = await _json_or_empty(request)
        if body.get("timeout"):
            end = now() + timedelta(seconds=int(body["timeout"]))
            if end > row.end_at:
                self.sandboxes.set_end(row.id, end)
        return JSONResponse(self._sandbox_json(row, detail=False), status_code=200)

    async def get_sandbox(self, request: Request) -> Response:
        """GET /sandboxes/{sid}."""
        row = self.sandboxes.running(request.path_params["sid"])
        if row is None:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        return JSONResponse(self._sandbox_json(row, detail=True))

    async def list_sandboxes(self, request: Request) -> Response:
        """GET /v2/sandboxes?metadata=k=v&...: running sandboxes whose metadata match."""
        wanted = dict(urllib.parse.parse_qsl(request.query_params.get("metadata", "")))
        states = request.query_params.get("state", "running").split(",")
        rows = [
            row
            for row in self.store.sandboxes("running")
            if "running" in states
            and self.sandboxes.running(row.id) is not None
            and all(row.metadata.get(k) == v for k, v in wanted.items())
        ]
        return JSONResponse([self._sandbox_json(row, detail=True) for row in rows])

    async def kill_sandbox(self, request: Request) -> Response:
        """DELETE /sandboxes/{sid}: 204, or 404 when it is not running."""
        killed = await asyncio.to_thread(self.sandboxes.kill, request.path_params["sid"])
        if not killed:
            return error(404, f"sandbox {request.path_params['sid']} not found")
        return Response(status_code=204)

    async def set_timeout(self, request: Request) -> Response:
        """POST /sandboxes/{sid}/timeout {timeout}: the sandbox ends that many seconds from now."""
        body = await request.json()
        timeout = int(body.get("timeout", 0))
        if not 0 < timeout <= self.limits.max_timeout:
            return error(400, f"timeout must be between 1 and {self.limits.max_timeout} seconds")
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


async def _json_or_empty(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = await request.json()
    return data if isinstance(data, dict) else {}
