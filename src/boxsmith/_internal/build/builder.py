"""Local builds: each `generated/<name>/<version>/` on the Docker engine, as E2B would build it.

Each template is built FROM its parity base (`boxsmith._internal.build.parity`: what E2B's
provisioning adds, made once per base image) as E2B's build server runs the steps the e2b SDK
sends for it, with E2B's finalize appended (`boxsmith._internal.build.composite`), never
changing the generated files. The local backend's build of the same version, when it is
published, is the same Dockerfile over the same files: the engine's cache answers it.

Each template's image is the project's own (`rendered.image_ref`: the project id in its name and
label). Skip unchanged: an image whose build-key label matches (`composite.build_key`) is not
rebuilt (`force` overrides). A build that replaces the project's image of the same tag removes the
image it untagged unless a tag or container still uses it (`Engine.remove_unused_image`). Builds
run in a bounded pool; a template that cannot be built on this machine (a base image nobody can
provide, a build host that does not answer) is *skipped* with the reason when `allow_skip` is set,
and fails otherwise.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from boxsmith._internal.build.base_images import ImageUnavailable, resolve_mirrors
from boxsmith._internal.build.composite import (
    DOCKERFILE_NAME,
    STEP_LINE,
    Step,
    build_context,
    build_key,
    composite,
    step_of,
)
from boxsmith._internal.build.parity import Parity, parity_base
from boxsmith._internal.build.rendered import (
    BUILD_KEY_LABEL,
    PARITY_ID_LABEL,
    PROJECT_LABEL,
    TEMPLATE_LABEL,
    USER_LABEL,
    VERSION_LABEL,
    WORKDIR_LABEL,
    BuildUnit,
)
from boxsmith._internal.build.results import BuildResult, final_text
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.client import BuildFailed, Engine, EngineError, ImageInfo
from boxsmith._internal.docker.host_ca import host_ca_bundle
from boxsmith._internal.history import record_build
from boxsmith._internal.progress import Progress
from boxsmith.config import Settings
from boxsmith.errors import BoxsmithError

__all__ = ["build_templates", "probe_host"]

_UNBUILDABLE_HINT = (
    "make it reachable (a base image: `boxsmith images ensure` or an entry in "
    "[tool.boxsmith.mirrors]), or pass --allow-skip to report it as skipped"
)


def probe_host(host: str, timeout: float = 3.0) -> str:
    """ "" when `host[:port]` accepts a TCP connection, else why not."""
    name, _, port = host.partition(":")
    try:
        with socket.create_connection((name, int(port or 443)), timeout=timeout):
            return ""
    except socket.gaierror:
        return f"{name} does not resolve"
    except TimeoutError:
        return f"{host} does not answer within {timeout:g}s"
    except OSError as exc:
        return f"{host}: {exc.strerror or exc}"


class _Unbuildable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Builder:
    """One `build_templates` run: shared engine, locks and cancellation."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        progress: Progress,
        *,
        force: bool,
        allow_skip: bool,
        ca: Path | None,
        pull_timeout: int,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.progress = progress
        self.force = force
        self.allow_skip = allow_skip
        self.ca = ca.read_bytes() if ca else None
        self.pull_timeout = pull_timeout
        self.cancel = threading.Event()
        self._base_lock = threading.Lock()
        self._bases: dict[str, Parity | BoxsmithError] = {}
        self._hosts: dict[str, str] = {}
        self.logs = settings.state_dir / "logs"

    # -- base images and hosts ---------------------------------------------------------------

    def parity_base(self, base: str) -> Parity:
        """The parity base for `base`, made once per run and per base image."""
        with self._base_lock:
            known = self._bases.get(base)
            if isinstance(known, BoxsmithError):
                raise known
            if known is not None:
                return known
            try:
                result = parity_base(
                    self.engine,
                    base,
                    mirrors=resolve_mirrors(self.settings.mirrors),
                    ca=self.ca,
                    pull_timeout=self.pull_timeout,
                    log=self.progress.note,
                    on_line=self._cancellable,
                )
            except BoxsmithError as exc:
                self._bases[base] = exc
                raise
            self._bases[base] = result
            return result

    def _cancellable(self, line: str) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt

    def hosts_problem(self, hosts: Iterable[str]) -> str:
        """Why one of `hosts` cannot be reached ("" when all answer); probed once per run."""
        for host in hosts:
            if host not in self._hosts:
                self._hosts[host] = probe_host(host)
            if self._hosts[host]:
                return self._hosts[host]
        return ""

    # -- one template ------------------------------------------------------------------------

    def build(self, unit: BuildUnit, result: BuildResult) -> None:
        """Build `unit` (or find it cached), recording the outcome in `result`; never raises a
        BoxsmithError."""
        start = time.monotonic()
        try:
            self._build_or_reuse(unit, result)
        except _Unbuildable as exc:
            result.status = "skipped" if self.allow_skip else "failed"
            result.reason = exc.reason
            result.hint = _UNBUILDABLE_HINT
        except BuildFailed as exc:
            result.status, result.reason, result.step = (
                "failed",
                exc.reason or exc.message,
                exc.step,
            )
        except BoxsmithError as exc:
            result.status, result.reason = "failed", exc.message
        finally:
            result.seconds = time.monotonic() - start

    def _build_or_reuse(self, unit: BuildUnit, result: BuildResult) -> None:
        self.progress.update(unit.ref, "base image", quiet=True)
        try:
            parity = self.parity_base(unit.base_image)
        except ImageUnavailable as exc:
            raise _Unbuildable(exc.message) from exc
        result.notes += parity.notes
        result.base_id, result.parity, result.parity_id = parity.base_id, parity.tag, parity.id
        for note in parity.notes:
            self.progress.note(f"build {unit.ref}: {note}")
        result.key = build_key(unit, parity.id)
        existing = self.engine.image(unit.image)
        if (
            not self.force
            and existing is not None
            and existing.labels.get(BUILD_KEY_LABEL) == result.key
        ):
            result.status, result.image_id, result.size = "cached", existing.id, existing.size
            return
        # Hosts matter only for a build that runs: an up-to-date image needs none of them.
        problem = self.hosts_problem(unit.template.spec.build_hosts)
        if problem:
            raise _Unbuildable(f"its build needs a host this machine cannot reach: {problem}")
        self._build(unit, result, parity)
        if existing is not None and existing.id != result.image_id:
            self._remove_replaced(unit, existing)

    def _remove_replaced(self, unit: BuildUnit, replaced: ImageInfo) -> None:
        """Remove the image a build untagged when it was this project's and nothing uses it
        (a tag or container still does: it stays); best effort."""
        if replaced.labels.get(PROJECT_LABEL) != unit.project:
            return
        try:
            removed = self.engine.remove_unused_image(replaced.id)
        except EngineError as exc:
            self.progress.note(
                f"build {unit.ref}: could not remove the image it replaced: {exc.message}"
            )
            return
        if not removed:
            self.progress.note(
                f"build {unit.ref}: kept the image it replaced ({replaced.id[7:19]}): "
                "a tag or a container still uses it"
            )

    def _labels(self, unit: BuildUnit, key: str, parity: Parity) -> dict[str, str]:
        """The labels of the template's image; `buildenv`'s: the ENV names of the Dockerfile
        with the parity base's values."""
        names = [k for s in unit.statements if s.keyword == "ENV" for k, _ in s.pairs()]
        build_env = buildenv.label_value(
            names, buildenv.config_env(self.engine.image_config(parity.tag))
        )
        return {
            PROJECT_LABEL: unit.project,
            PARITY_ID_LABEL: parity.id,
            BUILD_KEY_LABEL: key,
            TEMPLATE_LABEL: unit.template.name,
            VERSION_LABEL: unit.template.version,
            USER_LABEL: unit.user,
            WORKDIR_LABEL: unit.workdir,
            buildenv.LABEL: build_env,
        }

    def _build(self, unit: BuildUnit, result: BuildResult, parity: Parity) -> None:
        plan = composite(unit, parity.tag, self.ca is not None)
        steps, context = plan.steps, build_context(unit, plan)
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{unit.template.name}-{unit.template.version}.build.log"
        result.log, result.log_file = self.settings.display(log_path), log_path
        self.progress.update(unit.ref, "building", completed=0, total=len(steps))
        with log_path.open("w", encoding="utf-8") as log:
            try:
                image_id = self.engine.build(
                    context,
                    unit.image,
                    labels=self._labels(unit, result.key, parity),
                    dockerfile=DOCKERFILE_NAME,
                    on_line=self._on_line(unit, steps, log.write),
                )
            except BuildFailed as exc:
                exc.step = step_of(unit, steps, exc.step)
                raise
        info = self.engine.image(unit.image)
        result.status, result.image_id = "built", image_id
        result.size = info.size if info else 0

    def _on_line(
        self, unit: BuildUnit, steps: list[Step], write: Callable[[str], object]
    ) -> Callable[[str], None]:
        """What each build output line does: to the log, a cancel check, the step in progress
        (shown when it is the template's own)."""

        def on_line(line: str) -> None:
            write(line + "\n")
            self._cancellable(line)
            match = STEP_LINE.match(line)
            if match:
                number, of = int(match.group(1)), int(match.group(2))
                origin = steps[number - 1].origin if number <= len(steps) else "labels"
                text = match.group(3)
                shown = text if len(text) <= 70 else text[:67] + "..."
                self.progress.update(
                    unit.ref,
                    f"step {number}/{of} {shown}",
                    completed=number - 1,
                    total=of,
                    quiet=not origin.startswith(unit.display),
                )

        return on_line


