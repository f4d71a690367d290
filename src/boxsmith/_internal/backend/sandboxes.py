"""Sandboxes as Docker containers: create (start_cmd running, ready_cmd passed), kill, time out.

A sandbox is a container of its template build's image, started like a local smoke container
(`boxsmith._internal.docker.boot.boot`) with the build's cpu and memory as limits and labels
naming this backend (`dev.boxsmith.backend=<data folder id>`). A reaper kills sandboxes past
their end time and forgets those whose container died. A create whose client went away while
it waited for ready has its container removed (`create`'s `cancel`). What an earlier run left
is cleaned up at start by `boxsmith._internal.backend.reconcile`.

So nothing about a sandbox is needed across a restart but its record: its envVars (users'
secrets) and its envd access token live in memory only (`SandboxHandle`), never in the state
file, a log or the container's config; each command gets the envVars when it starts.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from boxsmith._internal.backend.records import Build, SandboxRow, now
from boxsmith._internal.backend.runtime import (
    SandboxGone,
    SandboxHandle,
    new_access_token,
)
from boxsmith._internal.backend.state_file import StateDamaged
from boxsmith._internal.backend.store import Store
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.boot import ROLE_LABEL, SandboxSettings, boot
from boxsmith._internal.docker.client import LABEL, Engine, EngineError
from boxsmith._internal.docker.engine_errors import FOREIGN

__all__ = ["BACKEND_LABEL", "CreateCancelled", "CreateFailed", "Route", "SandboxManager"]

BACKEND_LABEL = "dev.boxsmith.backend"
SANDBOX_LABEL = "dev.boxsmith.sandbox"
_log = logging.getLogger(__name__)


class Route(NamedTuple):
    """Where a running sandbox's preview traffic goes (`backend.preview`), and who may send it.

    Attributes:
        address: the container's IP address on Docker's bridge (None: it has none).
        traffic_token: the `e2b-traffic-access-token` a sandbox created with
            `allowPublicTraffic: false` requires; None: its ports are public, as on E2B.
    """

    address: str | None
    traffic_token: str | None


class CreateFailed(Exception):
    """A sandbox could not be started (the message says why); nothing is left running."""


class CreateCancelled(CreateFailed):
    """The create was cancelled (its client went away); its container is removed."""


def _home(user: str) -> str:
    return "/root" if user in ("root", "0") else f"/home/{user}"


def _record(
    build: Build,
    *,
    sandbox_id: str,
    alias: str,
    container_id: str,
    metadata: Mapping[str, str],
    timeout: int,
) -> SandboxRow:
    """The state's row of a sandbox that just got ready, ending `timeout` seconds from now."""
    started = now()
    return SandboxRow(
        id=sandbox_id,
        template_id=build.template_id,
        build_id=build.id,
        alias=alias,
        container_id=container_id,
        metadata=dict(metadata),
        started_at=started,
        end_at=started + timedelta(seconds=timeout),
        cpu_count=build.cpu_count,
        memory_mb=build.memory_mb,
        user=build.user,
        workdir=build.workdir,
        state="running",
    )


