"""`boxsmith backend serve`: the backend's server process, in the foreground until a signal.

One uvicorn listener on 127.0.0.1 serves both planes and the preview URLs: a request whose
Host is a sandbox's preview host (`<port>-<sandbox id>.<domain>`, HTTP or WebSocket) goes to
the preview proxy (`preview`), envd paths (`/process.Process/*`, `/filesystem.Filesystem/*`,
`/files`, and `/health` with an `E2b-Sandbox-Id` header) to the envd shim, everything else to
the REST control plane.

The server locks its data folder (`datadir`) for its whole life: a second server for the same
folder refuses to start, whatever its port, so its start-up never touches the first one's
sandboxes. Once locked, it removes a `server.json` a killed server left, reconciles Docker with
the state (`reconcile`), writes its own `server.json` and serves; on the way out it kills its
sandboxes and cancels its builds. Other processes start, find and stop it through
`boxsmith._internal.backend.control`.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from boxsmith._internal.backend.control import DEFAULT_PORT, env_lines
from boxsmith._internal.backend.datadir import (
    LOCK_FILE,
    UPLOADS,
    BackendUnavailable,
    acquire,
    api_key,
    backend_id,
    forget_info,
    make_private,
    owner_only_umask,
    read_info,
    remove_info,
    write_info,
)
from boxsmith._internal.backend.limits import Limits
from boxsmith._internal.backend.runtime import ASGIApp, Receive, Scope, Send
from boxsmith.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    import uvicorn

    from boxsmith._internal.backend.api import ControlPlane
    from boxsmith._internal.backend.preview import PreviewProxy
    from boxsmith._internal.backend.reconcile import Reconciled
    from boxsmith._internal.backend.sandboxes import SandboxManager
    from boxsmith._internal.docker.client import Engine

__all__ = ["dispatcher", "serve"]

# How long a starting server retries the folder lock: other commands take it for an instant
# to see whether a server holds it (`datadir.lock_held`).
_LOCK_RETRY = 2.0


def _envd_path(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    if path.startswith(("/process.Process/", "/filesystem.Filesystem/")) or path == "/files":
        return True
    if path == "/health":
        return any(name == b"e2b-sandbox-id" for name, _ in scope.get("headers", []))
    return False


def dispatcher(control: ASGIApp, envd: ASGIApp, preview: PreviewProxy | None = None) -> ASGIApp:
    """One ASGI app: preview hosts of the sandboxes' domain to `preview` (by the Host header
    alone, whatever the path), envd paths to `envd`, the rest to `control`; lifespan to
    `control`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        target = preview.target(scope) if preview is not None else None
        if preview is not None and target is not None:
            await preview.serve(scope, receive, send, target)
        elif scope["type"] == "http" and _envd_path(scope):
            await envd(scope, receive, send)
        else:
            await control(scope, receive, send)

    return app


def serve(
    root: Path,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    folder: Path,
    err: TextIO,
    out: TextIO,
    mirrors: dict[str, str],
) -> int:
    """Run the backend until SIGINT/SIGTERM; kills its sandboxes on the way out.

    Raises:
        UsageError: a host others could reach, or another backend holds the folder (exit 2).
        BackendUnavailable: the port is taken (exit 3).
        StateDamaged: the state file is damaged (exit 3; `boxsmith backend reset`).
    """
    _check_host(host)
    limits = Limits.from_env(os.environ)
    # `localhost` names resolve to loopback in browsers and curl, with no DNS set up
    limits = replace(limits, domain=limits.domain or f"localhost:{port}")
    with owner_only_umask():
        make_private(folder)
        lock = _lock_folder(folder)
        try:
            _check_port(host, port)
            return _serve(folder, host, port, limits, err=err, out=out, mirrors=mirrors)
        finally:
            os.close(lock)


def _serve(
    folder: Path,
    host: str,
    port: int,
    limits: Limits,
    *,
    err: TextIO,
    out: TextIO,
    mirrors: dict[str, str],
) -> int:
    """`serve` once the folder is locked and the port free."""
    # docker's client takes over 100 ms to import, which `backend env`/`status`/`stop` (the
    # same command module) need not pay; so do the planes' modules (`_assemble`)
    from boxsmith._internal.docker.client import Engine

    key = api_key(folder)
    url = f"http://{host}:{port}"
    with Engine() as engine:
        manager, control, server, reconciled = _assemble(
            folder, url, key, engine, limits, host=host, port=port, mirrors=mirrors
        )
        write_info(
            folder,
            {
                "pid": os.getpid(),
                "url": url,
                "started": time.time(),
                "data_dir": str(folder),
                "limits": limits.as_dict(),
            },
        )
        err.write(f"boxsmith backend on {url} (data {folder}); {reconciled.summary()}\n")
        for reason in reconciled.broken:
            err.write(f"  {reason}\n")
        out.write("\n".join(env_lines(url, key)) + "\n")
        out.flush()
        try:
            server.run()
        finally:
            forget_info(folder, os.getpid())
            manager.close(kill_all=True)
            control.close()
    return EXIT_OK


