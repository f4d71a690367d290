"""Local builds: each `generated/<name>/<version>/` on the Docker engine, as E2B would build it.

Each template is built FROM its parity base (`boxsmith._internal.build.parity`: what E2B's
provisioning adds,
made once per base image) with E2B's finalize appended, never changing the generated files:
after the template's steps, /home/user owned by `user`, `chmod -R 777 /usr/local`, /code, then
the template's final USER and WORKDIR again. The host CA, when there is one, is trusted through
build ARGs (`ca_args`).

Skip unchanged: the build key hashes the rendered folder, the parity layer and the parity base's
image id (so a new base image rebuilds). It is stored as a label on `boxsmith/<name>:<version>`;
an image whose label matches is not rebuilt (`force` overrides). Builds run in a bounded pool; a
template that cannot be built on this machine (a base image nobody can provide, a build host that
does not answer) is *skipped* with the reason when `allow_skip` is set, and fails otherwise.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from boxsmith._internal.build.base_images import (
    ImageUnavailable,
    resolve_mirrors,
)
from boxsmith._internal.build.parity import (
    PARITY_OF_LABEL,
    PARITY_VERSION,
    SCRIPT_IN_IMAGE,
    Parity,
    ca_args,
    context_tar,
    parity_base,
)
from boxsmith._internal.build.record import host_ca_bundle
from boxsmith._internal.build.rendered import (
    BUILD_KEY_LABEL,
    TEMPLATE_LABEL,
    USER_LABEL,
    VERSION_LABEL,
    WORKDIR_LABEL,
    BuildUnit,
    image_ref,
    load_unit,
)
from boxsmith._internal.docker import buildenv
from boxsmith._internal.docker.client import BuildFailed, Engine
from boxsmith._internal.progress import Progress
from boxsmith._internal.render import DOCKERFILE
from boxsmith.config import Settings
from boxsmith.errors import BoxsmithError

__all__ = [
    "BUILD_KEY_LABEL",
    "PARITY_OF_LABEL",
    "PARITY_VERSION",
    "BuildResult",
    "BuildUnit",
    "Parity",
    "build_templates",
    "ca_args",
    "describe_failure",
    "host_ca_bundle",
    "image_ref",
    "load_unit",
    "parity_base",
    "probe_host",
]

_BUILD_DOCKERFILE = ".boxsmith.Dockerfile"


@dataclass(slots=True)
class BuildResult:
    """The outcome of one template's build.

    Attributes:
        status: `built`, `cached` (key matched its last good build), `failed` or `skipped`.
        reason: why it failed or was skipped ("" otherwise).
        notes: one-line remarks, e.g. that the base image is a local stand-in.
    """

    name: str
    version: str
    image: str
    status: str = "waiting"
    seconds: float = 0.0
    image_id: str = ""
    size: int = 0
    key: str = ""
    reason: str = ""
    step: str = ""
    log: str = ""
    log_file: Path | None = None
    hint: str = ""
    base_id: str = ""
    parity: str = ""
    parity_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Built or cached: an image to smoke-test exists."""
        return self.status in ("built", "cached")

    def to_json(self) -> dict[str, object]:
        """Plain mapping for `--json` output."""
        return {
            "name": self.name,
            "version": self.version,
            "image": self.image,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "image_id": self.image_id,
            "size": self.size,
            "build_key": self.key,
            "parity_base": self.parity,
            "reason": self.reason,
            "failed_step": self.step,
            "log": self.log,
            "notes": self.notes,
        }


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


