"""The labels boxsmith puts on what it creates in the engine, and what sweeps read from them.

Everything boxsmith creates carries `dev.boxsmith=1`. Containers also carry their `Engine`'s
session, so leaving the `Engine` removes them even when the process was interrupted between
creating and recording one. A process killed with kill -9 never leaves its `with` block: so an
`Engine` made for a project labels its containers with the project, and a container started with
a lifetime with its expiry (unix seconds). Its command must end by then (the caller's part, e.g.
`sleep` as the main process) and docker then removes it (`auto_remove`); entering such an
`Engine` also removes the project's containers past their expiry that are still there.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

__all__ = [
    "EXPIRES_LABEL",
    "LABEL",
    "PROJECT_LABEL",
    "SESSION_LABEL",
    "container_labels",
    "expired",
]

LABEL = "dev.boxsmith"
SESSION_LABEL = "dev.boxsmith.session"
PROJECT_LABEL = "dev.boxsmith.project"  # settings.project_id of the project it was started for
EXPIRES_LABEL = "dev.boxsmith.expires"  # unix seconds after which it is removed on sight


def container_labels(session: str, project: str | None, lifetime: float | None) -> dict[str, str]:
    """boxsmith's, the session's, and (when known) the project's and the expiry's labels."""
    own = {LABEL: "1", SESSION_LABEL: session}
    if project is not None:
        own[PROJECT_LABEL] = project
    if lifetime is not None:
        own[EXPIRES_LABEL] = str(int(time.time() + lifetime) + 1)
    return own


def expired(labels: Mapping[str, str], now: float) -> bool:
    """Whether a container with these labels is past its expiry (never when it has none, or
    one boxsmith did not write)."""
    try:
        expires = float(labels.get(EXPIRES_LABEL, ""))
    except ValueError:
        return False
    return expires <= now
