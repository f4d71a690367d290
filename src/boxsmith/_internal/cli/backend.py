"""`boxsmith backend serve | env | status | stop | reset`: the local E2B-compatible backend.

`serve` runs in the foreground until Ctrl-C; `serve --detach` starts it in the background (log in
the data folder, `server.log`, 0600 like the rest of it), waits until it answers and prints the
same `export` lines. `env` prints them for a running backend (`eval "$(boxsmith backend env)"`),
`status` says whether one runs (exit 3 when not) and the limits in force, `stop` stops it.
`reset` stops it, removes its containers and images and clears its data folder (after asking,
unless `--yes`): the way out of a damaged state file.

The work is done by `boxsmith._internal.backend.control` (start, find, stop, reset) and
`boxsmith._internal.backend.server` (serve); this module prints and returns the exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from boxsmith._internal.backend import control
from boxsmith._internal.backend.datadir import UPLOADS, BackendUnavailable, api_key
from boxsmith._internal.backend.server import serve
from boxsmith._internal.cli.options import port_number
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, UsageError

__all__ = ["run"]


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
    if port is not None:
        port_number("--port", port)
    if action == "serve" and not detach:
        return serve(
            settings.root,
            port=control.DEFAULT_PORT if port is None else port,
            host=host,
            folder=folder,
            err=err,
            out=out,
            mirrors=settings.mirrors,
        )
    if action == "serve":
        url, key, started = control.ensure_running(settings, folder, port=port)
        err.write(f"backend {'started' if started else 'already running'} on {url}\n")
        out.write("\n".join(control.env_lines(url, key)) + "\n")
        return EXIT_OK
    if action == "reset":
        done = control.reset(settings, folder, confirm=None if yes else _confirm(err))
        err.write(
            f"backend reset: {'stopped it, ' if done.stopped else ''}removed {done.containers} "
            f"container(s) and {done.images} image(s), cleared {folder}; the next publish "
            "publishes every template again\n"
        )
        return EXIT_OK
    if action == "stop":
        stopped = control.stop(folder)
        err.write("backend stopped\n" if stopped else "no backend runs for this data folder\n")
        return EXIT_OK
    return _report(action, folder, out=out, as_json=as_json)


def _report(action: str, folder: Path, *, out: TextIO, as_json: bool) -> int:
    """`env` or `status` of a running backend (BackendUnavailable when none runs, or, for
    `status`, after printing, when it does not answer)."""
    info = control.status(folder)
    url = str(info["url"])
    if action == "env":
        out.write("\n".join(control.env_lines(url, api_key(folder))) + "\n")
        return EXIT_OK
    if as_json:
        json.dump(info, out, indent=2)
        out.write("\n")
    else:
        out.write(
            f"backend pid {info['pid']} on {url}: "
            f"{'answers' if info['healthy'] else 'does NOT answer'}"
            f" (data {info.get('data_dir', folder)})\n"
        )
        limits = info.get("limits")
        if isinstance(limits, dict):
            out.write("limits: " + ", ".join(f"{k}={v}" for k, v in limits.items()) + "\n")
    if not info["healthy"]:
        raise BackendUnavailable(f"the backend on {url} does not answer", "restart it")
    return EXIT_OK


def _confirm(err: TextIO) -> Callable[[Path], None]:
    """Asks on the terminal before a reset; UsageError when there is none, or the answer is
    not yes."""

    def ask(folder: Path) -> None:
        if not sys.stdin.isatty():
            raise UsageError(
                f"`backend reset` deletes the backend's state in {folder} and asks first, "
                "but there is no terminal to ask on",
                "add --yes to reset without asking",
            )
        err.write(
            f"reset the backend of {folder}: stop it, remove its sandboxes and images, delete "
            f"its templates, key, state file and {folder / UPLOADS}/ (build uploads)? [y/N] "
        )
        err.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise UsageError("reset cancelled: nothing was changed", "")

    return ask