def _assemble(
    folder: Path,
    url: str,
    key: str,
    engine: Engine,
    limits: Limits,
    *,
    host: str,
    port: int,
    mirrors: dict[str, str],
) -> tuple[SandboxManager, ControlPlane, uvicorn.Server, Reconciled]:
    """The sandbox manager (reconciled with Docker, its reaper started), the control plane,
    the uvicorn server of both planes, and what the reconcile cleaned up."""
    # starlette, docker and the e2b SDK's envd stubs: over 300 ms of imports that only a
    # serving process needs
    from boxsmith._internal.backend.api import ControlPlane
    from boxsmith._internal.backend.build_uploads import UploadStore
    from boxsmith._internal.backend.envd.app import envd_app
    from boxsmith._internal.backend.preview import PreviewProxy
    from boxsmith._internal.backend.reconcile import reconcile
    from boxsmith._internal.backend.sandboxes import SandboxManager
    from boxsmith._internal.backend.state_file import STATE_FILE
    from boxsmith._internal.backend.store import Store
    from boxsmith._internal.build.base_images import resolve_mirrors
    from boxsmith._internal.docker.host_ca import host_ca_bundle

    own_id = backend_id(folder)
    ca_path = host_ca_bundle()
    store = Store(folder / STATE_FILE)
    envd_services: list[Any] = []

    def forget(sandbox_id: str) -> None:
        for service in envd_services:
            service.forget(sandbox_id)

    manager = SandboxManager(store, engine, own_id, on_killed=forget)
    reconciled = reconcile(store, engine, own_id, manager.check_image)
    control = ControlPlane(
        store,
        engine,
        manager,
        UploadStore(folder / UPLOADS),
        api_key=key,
        base_url=url,
        backend_id=own_id,
        mirrors=resolve_mirrors(mirrors),
        ca=ca_path.read_bytes() if ca_path else None,
        limits=limits,
    )
    envd, services = envd_app(manager, engine.client, limits)
    envd_services.extend(services)
    manager.start_reaper()
    preview = PreviewProxy(
        manager, max_connections=limits.max_proxy_connections, domain=limits.domain
    )
    app = dispatcher(control.app(), envd, preview)
    return manager, control, _uvicorn(app, host, port), reconciled


def _uvicorn(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server of `app` on `host`:`port`, its own log quiet but for warnings."""
    import uvicorn  # 85-150 ms to import, for a serving process only

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,  # a preview answer carries its own server's
        # the client's address as it connected: a client's X-Forwarded-For is not believed
        # (uvicorn would for 127.0.0.1), the preview proxy appends to it
        proxy_headers=False,
    )
    return uvicorn.Server(config)


def _lock_folder(folder: Path) -> int:
    """The fd holding the folder's lock for this server's life; UsageError when another server
    (running, starting or stopping) holds it."""
    fd = acquire(folder / LOCK_FILE, wait=_LOCK_RETRY)
    if fd is not None:
        # From here on this process owns the folder: its pid in the lock tells `read_info` which
        # server.json is current, and one left by a killed server goes at once, not after the
        # seconds reconcile takes (its pid may be another process's by now: `stop` would
        # SIGTERM that)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        remove_info(folder)
        return fd
    running = read_info(folder)
    where = f" (pid {running['pid']}, {running['url']})" if running else " (starting or stopping)"
    raise UsageError(
        f"a backend already runs for {folder}{where}: one data folder has one backend",
        "use it (`boxsmith backend env`), stop it (`boxsmith backend stop`), or give this one "
        "another --data-dir",
    )


def _check_host(host: str) -> None:
    """UsageError for a host other users could reach."""
    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(
        "BOXSMITH_BACKEND_ALLOW_REMOTE"
    ):
        raise UsageError(
            f"refusing to listen on {host}: the backend runs containers for anyone who reaches it",
            "listen on 127.0.0.1, or set BOXSMITH_BACKEND_ALLOW_REMOTE=1 if you really mean it",
        )


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "pick another port with --port, or stop what listens there",
            ) from exc
