"""Smoke checks in a local container of a built template, started the way E2B starts a sandbox.

`start_sandbox` boots a container of `boxsmith/<project>/<name>:<version>` (`docker.boot`:
the template's start command, then its ready command until it passes) with the settings of the
rendered e2b.toml; `ContainerTarget` is that container as a `CheckTarget`, so the spec's checks run
in it through `docker exec` (a page check's browser opens its ports at its address on Docker's
bridge). The caller removes the container, also after a failure or Ctrl-C; a boxsmith killed
with kill -9 removes nothing, so the container ends by itself at a deadline
(`container_lifetime`: the ready timeout plus the checks' `budget` plus a margin, or
BOXSMITH_CONTAINER_LIFETIME), after which docker removes it.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Mapping

from boxsmith._internal.build.rendered import USER_LABEL, WORKDIR_LABEL, BuildUnit
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.boot import (
    ROLE_LABEL,
    Readiness,
    SandboxContainer,
    SandboxSettings,
    boot,
)
from boxsmith._internal.docker.client import LABEL, Engine, EngineError
from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT
from boxsmith._internal.render import TOML
from boxsmith._internal.smoke.protocol import (
    CommandResult,
    PortUrl,
    TargetError,
    read_with_base64,
)
from boxsmith._internal.smoke.runner import budget

__all__ = ["ContainerTarget", "container_lifetime", "sandbox_settings", "start_sandbox"]

LIFETIME_MARGIN = 120.0  # seconds past the ready timeout and the checks: start-up, slow engines


class ContainerTarget:
    """A container started like a sandbox (`SandboxContainer`) as a smoke-check `CheckTarget`.

    A container that can no longer run commands (gone, stopped) is a `TargetError`.
    """

    def __init__(self, container: SandboxContainer, engine: Engine) -> None:
        self._container = container
        self._engine = engine

    @property
    def container_id(self) -> str:
        """The docker container's id."""
        return self._container.container_id

    @property
    def description(self) -> str:
        """`container 3f2a1c9d0e1b (boxsmith/<project>/<name>:<version>)`."""
        return self._container.description

    def run(
        self,
        command: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        """Run `command` to its end or `timeout`; `exit_code=None` when it was killed."""
        try:
            done = self._container.run(command, user=user, cwd=cwd, env=env, timeout=timeout)
        except EngineError as exc:
            raise TargetError(exc.message) from exc
        return CommandResult(done.exit_code, done.stdout, done.stderr, done.seconds)

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        """The file's bytes through `base64` (works for /proc files), None when it is missing."""
        return read_with_base64(self, path, user=user, timeout=timeout)

    def port_url(self, port: int) -> PortUrl:
        """`http://<the container's address on Docker's bridge>:<port>`: the host reaches a
        container's ports there without publishing them."""
        try:
            address = self._engine.container_address(self.container_id)
        except EngineError as exc:
            raise TargetError(exc.message) from exc
        if address is None:
            raise TargetError(f"{self.description} has no network address (is it still running?)")
        host = f"[{address}]" if ":" in address else address
        return PortUrl(f"http://{host}:{port}", {})


def sandbox_settings(unit: BuildUnit) -> SandboxSettings:
    """The start and ready commands and limits of the rendered folder's e2b.toml (what gets
    published)."""
    return SandboxSettings.from_toml(
        tomllib.loads((unit.folder / TOML).read_text(encoding="utf-8"))
    )


def container_lifetime(unit: BuildUnit, ready_timeout: float) -> float:
    """Seconds a smoke container of `unit` needs at most: ready, every check, a margin."""
    return ready_timeout + budget(unit.template.spec.smoke) + LIFETIME_MARGIN


def start_sandbox(
    engine: Engine,
    unit: BuildUnit,
    *,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    lifetime: float | None = None,
    on_status: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[ContainerTarget, Readiness]:
    """Start a container of `unit`'s image as E2B starts a sandbox; the caller removes it, and
    it ends by itself after `lifetime` seconds (default: `container_lifetime(unit, ready_timeout)`).

    Raises EngineError when the container cannot start (the image missing, for one).
    """
    settings = sandbox_settings(unit)
    info = engine.image(unit.image)
    if info is None:
        raise EngineError(
            f"no image {unit.image}: {unit.ref} is not built",
            f"run `boxsmith build {unit.template.name}` first",
        )
    container, readiness = boot(
        engine,
        unit.image,
        settings,
        user=info.labels.get(USER_LABEL, unit.user),
        workdir=info.labels.get(WORKDIR_LABEL, unit.workdir),
        labels={LABEL: "1", ROLE_LABEL: "smoke", "dev.boxsmith.template": unit.ref},
        build_env=buildenv.parse(info.labels),
        ready_timeout=ready_timeout,
        lifetime=lifetime or container_lifetime(unit, ready_timeout),
        on_status=on_status,
        clock=clock,
    )
    return ContainerTarget(container, engine), readiness