def _files_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        executable = int(os.access(path, os.X_OK))
        digest.update(f"{rel}\0{executable}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Step:
    text: str
    origin: str  # "generated/x/1.0.0/e2b.Dockerfile:12" or "parity layer (...)"
    line: int = 0  # line in e2b.Dockerfile (0 for the parity layer)


def _composite(unit: BuildUnit, parity: str, ca: bool) -> list[_Step]:
    """The Dockerfile actually built: FROM the parity base, the template, then finalize."""
    name = f"{unit.display}/{DOCKERFILE}"
    steps: list[_Step] = []
    for statement in unit.statements:
        origin = f"{name}:{statement.line}"
        if statement.keyword == "FROM":
            rest = statement.rest.strip().split(maxsplit=1)
            stage = f" {rest[1]}" if len(rest) > 1 else ""
            steps.append(_Step(f"FROM {parity}{stage}", origin, statement.line))
            steps.extend(_Step(line, "parity layer (host CA)") for line in ca_args(ca))
        else:
            steps.append(_Step(f"{statement.keyword} {statement.args}", origin, statement.line))
    steps += [
        _Step("USER root", "parity layer (finalize)"),
        _Step(f"RUN sh {SCRIPT_IN_IMAGE} finalize", "parity layer (finalize)"),
        _Step(f"USER {unit.user}", "parity layer (finalize)"),
        _Step(f"WORKDIR {unit.workdir}", "parity layer (finalize)"),
    ]
    return steps


_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


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

    # -- base images -------------------------------------------------------------------------

    def parity_base(self, base: str) -> Parity:
        """The parity base for `base`, made once per run and per base image."""
        with self._base_lock:
            known = self._bases.get(base)
            if isinstance(known, BoxsmithError):
                raise known
            if known is not None:
                return known
            try:
                result = self._parity_base(base)
            except BoxsmithError as exc:
                self._bases[base] = exc
                raise
            self._bases[base] = result
            return result

    def _parity_base(self, base: str) -> Parity:
        return parity_base(
            self.engine,
            base,
            mirrors=resolve_mirrors(self.settings.mirrors),
            ca=self.ca,
            pull_timeout=self.pull_timeout,
            log=self.progress.note,
            on_line=self._cancellable,
        )

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
        start = time.monotonic()
        key_name = unit.ref
        try:
            self.progress.update(key_name, "base image", quiet=True)
            try:
                parity = self.parity_base(unit.base_image)
            except ImageUnavailable as exc:
                raise _Unbuildable(exc.message) from exc
            result.notes += parity.notes
            result.base_id, result.parity, result.parity_id = parity.base_id, parity.tag, parity.id
            for note in parity.notes:
                self.progress.note(f"build {key_name}: {note}")
            result.key = hashlib.sha256(
                "\0".join(
                    [
                        PARITY_VERSION,
                        buildenv.LABEL,  # images from before that label are built again (cached)
                        parity.id,
                        _files_digest(unit.folder),
                        unit.user,
                        unit.workdir,
                    ]
                ).encode()
            ).hexdigest()
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
            self._build(unit, result, parity.tag)
        except _Unbuildable as exc:
            result.status = "skipped" if self.allow_skip else "failed"
            result.reason = exc.reason
            result.hint = (
                "make it reachable (a base image: `boxsmith images ensure` or an entry in "
                "[tool.boxsmith.mirrors]), or pass --allow-skip to report it as skipped"
            )
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

    def _build_env(self, unit: BuildUnit, parity: str) -> str:
        """The `buildenv` label: the ENV names of the Dockerfile, the parity base's values."""
        names = [k for s in unit.statements if s.keyword == "ENV" for k, _ in s.pairs()]
        return buildenv.label_value(names, buildenv.config_env(self.engine.image_config(parity)))

    def _build(self, unit: BuildUnit, result: BuildResult, parity: str) -> None:
        steps = _composite(unit, parity, self.ca is not None)
        dockerfile = "\n".join(step.text for step in steps) + "\n"
        ignore = b""
        user_ignore = unit.folder / ".dockerignore"
        if user_ignore.is_file():
            ignore = user_ignore.read_bytes().rstrip(b"\n") + b"\n"
        ignore += f"{_BUILD_DOCKERFILE}\n.dockerignore\n".encode()
        context = context_tar(
            unit.folder, {_BUILD_DOCKERFILE: dockerfile.encode(), ".dockerignore": ignore}
        )
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{unit.template.name}-{unit.template.version}.build.log"
        result.log, result.log_file = self.settings.display(log_path), log_path
        key_name = unit.ref
        total = len(steps)
        self.progress.update(key_name, "building", completed=0, total=total)
        with log_path.open("w", encoding="utf-8") as log:

            def on_line(line: str) -> None:
                log.write(line + "\n")
                self._cancellable(line)
                match = _STEP_RE.match(line)
                if match:
                    number, of = int(match.group(1)), int(match.group(2))
                    origin = steps[number - 1].origin if number <= total else "labels"
                    text = match.group(3)
                    shown = text if len(text) <= 70 else text[:67] + "..."
                    self.progress.update(
                        key_name,
                        f"step {number}/{of} {shown}",
                        completed=number - 1,
                        total=of,
                        quiet=not origin.startswith(unit.display),
                    )

            try:
                image_id = self.engine.build(
                    context,
                    unit.image,
                    labels={
                        BUILD_KEY_LABEL: result.key,
                        TEMPLATE_LABEL: unit.template.name,
                        VERSION_LABEL: unit.template.version,
                        USER_LABEL: unit.user,
                        WORKDIR_LABEL: unit.workdir,
                        buildenv.LABEL: self._build_env(unit, parity),
                    },
                    dockerfile=_BUILD_DOCKERFILE,
                    on_line=on_line,
                )
            except BuildFailed as exc:
                match = _STEP_RE.match(exc.step)
                if match and int(match.group(1)) <= total:
                    step = steps[int(match.group(1)) - 1]
                    spec = _spec_position(unit, step.line) if step.line else ""
                    where = f"{spec} ({step.origin})" if spec else step.origin
                    exc.step = f"{where}: {step.text}"
                raise
        info = self.engine.image(unit.image)
        result.status, result.image_id = "built", image_id
        result.size = info.size if info else 0


def _spec_position(unit: BuildUnit, line: int) -> str:
    """`file:line:col` of the spec key behind line `line` of the unit's e2b.Dockerfile."""
    from boxsmith._internal.dockerfile.syntax import SourceMap
    from boxsmith._internal.render.folder import render_template

    try:
        rendered = render_template(unit.template)
        expected = rendered.file(DOCKERFILE).content.decode()
        actual = (unit.folder / DOCKERFILE).read_text(encoding="utf-8")
    except (BoxsmithError, OSError, UnicodeDecodeError):
        return ""
    instruction = SourceMap(expected, actual, rendered.instructions).instruction(line)
    if instruction is None or not instruction.source:
        return ""
    where = unit.template.position(*instruction.source)
    if where is None or where == unit.template.data.pos:
        return ""
    return f"{where.file}:{where.line}:{where.column}"


class _Unbuildable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
        progress.finish(unit.ref, _final(result))
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


def _final(result: BuildResult) -> str:
    if result.status == "built":
        return f"built in {result.seconds:.1f}s"
    if result.status == "cached":
        return "unchanged (cached)"
    return f"{result.status}: {result.reason.splitlines()[0] if result.reason else ''}"


def describe_failure(result: BuildResult, tail_lines: int = 15) -> str:
    """The failing instruction and the end of its log, for the error report."""
    if result.hint:
        return f"{result.name}:{result.version}: cannot build here: {result.reason}\n" + (
            f"  fix: {result.hint}"
        )
    lines = [f"{result.name}:{result.version}: build failed: {result.reason}"]
    if result.step:
        lines.append(f"  failing instruction: {result.step}")
    if result.log_file is not None:
        try:
            text = result.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            text = []
        starts = [n for n, line in enumerate(text) if line.startswith("Step ")]
        own = [
            line
            for line in text[starts[-1] + 1 if starts else 0 :]
            if line.strip() and not _NOISE.match(line)
        ][-tail_lines:]
        if own:
            lines.append(f"  its last output (full log: {result.log}):")
            lines += [f"    {line}" for line in own]
        else:
            lines.append(f"  it printed nothing (full log: {result.log})")
    return "\n".join(lines)


_NOISE = re.compile(r"^ ---> |^Removing intermediate container |^Successfully (built|tagged) ")
