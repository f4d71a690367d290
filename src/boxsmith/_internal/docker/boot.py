"""Start a container the way E2B starts a sandbox, and run commands in it as E2B runs them.

`boot`: a container of an image with docker's init as PID 1, the template's cpu and memory as
limits and `E2B_SANDBOX=true`; then, as E2B does, `start_cmd` in the background as the template's
final user, and `ready_cmd` retried every 2 s until it passes (or the start command fails, or the
ready timeout passes). E2B's defaults apply when the template sets neither: no start command and
`sleep 0` as the ready command; a start command without a ready command waits `sleep 20`.

`SandboxContainer` runs shell commands in the booted container through `docker exec`, as the
template's final user in its final workdir, through `bash -l -c` (else `sh -c`), as E2B runs
sandbox commands. The smoke stage's `ContainerTarget` and the local backend's sandboxes build on
it.

The caller removes the container; and since a process killed with kill -9 removes nothing, a
container booted with a `lifetime` ends its main process by itself at that deadline, after which
docker removes it.

`DEFAULT_READY_TIMEOUT` and `OWN_MARKER` are defined in `docker.conventions`, which code without
the Docker SDK imports (they are re-exported here).
"""

from __future__ import annotations

import math
import os
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.client import Engine, EngineError
from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT, OWN_MARKER
from boxsmith._internal.docker.host_ca import ca_environment, host_ca_bundle

__all__ = [
    "DEFAULT_READY_TIMEOUT",
    "OWN_MARKER",
    "READY_INTERVAL",
    "ROLE_LABEL",
    "Readiness",
    "SandboxContainer",
    "SandboxSettings",
    "ShellResult",
    "boot",
]

READY_INTERVAL = 2.0  # seconds between ready_cmd attempts, as E2B
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
    """What a template's e2b.toml says about starting a sandbox of it."""

    start_cmd: str | None
    ready_cmd: str | None
    cpu_count: int | None
    memory_mb: int | None

    @classmethod
    def from_toml(cls, data: Mapping[str, object]) -> SandboxSettings:
        """From the parsed e2b.toml of a rendered template."""

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


@dataclass(frozen=True, slots=True)
class ShellResult:
    """How a command in a `SandboxContainer` ended; `exit_code` None when its timeout killed it."""

    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float


