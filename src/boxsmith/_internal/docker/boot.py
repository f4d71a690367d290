"""Smoke checks in a local container, started the way E2B starts a sandbox.

For each built template (`boxsmith/<name>:<version>`): a container with docker's init as PID 1,
the template's cpu and memory as limits and `E2B_SANDBOX=true`; then, as on E2B (e2b-templates.md
7.3), `start_cmd` in the background as the template's final user, `ready_cmd` retried every 2 s
until it passes (or the start command fails, or the ready timeout passes); then the spec's smoke
checks through `docker exec` (`ContainerTarget`, the `CheckTarget` protocol).
The
container is removed at the end, also after a failure or Ctrl-C; and since a boxsmith killed
with kill -9 removes nothing, its main process ends by itself at a deadline (`lifetime`: the
ready timeout plus the checks' `budget` plus a margin, or BOXSMITH_CONTAINER_LIFETIME), after
which docker removes it.
"""

from __future__ import annotations

import math
import os
import shlex
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from boxsmith._internal.build.record import host_ca_bundle
from boxsmith._internal.build.rendered import (
    CA_IN_IMAGE,
    CA_VARIABLES,
    USER_LABEL,
    WORKDIR_LABEL,
    BuildUnit,
)
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.client import LABEL, Engine, EngineError
from boxsmith._internal.render import TOML
from boxsmith._internal.smoke.kinds import OWN_MARKER
from boxsmith._internal.smoke.protocol import CommandResult, TargetError, read_with_base64
from boxsmith._internal.smoke.runner import budget

__all__ = [
    "READY_INTERVAL",
    "ROLE_LABEL",
    "ContainerTarget",
    "Readiness",
    "SandboxSettings",
    "boot",
    "container_lifetime",
    "start_sandbox",
]

READY_INTERVAL = 2.0  # seconds between ready_cmd attempts, as E2B
DEFAULT_READY_TIMEOUT = 600.0  # E2B's limit: 10 minutes
LIFETIME_MARGIN = 120.0  # seconds past the ready timeout and the checks: start-up, slow engines
ROLE_LABEL = "dev.boxsmith.role"
_KEEPALIVE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
_DEADLINE = "trap 'exit 0' TERM INT; sleep {seconds} & wait $!"  # then the container ends
_STATE = "/tmp/.boxsmith"  # start command log and exit status inside the container
# $1: seconds ("" for none), $2: the command. bash -l when the image has bash, as E2B runs them.
_SHELL = (
    'if command -v bash >/dev/null 2>&1; then set -- "$1" "$2" bash -l; '
    'else set -- "$1" "$2" sh; fi; '
    'if [ -n "$1" ] && command -v timeout >/dev/null 2>&1; then '
    'exec timeout -k 2 "$1" "$3" ${4:+"$4"} -c "$2"; fi; '
    'exec "$3" ${4:+"$4"} -c "$2"'
)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """What e2b.toml says about starting a sandbox of the template."""

    start_cmd: str | None
    ready_cmd: str | None
    cpu_count: int | None
    memory_mb: int | None

    @classmethod
    def read(cls, unit: BuildUnit) -> SandboxSettings:
        """From the rendered folder's e2b.toml (what gets published)."""
        data = tomllib.loads((unit.folder / TOML).read_text(encoding="utf-8"))

        def number(key: str) -> int | None:
            value = data.get(key)
            return int(value) if isinstance(value, int) else None

        return cls(
            start_cmd=str(data["start_cmd"]) if data.get("start_cmd") else None,
            ready_cmd=str(data["ready_cmd"]) if data.get("ready_cmd") else None,
            cpu_count=number("cpu_count"),
            memory_mb=number("memory_mb"),
        )

    def effective_ready(self) -> str:
        """E2B's defaults: no start and no ready -> `sleep 0`; start without ready -> `sleep 20`."""
        if self.ready_cmd:
            return self.ready_cmd
        return "sleep 20" if self.start_cmd else "sleep 0"


