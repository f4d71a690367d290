"""Docker and the backend's state made to agree: at start, after an earlier run (`reconcile`),
and when the backend is reset (`remove_backend_objects`).

On start, containers an earlier run left are removed: their processes (and the envd state around
them) did not survive, as on E2B after a host restart (also after a kill -9 of the backend).
Then the images: a ready build whose image was removed behind the backend's back is marked
broken (status error, the reason names it), and images labelled with this backend's id that no
ready build uses (builds interrupted, failed or forgotten) are removed. Only this backend's:
every query filters on its id label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import docker.errors

from boxsmith._internal.backend.records import Build
from boxsmith._internal.backend.sandboxes import BACKEND_LABEL
from boxsmith._internal.backend.store import Store
from boxsmith._internal.docker.client import Engine

__all__ = ["Reconciled", "reconcile", "remove_backend_objects"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What `reconcile` cleaned up at start."""

    containers: int
    images: int
    broken: tuple[str, ...]  # the reasons of builds marked broken (their image is gone)

    def summary(self) -> str:
        """One line for the server's log."""
        return (
            f"{self.containers} container(s) and {self.images} orphan image(s) of an earlier "
            f"run removed, {len(self.broken)} build(s) marked broken"
        )


def _remove_images(engine: Engine, backend_id: str, keep: set[str]) -> int:
    """Remove the images labelled with `backend_id` whose id is not in `keep`; how many."""
    removed = 0
    for image in engine.client.images.list(filters={"label": f"{BACKEND_LABEL}={backend_id}"}):
        image_id = str(image.id)
        if image_id in keep:
            continue
        try:  # forced: an image two forgotten builds share has two tags
            engine.client.images.remove(image_id, force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # a child image still uses it, say
            _log.warning("could not remove image %s: %s", image_id[:19], exc.explanation or exc)
    return removed


def remove_backend_objects(engine: Engine, backend_id: str) -> tuple[int, int]:
    """Remove every container and image labelled with `backend_id` (`boxsmith backend reset`);
    (containers, images) removed."""
    containers = engine.containers({BACKEND_LABEL: backend_id})
    for container_id in containers:
        engine.remove_container(container_id)
    return len(containers), _remove_images(engine, backend_id, set())


def reconcile(
    store: Store, engine: Engine, backend_id: str, check_image: Callable[[Build], str | None]
) -> Reconciled:
    """Make Docker and the state agree after an earlier run (stopped or killed): remove its
    containers and forget its sandboxes, fail its unfinished builds, mark ready builds
    whose image is gone broken (`check_image`, `SandboxManager.check_image`), and remove this
    backend's images no ready build uses."""
    containers = engine.containers({BACKEND_LABEL: backend_id})
    for container_id in containers:
        engine.remove_container(container_id)
    for row in store.sandboxes("running"):
        store.set_sandbox(row.id, state="killed")
    for build in store.interrupted_builds():
        store.update_build(build.id, status="error", reason="the backend stopped during the build")
    broken = [r for r in map(check_image, store.builds("ready")) if r]
    keep = {build.image for build in store.builds("ready")}
    images = _remove_images(engine, backend_id, keep)
    return Reconciled(len(containers), images, tuple(broken))