class SandboxContainer:
    """A running container that commands run in as in an E2B sandbox, through `docker exec`.

    Commands run as the template's final user in its final workdir, through `bash -l -c` when the
    image has bash, else `sh -c`, bounded by coreutils' `timeout` when the image has it (and by a
    client-side deadline always).
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

    @staticmethod
    def shell(command: str, timeout: float | None = None) -> list[str]:
        """argv running `command` as E2B runs sandbox commands (`bash -l -c`, else `sh -c`),
        under coreutils' `timeout` when given and the image has it; decided in the container, so
        no extra round trip asks what the image has."""
        limit = "" if timeout is None else f"{timeout:g}"
        return ["sh", "-c", _SHELL, "sh", limit, command]

    def _exec(
        self, argv: list[str], *, user: str | None, cwd: str | None, env: Mapping[str, str] | None
    ) -> ShellResult:
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
            )
        except EngineError as exc:
            state = self._engine.container_state(self.container_id)
            raise EngineError(f"{self.description} is {state}: {exc.message}") from exc
        return ShellResult(result.exit_code, result.stdout, result.stderr, time.monotonic() - start)

    def run(
        self,
        command: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ShellResult:
        """Run `command` to its end or `timeout`; `exit_code=None` when it was killed.

        Raises EngineError (naming the container's state) when the container cannot run it.
        """
        argv = self.shell(command, timeout)
        outcome: list[ShellResult | BaseException] = []

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
            return ShellResult(None, "", "", time.monotonic() - start)
        done = outcome[0]
        if isinstance(done, BaseException):
            raise done
        killed = done.exit_code in (124, 137) and done.seconds >= timeout
        return ShellResult(None, done.stdout, done.stderr, done.seconds) if killed else done

    def read_text(self, path: str) -> str | None:
        """A small text file of the container (boxsmith's own state), None when it is missing."""
        result = self.run(f"cat {shlex.quote(path)}")
        return result.stdout if result.exit_code == 0 else None


@dataclass(slots=True)
class Readiness:
    """How the start and ready commands went.

    Attributes:
        ready: whether ready_cmd passed.
        seconds: time until ready (or until giving up).
        attempts: ready_cmd attempts.
        error: why it is not ready ("" when ready).
        start_log: the end of the start command's output (when not ready).
        notes: one-line remarks, e.g. that the cpu count was capped to this machine's.
    """

    ready: bool
    seconds: float
    attempts: int
    error: str = ""
    start_log: str = ""
    notes: list[str] = field(default_factory=list)


def _cpus(settings: SandboxSettings, notes: list[str]) -> float | None:
    """The container's cpu limit: the template's, capped to this machine's (said in `notes`)."""
    if not settings.cpu_count:
        return None
    host = os.cpu_count() or 1
    if settings.cpu_count > host:
        notes.append(f"cpu_count {settings.cpu_count} capped to this machine's {host} CPUs")
    return float(min(settings.cpu_count, host))


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
) -> tuple[SandboxContainer, Readiness]:
    """Start a container of `image` the way E2B starts a sandbox and wait until it is ready.

    start_cmd runs in the background from the container's main process; ready_cmd is retried
    every 2 s until it passes, the start command fails, or `ready_timeout` passes. Both see the
    template's ENV; once ready, commands through the container do not (`build_env`, the image's
    `buildenv` label). The container is left running either way: the caller removes it (and
    does so when not ready). With `lifetime` (seconds) its main process ends by then and docker
    removes it (`Engine.start_container`); without, it runs until removed.

    Raises EngineError when the container cannot start, or stops answering while it gets ready.
    """
    say = on_status or (lambda text: None)
    notes: list[str] = []
    environment = {**_container_env(), **(env or {})}
    if settings.start_cmd:
        say(f"start_cmd: {settings.start_cmd}")
    start = clock()
    container_id = engine.start_container(
        image,
        _main_command(settings.start_cmd, lifetime=lifetime),
        labels=labels,
        environment=environment,
        cpus=_cpus(settings, notes),
        memory_mb=settings.memory_mb,
        lifetime=lifetime,
    )
    container = SandboxContainer(
        engine, container_id, image=image, user=user, workdir=workdir, env=environment
    )
    readiness = _wait_until_ready(
        container, settings, ready_timeout=ready_timeout, say=say, clock=clock, start=start
    )
    readiness.notes.extend(notes)
    if readiness.ready:
        container.ready(build_env or {})
    return container, readiness


def _container_env() -> dict[str, str]:
    return {"E2B_SANDBOX": "true", **ca_environment(host_ca_bundle() is not None)}


_LOG, _STATUS = f"{_STATE}/start.log", f"{_STATE}/start.exit"


def _wait_until_ready(
    container: SandboxContainer,
    settings: SandboxSettings,
    *,
    ready_timeout: float,
    say: Callable[[str], None],
    clock: Callable[[], float],
    start: float,
) -> Readiness:
    """Retry ready_cmd until it passes, the start command exits non-zero, or time runs out."""
    ready_cmd = settings.effective_ready()
    if ready_cmd == "sleep 0":  # E2B's ready command when there is nothing to wait for
        return Readiness(True, clock() - start, 0)
    say(f"ready_cmd: {ready_cmd} (every {READY_INTERVAL:g}s, up to {ready_timeout:g}s)")
    attempts = 0
    while True:
        attempts += 1
        remaining = ready_timeout - (clock() - start)
        result = container.run(ready_cmd, timeout=max(1.0, min(60.0, remaining)))
        if result.exit_code == 0:
            return Readiness(True, clock() - start, attempts)
        if settings.start_cmd:
            code = (container.read_text(_STATUS) or "").strip()
            if code and code != "0":
                error = f"start_cmd exited with code {code} before ready_cmd passed"
                return Readiness(False, clock() - start, attempts, error, _tail(container))
        remaining = ready_timeout - (clock() - start)
        if remaining <= 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            detail = f"; last attempt: exit {result.exit_code}" + (
                f", {said[-1]!r}" if said else ""
            )
            error = (
                f"not ready after {ready_timeout:g}s: ready_cmd `{ready_cmd}` never passed"
                f" ({attempts} attempts{detail})"
            )
            log = _tail(container) if settings.start_cmd else ""
            return Readiness(False, clock() - start, attempts, error, log)
        time.sleep(min(READY_INTERVAL, remaining))


def _main_command(start_cmd: str | None, *, lifetime: float | None = None) -> list[str]:
    """The container's main process: start_cmd in the background (as the image's final user, in
    its final workdir, output to the start log, exit code to the status file), then wait until
    stopped, or until `lifetime` seconds passed.

    Starting it here rather than with a `docker exec` saves a round trip; the marker keeps this
    shell out of process checks.
    """
    keepalive = _KEEPALIVE if lifetime is None else _DEADLINE.format(seconds=math.ceil(lifetime))
    if not start_cmd:
        return ["sh", "-c", keepalive]
    launch = (
        f"mkdir -p {_STATE} 2>/dev/null; "
        f"( {shlex.join(SandboxContainer.shell(start_cmd))} > {shlex.quote(_LOG)} 2>&1; "
        f"echo $? > {shlex.quote(_STATUS)} ) & "
    )
    return ["sh", "-c", f"{OWN_MARKER} {launch}{keepalive}"]


def _tail(container: SandboxContainer, lines: int = 20) -> str:
    """The last lines of the start command's output; "" when it cannot be read."""
    try:
        text = container.read_text(_LOG)
    except EngineError:
        return ""
    return "\n".join((text or "").splitlines()[-lines:])