class SandboxManager:
    """Running sandboxes: the `Sandboxes` registry of the envd plane, plus their lifecycle.

    Args:
        store: the state.
        engine: an entered Engine (thread-safe docker client).
        backend_id: this data folder's id, a label on every container.
        on_killed: called with a sandbox id after it stopped (the envd plane forgets its
            processes).
    """

    def __init__(
        self,
        store: Store,
        engine: Engine,
        backend_id: str,
        *,
        on_killed: Callable[[str], None] | None = None,
        ready_timeout: float = 600.0,
    ) -> None:
        self._store = store
        self._engine = engine
        self._backend_id = backend_id
        self._on_killed = on_killed
        self._ready_timeout = ready_timeout
        self._lock = threading.Lock()
        self._running: dict[str, SandboxHandle] = {}
        self._routes: dict[str, Route] = {}  # in memory only, as the access tokens
        self._build_envs: dict[str, dict[str, str | None]] = {}  # build id -> buildenv label
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # -- registry (the envd plane) -----------------------------------------------------------

    def get(self, sandbox_id: str) -> SandboxHandle:
        """The running sandbox with this id; SandboxGone otherwise (also once it timed out)."""
        with self._lock:
            handle = self._running.get(sandbox_id)
        if handle is None:
            raise SandboxGone(sandbox_id)
        return handle

    def handles(self) -> list[SandboxHandle]:
        """Every running sandbox."""
        with self._lock:
            return list(self._running.values())

    def route(self, sandbox_id: str) -> Route | None:
        """The preview route of a running sandbox; None when it does not run."""
        with self._lock:
            return self._routes.get(sandbox_id)

    def count(self) -> int:
        """How many sandboxes run."""
        with self._lock:
            return len(self._running)

    # -- lifecycle ---------------------------------------------------------------------------

    def check_image(self, build: Build) -> str | None:
        """None when the image of a ready `build` is there; else the build is marked broken
        (status error) and the reason returned."""
        if self._engine.image(build.image) is not None:
            return None
        template = self._store.template(build.template_id)
        name = template.name if template else build.template_id
        reason = (
            f"build {build.id} of template {name!r} is broken: its image was removed outside "
            "the backend (docker rmi?); publish the template again"
        )
        self._store.update_build(build.id, status="error", reason=reason, reason_step="base")
        return reason

    def start_reaper(self, interval: float = 1.0) -> None:
        """Kill sandboxes past their end time, every `interval` seconds, in a daemon thread."""

        def loop() -> None:
            damaged = False
            while not self._stop.wait(interval):
                try:
                    self.reap()
                except StateDamaged as exc:  # said once, not every second
                    if not damaged:
                        _log.error("reaper: %s", exc.message)
                    damaged = True
                except Exception:  # a failed sweep must not end the reaper
                    _log.exception("reaper sweep failed")

        self._reaper = threading.Thread(target=loop, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    def reap(self) -> list[str]:
        """Kill every running sandbox whose end time has passed, and forget those whose
        container died or was removed behind the backend's back; returns their ids."""
        dead = self._dead()
        for sandbox_id in dead:
            _log.warning("sandbox %s: its container stopped or was removed", sandbox_id)
            self.lost(sandbox_id)
        current = now()
        expired = [row.id for row in self._store.sandboxes("running") if row.end_at <= current]
        for sandbox_id in expired:
            self.kill(sandbox_id)
        return dead + expired

    def _dead(self) -> list[str]:
        """The sandboxes in memory whose container no longer runs (OOM-killed, `docker rm`)."""
        handles = self.handles()  # before the listing: each of these had a running container
        if not handles:
            return []
        try:
            found = self._engine.client.containers.list(
                sparse=True,  # ids only: no inspect per container, every second
                filters={"label": f"{BACKEND_LABEL}={self._backend_id}", "status": "running"},
            )
        except FOREIGN as exc:
            _log.debug("reaper: cannot list containers: %s", exc)
            return []  # the engine away: nothing known died, the next sweep looks again
        alive = {str(container.id) for container in found}
        return [handle.id for handle in handles if handle.container_id not in alive]

    def lost(self, sandbox_id: str) -> bool:
        """Forget a sandbox whose container is gone and free its place (under the limit of
        sandboxes); False when it was not running. The same as `kill`: a stopped container
        left behind is removed."""
        return self.kill(sandbox_id)

    def close(self, *, kill_all: bool = True) -> None:
        """Stop the reaper; with `kill_all`, kill every running sandbox (server shutdown)."""
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
        if kill_all:  # the ones in memory: a damaged state must not leave containers behind
            for handle in self.handles():
                self.kill(handle.id)

    def create(
        self,
        build: Build,
        alias: str,
        *,
        timeout: int,
        metadata: Mapping[str, str],
        env: Mapping[str, str],
        secure: bool = True,
        public_traffic: bool = True,
        cancel: threading.Event | None = None,
    ) -> SandboxRow:
        """Start a sandbox of `build` and return once its ready command passed; with `secure`
        (the default) its envd plane needs a fresh access token (`get(id).access_token`), and
        without `public_traffic` its ports a traffic token (`route(id).traffic_token`).

        `cancel` set (its client went away) ends the wait for ready: the container is removed
        and CreateCancelled raised, within one ready attempt.

        Raises CreateFailed (with the start command's output) when it does not get ready.
        """
        sandbox_id = "i" + secrets.token_hex(10)
        cancelled = cancel or threading.Event()
        mine = {SANDBOX_LABEL: sandbox_id, BACKEND_LABEL: self._backend_id}
        container_id, build_env = self._boot(build, sandbox_id, cancelled)
        try:
            row = _record(
                build,
                sandbox_id=sandbox_id,
                alias=alias,
                container_id=container_id,
                metadata=metadata,
                timeout=timeout,
            )
            route = Route(
                self._engine.container_address(container_id),
                None if public_traffic else new_access_token(),
            )
            self._store.add_sandbox(row)  # StateDamaged, "database is locked", ...
            with self._lock:
                self._routes[sandbox_id] = route
                self._running[sandbox_id] = SandboxHandle(
                    id=sandbox_id,
                    container_id=container_id,
                    user=build.user,
                    workdir=build.workdir,
                    home=_home(build.user),
                    env=dict(env),
                    build_env=build_env,
                    access_token=new_access_token() if secure else None,
                )
        except BaseException:
            # whatever ends the create after the boot: no container runs on untracked, counted
            # by no limit and removed by no reaper
            self._discard(mine)
            raise
        return row

    def _boot(
        self, build: Build, sandbox_id: str, cancelled: threading.Event
    ) -> tuple[str, dict[str, str | None]]:
        """(container id, build env) of a container of `build` whose ready command passed;
        CreateCancelled once `cancelled` is set, CreateFailed when it did not get ready (its
        container removed either way)."""
        mine = {SANDBOX_LABEL: sandbox_id, BACKEND_LABEL: self._backend_id}

        def clock() -> float:
            # boot reads the clock before each ready attempt: a cancelled create's container
            # goes there, so the attempt fails at once instead of waiting up to ready_timeout
            if cancelled.is_set():
                self._remove(mine)
            return time.monotonic()

        settings = SandboxSettings(
            start_cmd=build.start_cmd,
            ready_cmd=build.ready_cmd,
            cpu_count=build.cpu_count,
            memory_mb=build.memory_mb,
        )
        try:
            build_env = self._build_env(build)
            target, readiness = boot(
                self._engine,
                build.image,
                settings,
                user=build.user,
                workdir=build.workdir,
                labels={LABEL: "1", ROLE_LABEL: "sandbox", **mine},
                # envVars go to each command (`SandboxHandle.env`), not into the container's
                # config, where `docker inspect` shows them: as on E2B, where the start command
                # runs from the template's snapshot, it does not see them either
                build_env=build_env,
                ready_timeout=self._ready_timeout,
                clock=clock,
            )
        except EngineError as exc:  # also when the container went away while it got ready
            self._remove(mine)
            if cancelled.is_set():
                raise CreateCancelled(f"sandbox {sandbox_id}: cancelled, its client left") from exc
            raise CreateFailed(f"cannot start a container of {build.image}: {exc.message}") from exc
        try:
            if cancelled.is_set():
                raise CreateCancelled(f"sandbox {sandbox_id}: cancelled, its client left")
            if not readiness.ready:
                detail = f"\n{readiness.start_log}" if readiness.start_log else ""
                raise CreateFailed(f"sandbox did not get ready: {readiness.error}{detail}")
        except BaseException:
            self._discard(mine)
            raise
        return target.container_id, build_env

    def _remove(self, labels: Mapping[str, str]) -> None:
        for container_id in self._engine.containers(labels):
            self._engine.remove_container(container_id)

    def _discard(self, labels: Mapping[str, str]) -> None:
        """`_remove` on the way out of a failed create: a failure to remove is logged, so the
        create's own error is the one raised."""
        try:
            self._remove(labels)
        except Exception:
            _log.exception("removing the container of a failed create (%s)", labels)

    def _build_env(self, build: Build) -> dict[str, str | None]:
        """The `buildenv` label of a build's image, read once per build (images do not change)."""
        known = self._build_envs.get(build.id)
        if known is None:
            image = self._engine.image(build.image)
            known = self._build_envs[build.id] = buildenv.parse(image.labels if image else {})
        return known

    def running(self, sandbox_id: str) -> SandboxRow | None:
        """The record of a running sandbox."""
        with self._lock:
            if sandbox_id not in self._running:
                return None
        row = self._store.sandbox(sandbox_id)
        return row if row is not None and row.state == "running" else None

    def set_end(self, sandbox_id: str, end_at: datetime) -> bool:
        """Move a running sandbox's end time; False when it is not running."""
        if self.running(sandbox_id) is None:
            return False
        self._store.set_sandbox(sandbox_id, end_at=end_at)
        return True

    def kill(self, sandbox_id: str) -> bool:
        """Remove a sandbox's container; False when it was not running."""
        with self._lock:
            handle = self._running.pop(sandbox_id, None)
            self._routes.pop(sandbox_id, None)
        if handle is None:
            return False
        self._engine.remove_container(handle.container_id)
        if self._on_killed is not None:
            self._on_killed(sandbox_id)
        self._store.set_sandbox(sandbox_id, state="killed", end_at=now())
        return True
