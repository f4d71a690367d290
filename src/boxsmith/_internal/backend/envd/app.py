"""The envd data plane (E2B_SANDBOX_URL): one ASGI app routing on the `E2b-Sandbox-Id` header.

`/process.Process/*` (commands), `/filesystem.Filesystem/*` (file operations), `/files`
(upload, download) and `/health`, each served host-side on the sandbox's container. A request
for a sandbox that is not running gets 502 "... was not found", as E2B's proxy answers, so the
SDK raises its not-running exception. As in envd, every path but `/health` needs the sandbox's
access token (`X-Access-Token`; `/files` also takes a URL signature), else 401 and nothing runs.
A request that repeats either header is refused (400) before anything reads it: the check and
the services must see one and the same sandbox.
"""

from __future__ import annotations

import docker

from boxsmith._internal.backend.envd import metadata
from boxsmith._internal.backend.envd.files import filesystem_app
from boxsmith._internal.backend.envd.process import ProcessService, process_app
from boxsmith._internal.backend.envd.transfer import files_app
from boxsmith._internal.backend.limits import Limits
from boxsmith._internal.backend.runtime import (
    ASGIApp,
    Receive,
    Sandboxes,
    Scope,
    Send,
    guard_sandbox,
    send_json,
)

__all__ = ["envd_app"]

_ONCE = (b"e2b-sandbox-id", b"x-access-token")  # the headers that choose and open a sandbox


async def _health(scope: Scope, receive: Receive, send: Send) -> None:
    """envd's GET /health: 204 for a running sandbox (the guard answers 502 otherwise)."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def envd_app(
    sandboxes: Sandboxes, client: docker.DockerClient, limits: Limits
) -> tuple[ASGIApp, list[ProcessService | metadata.Ledger]]:
    """(the envd ASGI app, its services that keep per-sandbox state: call `forget(id)` on them
    when a sandbox stops), within the backend's `limits`."""
    process = process_app(sandboxes, client)
    ledger = metadata.Ledger()  # the sandboxes whose files got metadata
    filesystem = filesystem_app(sandboxes, client, ledger)
    files = files_app(sandboxes, client, max_upload_bytes=limits.max_upload_bytes, ledger=ledger)
    # envd lets GET /health in without a token (the SDK probes it after a failed request); it
    # tells no more than whether the sandbox runs, which the 502 of every other path tells too.
    health = guard_sandbox(_health, sandboxes, auth=False)
    other = guard_sandbox(_health, sandboxes)  # other methods on /health need the token
    guarded_process = guard_sandbox(process, sandboxes)
    guarded_filesystem = guard_sandbox(filesystem, sandboxes)
    services: list[ProcessService | metadata.Ledger] = [process.service, ledger]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        names = [name.lower() for name, _ in scope.get("headers", [])]
        repeated = [n.decode() for n in _ONCE if names.count(n) > 1]
        if repeated:
            message = f"the {repeated[0]} header may be sent once"
            await send_json(send, 400, {"code": 400, "message": message})
        elif path.startswith("/process.Process/"):
            await guarded_process(scope, receive, send)
        elif path.startswith("/filesystem.Filesystem/"):
            await guarded_filesystem(scope, receive, send)
        elif path == "/files":
            await files(scope, receive, send)
        elif scope.get("method") in ("GET", "HEAD"):
            await health(scope, receive, send)
        else:
            await other(scope, receive, send)

    return app, services
