"""Where templates are published and sandboxes booted: the bundled local backend, or E2B cloud.

`connect(settings, "local" | "e2b")` returns the SDK parameters for that target (passed to every
`Template.*` / `Sandbox.*` call, so the process environment does not decide): for `local` the
backend of this project (started in the background when it is not running, and said so, on
BOXSMITH_BACKEND_PORT, else 49990 or a free port when another process has that one, with its
data in BOXSMITH_BACKEND_DIR or .boxsmith/backend); for `e2b` the key from E2B_API_KEY and the
domain from E2B_DOMAIN (default e2b.app). The key is never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TextIO

from boxsmith._internal.backend.control import ensure_running
from boxsmith._internal.backend.datadir import backend_id, data_dir
from boxsmith._internal.backend.state_file import ready_images
from boxsmith._internal.extras import installed
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = [
    "TARGETS",
    "PublishTarget",
    "connect",
    "live_builds",
]

TARGETS = ("local", "e2b")


@dataclass(frozen=True, slots=True)
class PublishTarget:
    """A connected target.

    Attributes:
        name: `local` or `e2b`.
        description: for messages, e.g. `local backend http://127.0.0.1:49990`.
        params: keyword arguments for the SDK (api_key, api_url, sandbox_url or domain).
    """

    name: str
    description: str
    params: dict[str, Any] = field(repr=False)


def live_builds(settings: Settings, name: str) -> frozenset[str] | None:
    """The builds that target `name` still has, where boxsmith can tell without a request.

    For `local`: the finished builds in the local backend's data folder whose image Docker
    still has, so publish records of a backend whose data was deleted or is damaged, of one
    whose image was removed behind its back, or of another machine's backend (committed by
    mistake) count as not published and are published again. None for `e2b` (its records are
    trusted), and when the local state cannot be read for a reason other than damage (locked
    by a writer for over 5 s, no permission): unknown, the records are trusted.
    """
    if name != "local":
        return None
    folder = data_dir(settings.root)
    builds = ready_images(folder)
    if not builds:
        return None if builds is None else frozenset()
    present = _backend_images(backend_id(folder))
    if present is None:  # no engine to ask: the state file decides
        return frozenset(builds)
    return frozenset(build for build, image in builds.items() if image in present)


def _backend_images(owner: str) -> set[str] | None:
    """Ids of the images the local backend `owner` built that Docker has; None when no engine
    answers, or when docker is not installed (publishing to E2B needs only the `e2b` extra)."""
    if not installed("docker"):
        return None
    # here, not at the top: the Docker SDK is the `build` extra's (a broken one still raises)
    from docker.errors import DockerException

    from boxsmith._internal.backend.sandboxes import BACKEND_LABEL
    from boxsmith._internal.docker.client import Engine, EngineError

    try:
        with Engine() as engine:
            found = engine.client.images.list(filters={"label": f"{BACKEND_LABEL}={owner}"})
    except (EngineError, DockerException, OSError):  # OSError: requests' errors too
        return None
    return {str(image.id) for image in found}


def connect(settings: Settings, name: str, *, err: TextIO) -> PublishTarget:
    """The SDK parameters for target `name`; UsageError for an unknown target or no key."""
    if name == "local":
        raw = os.environ.get("BOXSMITH_BACKEND_PORT", "")
        if raw and not raw.isdigit():
            raise UsageError(
                f"BOXSMITH_BACKEND_PORT must be a port number, got {raw!r}",
                "set it to e.g. 49990, or unset it",
            )
        port = int(raw) if raw else None
        url, key, started = ensure_running(settings, data_dir(settings.root), port=port)
        if started:
            err.write(f"started the local backend on {url} (`boxsmith backend stop` stops it)\n")
        return PublishTarget(
            "local", f"local backend {url}", {"api_key": key, "api_url": url, "sandbox_url": url}
        )
    if name == "e2b":
        key = os.environ.get("E2B_API_KEY", "")
        if not key:
            raise UsageError(
                "target e2b needs E2B_API_KEY",
                "export E2B_API_KEY (a key from the E2B dashboard), or use --target local",
            )
        domain = os.environ.get("E2B_DOMAIN") or "e2b.app"
        params = {"api_key": key, "domain": domain, "api_url": f"https://api.{domain}"}
        return PublishTarget("e2b", f"E2B cloud ({domain})", params)
    raise UsageError(f"unknown target {name!r}", f"use one of {', '.join(TARGETS)}")