class ContainerTarget:
    """A running container as a smoke-check `CheckTarget`, through `docker exec`.

    Commands run as the template's final user in its final workdir (like E2B sandbox commands),
    through `/bin/bash -l -c` when the image has bash, else `sh -c`, bounded by coreutils'
    `timeout` when the image has it (and by a client-side deadline always).
    """

    def __init__(
        self,
        engine: Engine,
        container_id: str,
        *,
        image: str,
        user: str,
        workdir: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._engine = engine
        self.container_id = container_id
        self._image = image
        self._user = user
        self._workdir = workdir
        self._env = dict(env or {})
        self._build_env: Mapping[str, str | None] = {}

    def ready(self, build_env: Mapping[str, str | None]) -> None:
        """From now on commands run as in a ready E2B sandbox: without the template's ENV
        (`boxsmith._internal.docker.buildenv`), except what the sandbox's own envs set."""
        self._build_env = build_env

    @property
    def description(self) -> str:
        """`container 3f2a1c9d0e1b (boxsmith/name:version)`."""
        return f"container {self.container_id[:12]} ({self._image})"

    def _exec(
        self,
        argv: list[str],
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        detach: bool = False,
    ) -> CommandResult:
        start = time.monotonic()
        environment, prelude = buildenv.for_command(self._build_env, {**self._env, **(env or {})})
        if prelude:
            argv = ["sh", "-c", prelude + 'exec "$@"', "sh", *argv]
        try:
            result = self._engine.exec(
                self.container_id,
                argv,
                user=user or self._user,
                workdir=cwd or self._workdir,
                environment=environment,
                detach=detach,
            )
        except EngineError as exc:
            state = self._engine.container_state(self.container_id)
            raise TargetError(f"{self.description} is {state}: {exc.message}") from exc
        return CommandResult(
            result.exit_code, result.stdout, result.stderr, time.monotonic() - start
        )

    @staticmethod
    def shell(command: str, timeout: float | None = None) -> list[str]:
        """argv running `command` as E2B runs sandbox commands (`bash -l -c`, else `sh -c`),
        under coreutils' `timeout` when given and the image has it; decided in the container, so
        no extra round trip asks what the image has."""
        limit = "" if timeout is None else f"{timeout:g}"
        return ["sh", "-c", _SHELL, "sh", limit, command]

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
        argv = self.shell(command, timeout)
        outcome: list[CommandResult | BaseException] = []

        def call() -> None:
            try:
                outcome.append(self._exec(argv, user=user, cwd=cwd, env=env))
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        start = time.monotonic()
        worker.start()
        worker.join(timeout + 10)  # `timeout` inside kills it first; this is the backstop
        if not outcome:
            return CommandResult(None, "", "", time.monotonic() - start)
        done = outcome[0]
        if isinstance(done, BaseException):
            raise done
        killed = done.exit_code in (124, 137) and done.seconds >= timeout
        return CommandResult(None, done.stdout, done.stderr, done.seconds) if killed else done

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        """The file's bytes through `cat` (works for /proc files), None when it is missing."""
        return read_with_base64(self, path, user=user, timeout=timeout)


@dataclass(slots=True)
class Readiness:
    """How the start and ready commands went.

    Attributes:
        ready: whether ready_cmd passed.
        seconds: time until ready (or until giving up).
        attempts: ready_cmd attempts.
        error: why it is not ready ("" when ready).
        start_log: the end of the start command's output (when not ready).
    """

    ready: bool
    seconds: float
    attempts: int
    error: str = ""
    start_log: str = ""
    notes: list[str] = field(default_factory=list)


def _container_env(ca: bool) -> dict[str, str]:
    env = {"E2B_SANDBOX": "true"}
    if ca:
        env.update(dict.fromkeys(CA_VARIABLES, CA_IN_IMAGE))
    return env


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
    settings = SandboxSettings.read(unit)
    info = engine.image(unit.image)
    if info is None:
        raise EngineError(
            f"no image {unit.image}: {unit.ref} is not built",
            f"run `boxsmith build {unit.template.name}` first",
        )
    return boot(
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


def boot(
    engine: Engine,
    image: str,
    settings: SandboxSettings,
    *,
    user: str,
    workdir: str,
    labels: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    build_env: Mapping[str, str | None] | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    lifetime: float | None = None,
    on_status: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[ContainerTarget, Readiness]:
    """Start a container of `image` the way E2B starts a sandbox and wait until it is ready.

    start_cmd runs in the background from the container's main process; ready_cmd is retried
    every 2 s until it passes, the start command fails, or `ready_timeout` passes. Both see the
    template's ENV; once ready, commands through the target do not (`build_env`, the image's
    `buildenv` label). The container is left running either way: the caller removes it (and
    does so when not ready). With `lifetime` (seconds) its main process ends by then and docker
    removes it (`Engine.start_container`); without, it runs until removed.
    """
    say = on_status or (lambda text: None)
    notes: list[str] = []
    cpus: float | None = None
    if settings.cpu_count:
        host = os.cpu_count() or 1
        cpus = float(min(settings.cpu_count, host))
        if settings.cpu_count > host:
            notes.append(f"cpu_count {settings.cpu_count} capped to this machine's {host} CPUs")
    environment = {**_container_env(host_ca_bundle() is not None), **(env or {})}
    log, status = f"{_STATE}/start.log", f"{_STATE}/start.exit"
    if settings.start_cmd:
        say(f"start_cmd: {settings.start_cmd}")
    start = clock()
    container = engine.start_container(
        image,
        _main_command(settings.start_cmd, log=log, status=status, lifetime=lifetime),
        labels=labels,
        environment=environment,
        cpus=cpus,
        memory_mb=settings.memory_mb,
        lifetime=lifetime,
    )
    target = ContainerTarget(
        engine, container, image=image, user=user, workdir=workdir, env=environment
    )
    ready_cmd = settings.effective_ready()
    if ready_cmd == "sleep 0":  # E2B's ready command when there is nothing to wait for
        target.ready(build_env or {})
        return target, Readiness(True, clock() - start, 0, notes=notes)
    say(f"ready_cmd: {ready_cmd} (every {READY_INTERVAL:g}s, up to {ready_timeout:g}s)")
    attempts = 0
    while True:
        attempts += 1
        remaining = ready_timeout - (clock() - start)
        result = target.run(ready_cmd, timeout=max(1.0, min(60.0, remaining)))
        if result.exit_code == 0:
            target.ready(build_env or {})
            return target, Readiness(True, clock() - start, attempts, notes=notes)
        said = (result.stderr or result.stdout).strip().splitlines()
        last_line = said[-1] if said else ""
        if settings.start_cmd:
            exit_text = target.read_file(status)
            code = exit_text.decode().strip() if exit_text else ""
            if code and code != "0":
                return target, Readiness(
                    False,
                    clock() - start,
                    attempts,
                    f"start_cmd exited with code {code} before ready_cmd passed",
                    _tail(target, log),
                    notes,
                )
        remaining = ready_timeout - (clock() - start)
        if remaining <= 0:
            detail = f"; last attempt: exit {result.exit_code}" + (
                f", {last_line!r}" if last_line else ""
            )
            return target, Readiness(
                False,
                clock() - start,
                attempts,
                f"not ready after {ready_timeout:g}s: ready_cmd `{ready_cmd}` never passed"
                f" ({attempts} attempts{detail})",
                _tail(target, log) if settings.start_cmd else "",
                notes,
            )
        time.sleep(min(READY_INTERVAL, remaining))


def _main_command(
    start_cmd: str | None, *, log: str, status: str, lifetime: float | None = None
) -> list[str]:
    """The container's main process: start_cmd in the background (as the image's final user, in
    its final workdir, output to `log`, exit code to `status`), then wait until stopped, or
    until `lifetime` seconds passed.

    Starting it here rather than with a `docker exec` saves a round trip; the marker keeps this
    shell out of process checks.
    """
    keepalive = _KEEPALIVE if lifetime is None else _DEADLINE.format(seconds=math.ceil(lifetime))
    if not start_cmd:
        return ["sh", "-c", keepalive]
    launch = (
        f"mkdir -p {_STATE} 2>/dev/null; "
        f"( {shlex.join(ContainerTarget.shell(start_cmd))} > {shlex.quote(log)} 2>&1; "
        f"echo $? > {shlex.quote(status)} ) & "
    )
    return ["sh", "-c", f"{OWN_MARKER} {launch}{keepalive}"]


def _tail(target: ContainerTarget, path: str, lines: int = 20) -> str:
    try:
        data = target.read_file(path)
    except TargetError:
        return ""
    if not data:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
