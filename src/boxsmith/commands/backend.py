"""`boxsmith backend serve | env | status | stop`: the local E2B-compatible backend.

`serve` runs in the foreground until Ctrl-C; `serve --detach` starts it in the background (log in
the data folder, `server.log`, 0600 like the rest of it), waits until it answers and prints the
same `export` lines. `env` prints them for a running backend (`eval "$(boxsmith backend env)"`),
`status` says whether one runs (exit 3 when not) and the limits in force, `stop` stops it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from boxsmith.backend.server import (
    DEFAULT_PORT,
    LOG_FILE,
    BackendUnavailable,
    api_key,
    env_lines,
    make_private,
    open_log,
    read_info,
    serve,
    stop,
)
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK

__all__ = ["ensure_running", "run"]


def _healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # as the server binds: connections of a backend that just stopped (TIME_WAIT) do not
        # make the port busy, a listener does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_running(
    settings: Settings, folder: Path, *, port: int | None = None, wait: float = 30.0
) -> tuple[str, str, bool]:
    """(url, api key, started): the running backend of `folder`, started detached if needed.

    `port` None means DEFAULT_PORT, or any free port when another process (say the backend of
    another checkout) has that one; a `port` asked for must be free (BackendUnavailable)."""
    info = read_info(folder)
    if info is not None and _healthy(str(info["url"])):
        return str(info["url"]), api_key(folder), False
    if port is None:
        port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else _any_free_port()
    elif not _port_free(port):
        raise BackendUnavailable(
            f"port {port} on 127.0.0.1 is in use by another process",
            "stop that process, or pick a free port (--port, BOXSMITH_BACKEND_PORT)",
        )
    make_private(folder)
    command = [
        sys.executable,
        "-m",
        "boxsmith",
        "-C",
        str(settings.root),
        "backend",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(folder),
    ]
    with open_log(folder) as handle:
        # `sh` starts the server in the background and exits at once: the server is nobody's
        # child here (init reaps it), so it outlives this process and leaves no zombie.
        subprocess.run(
            ["sh", "-c", 'exec "$@" &', "sh", *command],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            check=True,
        )
    url = f"http://127.0.0.1:{port}"
    log = folder / LOG_FILE
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ours = read_info(folder)  # this folder's server, not whatever answers on the port
        if ours is not None and str(ours["url"]) == url and _healthy(url):
            return url, api_key(folder), True
        if read_info(folder) is None and time.monotonic() > deadline - wait + 5:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            raise BackendUnavailable("the backend did not start: " + " / ".join(tail), f"see {log}")
        time.sleep(0.1)
    raise BackendUnavailable(f"the backend did not answer within {wait:g}s", f"see {log}")


def run(
    settings: Settings,
    action: str,
    folder: Path,
    *,
    out: TextIO,
    err: TextIO,
    port: int | None = None,
    host: str = "127.0.0.1",
    detach: bool = False,
    as_json: bool = False,
    yes: bool = False,
) -> int:
    """Dispatch one `backend` action; the exit code. `yes`: `reset` does not ask first."""
    if action == "serve" and not detach:
        return serve(
            settings.root,
            port=DEFAULT_PORT if port is None else port,
            host=host,
            folder=folder,
            err=err,
            out=out,
            mirrors=settings.mirrors,
        )
    if action == "serve":
        url, key, started = ensure_running(settings, folder, port=port)
        err.write(f"backend {'started' if started else 'already running'} on {url}\n")
        out.write("\n".join(env_lines(url, key)) + "\n")
        return EXIT_OK
    if action == "stop":
        stopped = stop(folder)
        err.write("backend stopped\n" if stopped else "no backend runs for this data folder\n")
        return EXIT_OK
    info = read_info(folder)
    if info is None:
        raise BackendUnavailable(
            f"no backend runs for {folder}", "start one: `boxsmith backend serve --detach`"
        )
    url = str(info["url"])
    if action == "env":
        out.write("\n".join(env_lines(url, api_key(folder))) + "\n")
        return EXIT_OK
    healthy = _healthy(url)
    status = {"running": True, "healthy": healthy, **info}
    if as_json:
        json.dump(status, out, indent=2)
        out.write("\n")
    else:
        out.write(
            f"backend pid {info['pid']} on {url}: {'answers' if healthy else 'does NOT answer'}"
            f" (data {info.get('data_dir', folder)})\n"
        )
        limits = info.get("limits")
        if isinstance(limits, dict):
            out.write("limits: " + ", ".join(f"{k}={v}" for k, v in limits.items()) + "\n")
    if not healthy:
        raise BackendUnavailable(f"the backend on {url} does not answer", "restart it")
    return EXIT_OK