def build_templates(
    settings: Settings,
    units: Sequence[BuildUnit],
    *,
    engine: Engine,
    progress: Progress,
    jobs: int = 2,
    force: bool = False,
    allow_skip: bool = False,
    pull_timeout: int = 20,
    on_done: Callable[[BuildResult], None] | None = None,
) -> list[BuildResult]:
    """Build `units` with at most `jobs` builds at once; one result per unit, in order.

    On Ctrl-C the running builds are cancelled in the engine (their connections closed, their
    intermediate containers removed by `forcerm`) before KeyboardInterrupt propagates.
    """
    ca = host_ca_bundle()
    builder = _Builder(
        settings,
        engine,
        progress,
        force=force,
        allow_skip=allow_skip,
        ca=ca,
        pull_timeout=pull_timeout,
    )
    if ca is not None:
        progress.note(f"build: trusting the host's CA bundle {ca} during builds (local CAs found)")
    results = [BuildResult(u.template.name, u.template.version, u.image) for u in units]
    for unit in units:
        progress.add(unit.ref)

    def work(unit: BuildUnit, result: BuildResult) -> None:
        if builder.cancel.is_set():
            result.status, result.reason = "failed", "interrupted"
            return
        builder.build(unit, result)
        _record(settings, result)
        progress.finish(unit.ref, final_text(result))
        if on_done is not None:
            on_done(result)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build") as pool:
        futures: list[Future[None]] = [
            pool.submit(work, unit, result) for unit, result in zip(units, results, strict=True)
        ]
        try:
            for future in futures:
                future.result()
        except BaseException:
            builder.cancel.set()
            for future in futures:
                future.cancel()
            engine.abort()
            raise
    return results


def _record(settings: Settings, result: BuildResult) -> None:
    """A build that ran (built or failed): its time and image size into the history file."""
    if result.status in ("built", "failed"):
        record_build(
            settings,
            name=result.name,
            version=result.version,
            status=result.status,
            seconds=result.seconds,
            size=result.size,
            image_id=result.image_id,
        )
