"""PUBLISH: build each rendered version through the e2b SDK's Template API, record the result.

Before any network: generated/ must match the specs (`check_project`; drift: `boxsmith render`),
and a version already published to the target is `unchanged` (same content hash) or `refused`
(other content: a published version is immutable, bump it); a record of a build the local
backend no longer has (its data was deleted) does not count (`targets.live_builds`), and is
dropped when the version is published again. Each other version is built from
its folder with `Template.build_in_background` (its e2b.Dockerfile; start and ready command, cpu
and memory from its e2b.toml; named `<name>:<version>` plus the spec's `tags`) and followed with
`Template.get_build_status` from a log offset, `jobs` at a time, the log streamed to the progress
rows and `.boxsmith/logs/publish-<target>-<name>-<version>.log`. Transient failures (429, 5xx,
upload and connection errors) are retried with backoff (`RetryPolicy`; the SDK's own retries
are off, so each retry is decided and logged once, here); others fail that version, naming the
step. A finished build is recorded at once, under a lock: a `PublishRecord` appended to
generated/index.json first (the source of truth: `render` re-stamps e2b.toml from it), then
e2b.toml re-stamped with the primary record (`stamp_publish`: tomlkit, comments kept). The
content hash is unchanged, so `check` still passes.

A version is immutable, on the target too: before building, publish asks the target for the
version's tag (`Template.get_tags`). A tag on a ready build means the version is already there
(its record was lost): the record is restored, nothing is built. A tag on a running build, or
the build an interrupted publish started (remembered in `.boxsmith/publish/`, since E2B has no
way to cancel a build and tags only a finished one), is followed instead of starting another.
Every wait has a deadline: a version's publish, from the request to the finished build, may
take `BOXSMITH_PUBLISH_TIMEOUT` seconds (default 3600); past it the version fails, naming its
build, which goes on on the target and is waited for by the next publish. The retry counter
counts per step (`Retries`), however many status polls the step makes.
"""

from __future__ import annotations

import collections
import json
import math
import os
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

from boxsmith._internal.progress import Progress
from boxsmith._internal.publish.targets import PublishTarget, live_builds
from boxsmith._internal.render import DOCKERFILE, TOML
from boxsmith._internal.render.folder import Rendered, stamp_publish
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index
from boxsmith._internal.render.outputs import Change, write_atomic
from boxsmith._internal.render.pipeline import check_project
from boxsmith._internal.retry import Retries, RetryPolicy, http_status, is_transient
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = [
    "DEFAULT_TIMEOUT",
    "PUBLISH_RETRY",
    "TIMEOUT_SETTING",
    "PublishPlan",
    "PublishResult",
    "PublishUnit",
    "RetryPolicy",
    "is_transient",
    "plan_publish",
    "publish_timeout",
    "publish_units",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PublishUnit:
    """One rendered version to publish; the commands and sizes are its e2b.toml's."""

    template: Template
    folder: Path  # generated/<name>/<version>/, the build context
    name: str  # `<name>:<version tag>`, E2B's name of the build
    tags: tuple[str, ...]  # the spec's extra tags
    start_cmd: str | None
    ready_cmd: str | None
    cpu_count: int | None
    memory_mb: int | None
    content_hash: str

    @property
    def ref(self) -> str:
        """`name:version`."""
        return self.template.ref


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What happened to one version: `published`, `unchanged`, `failed` or `refused`."""

    name: str
    version: str
    target: str
    status: str
    seconds: float = 0.0
    template_id: str = ""
    build_id: str = ""
    tags: tuple[str, ...] = ()
    step: str = ""  # the failing step (failed), e.g. `build step 5 (RUN make)`
    error: str = ""
    hint: str = ""
    log: str = ""  # the build log file, as users see it
    tail: tuple[str, ...] = ()  # its last lines that say something (failed)
    retries: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain mapping for `--json` output."""
        data = asdict(self)
        data.update(seconds=round(self.seconds, 3), tags=list(self.tags), tail=list(self.tail))
        return data


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What the checks before any network found: versions to build, versions already settled
    (unchanged or refused), or drift (then nothing else)."""

    units: tuple[PublishUnit, ...] = ()
    settled: tuple[PublishResult, ...] = ()
    drift: tuple[Change, ...] = ()
    gone: tuple[str, ...] = ()  # refs recorded on the target whose build it no longer has


PUBLISH_RETRY = RetryPolicy(attempts=6, base_delay=1.0, max_delay=30.0)  # builds are long
TIMEOUT_SETTING = "BOXSMITH_PUBLISH_TIMEOUT"
DEFAULT_TIMEOUT = 3600.0  # seconds; real template builds take minutes, large ones tens of them


def publish_timeout(environ: dict[str, str] | None = None) -> float:
    """Seconds one version's publish may take (`BOXSMITH_PUBLISH_TIMEOUT`, default 3600).

    Raises:
        UsageError: a value that is not a number of seconds above 0.
    """
    raw = (os.environ if environ is None else environ).get(TIMEOUT_SETTING, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(
            f"{TIMEOUT_SETTING}={raw!r} is not a number of seconds above 0",
            f"set {TIMEOUT_SETTING} to the longest one version's publish may take, "
            f"e.g. {DEFAULT_TIMEOUT:g}",
        )
    return value


def plan_publish(
    settings: Settings, names: Sequence[str], labels: Sequence[str], target: str
) -> PublishPlan:
    """Check the selected versions before any network (see the module doc).

    Raises:
        SpecError: a published version whose spec would now render other content.
    """
    report = check_project(settings, names, labels)
    if report.drift:
        return PublishPlan(drift=report.drift)
    index = report.generation.index
    live = live_builds(settings, target)
    units: list[PublishUnit] = []
    settled: list[PublishResult] = []
    gone: list[str] = []
    for rendered in report.generation.rendered:
        entry = index.entry(rendered.template.name, rendered.template.version)
        assert entry is not None  # no drift: the index has every rendered version
        own = entry.records(target, live)
        if own:
            settled.append(_settled(rendered.template, target, own, entry.content_hash))
            continue
        if entry.records(target):
            gone.append(rendered.template.ref)
        units.append(_unit(settings, rendered, entry.content_hash))
    return PublishPlan(tuple(units), tuple(settled), gone=tuple(gone))


def _settled(
    template: Template, target: str, own: list[PublishRecord], content_hash: str
) -> PublishResult:
    """`unchanged` when every record of this target has the content hash, else `refused`."""
    last = own[-1]
    ids: dict[str, Any] = {
        "template_id": last.template_id,
        "build_id": last.build_id,
        "tags": tuple(last.tags),
    }
    if all(p.content_hash == content_hash for p in own):
        return PublishResult(template.name, template.version, target, "unchanged", **ids)
    return PublishResult(
        template.name,
        template.version,
        target,
        "refused",
        error=f"{template.ref} was published to {target} with content {last.content_hash}, "
        f"but it is now {content_hash}",
        hint="a published version is immutable: bump the version",
        **ids,
    )


def content_tag(content_hash: str) -> str:
    """The tag every build of this content also gets on the target: how publish later tells
    whether the build a version's tag points at holds the content it would publish."""
    return CONTENT_TAG_PREFIX + content_hash.removeprefix("sha256:")[:20]


def _unit(settings: Settings, rendered: Rendered, content_hash: str) -> PublishUnit:
    template = rendered.template
    toml = tomllib.loads(rendered.file(TOML).content.decode())
    tag = version_tag(template.version)
    return PublishUnit(
        template=template,
        folder=settings.generated_dir / rendered.folder,
        name=f"{template.name}:{tag}",
        tags=tuple(t for t in template.spec.tags if t != tag),
        start_cmd=_text(toml.get("start_cmd")),
        ready_cmd=_text(toml.get("ready_cmd")),
        cpu_count=_number(toml.get("cpu_count")),
        memory_mb=_number(toml.get("memory_mb")),
        content_hash=content_hash,
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Stopped(Exception):
    """Ctrl-C in the main thread: a worker stops at its next wait."""


CONTENT_TAG_PREFIX = "content-"


class _Failure(Exception):
    """A step failed for a reason that retrying does not fix."""

    def __init__(self, step: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.step, self.message, self.hint = step, message, hint


@dataclass
class _Run:
    """What the workers of one `publish_units` call share."""

    settings: Settings
    target: PublishTarget
    progress: Progress
    policy: RetryPolicy
    poll_interval: float
    timeout: float  # seconds per version (`publish_timeout`)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def live(self) -> frozenset[str] | None:
        """The builds the target still has (`live_builds`), read once per run: a record of
        this run belongs to the one version it records, so it never changes the answer."""
        return live_builds(self.settings, self.target.name)

    @property
    def params(self) -> dict[str, Any]:
        """The SDK parameters, with its own retries off (ours decide, and log each one)."""
        return {**self.target.params, "retries": 0}

    def redact(self, text: str) -> str:
        """`text` without the API key, whatever an error message carries."""
        key = str(self.target.params.get("api_key") or "")
        return text.replace(key, "***") if key else text


def publish_units(
    settings: Settings,
    units: Sequence[PublishUnit],
    target: PublishTarget,
    *,
    err: TextIO,
    jobs: int = 4,
    policy: RetryPolicy | None = None,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> list[PublishResult]:
    """Build and record `units` on `target`, `jobs` at a time; one result per unit, in order.

    `timeout` is each version's deadline in seconds (default: `publish_timeout()`). On Ctrl-C
    the waiting builds are cancelled, the running ones stop at their next wait (what the target
    already started goes on there; the next publish of that version waits for it) and
    KeyboardInterrupt is raised.

    Raises:
        UsageError: a bad `BOXSMITH_PUBLISH_TIMEOUT`.
    """
    if not units:
        return []
    seconds = publish_timeout() if timeout is None else timeout
    with Progress(err, "publish") as progress:
        run = _Run(settings, target, progress, policy or PUBLISH_RETRY, poll_interval, seconds)
        pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="publish")
        futures: list[Future[PublishResult]] = []
        try:
            futures = [pool.submit(_Job(run, unit).publish) for unit in units]
            pending = set(futures)
            while pending:  # short waits, so that Ctrl-C reaches this thread
                _done, pending = wait(pending, timeout=0.5)
        except BaseException:
            run.stop.set()
            for future in futures:
                future.cancel()
            raise
        finally:
            pool.shutdown(wait=True)
        return [future.result() for future in futures]


_PHASES = (  # build_in_background's own log lines -> the step that runs next
    ("Requesting build", "request the build"),
    ("Template created", "upload the build context"),
    ("All file uploads completed", "start the build"),
)


class _Job:
    """Publish one version: build it on the target, follow its log, record it."""

    def __init__(self, run: _Run, unit: PublishUnit) -> None:
        self.ctx, self.unit = run, unit
        self.step = "read the Dockerfile"
        self.retries = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=12)
        logs = run.settings.state_dir / "logs"
        name = f"publish-{run.target.name}-{unit.template.name}-{unit.template.version}.log"
        self.log_path = logs / name
        # the build this version's publish started, until it is recorded (module doc)
        self.marker = run.settings.state_dir / "publish" / f"{name.removesuffix('.log')}.json"
        self.sdk: Any = None  # the SDK's Template
        self.budgets: dict[str, Retries] = {}  # one retry budget per step, however many calls
        self.deadline = math.inf
        self.build_id = ""  # once the target named it
        self.state = ""  # the build's last status

    def publish(self) -> PublishResult:
        """The result; failures become a `failed` result naming the step."""
        start = time.monotonic()
        self.deadline = start + self.ctx.timeout
        self.ctx.progress.add(self.unit.ref, "preparing")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("w", encoding="utf-8") as self.log:
                self.sdk = _sdk_template(self.unit)
                info, ready = self._existing() or (None, False)
                if info is None:
                    info = self._retrying(self._request, "request")
                    self._remember(info)
                if not ready:
                    self.step = "follow the build"
                    self._follow(info)
                self.step = "record"
                record = self._record(info)
                self.marker.unlink(missing_ok=True)
        except _Stopped:
            raise KeyboardInterrupt from None
        except _Failure as exc:
            return self._failed(start, exc.step, exc.message, exc.hint)
        except Exception as exc:  # the SDK's and the network's errors: this version fails
            return self._failed(start, self.step, str(exc) or type(exc).__name__, _hint(exc))
        done = "record restored" if ready else "published"
        self.ctx.progress.finish(self.unit.ref, f"{done}: build {record.build_id}")
        return self._result(
            start,
            "published",
            template_id=record.template_id,
            build_id=record.build_id,
            tags=tuple(record.tags),
        )

    def _result(self, start: float, status: str, **values: Any) -> PublishResult:
        unit, run = self.unit, self.ctx
        return PublishResult(
            unit.template.name,
            unit.template.version,
            run.target.name,
            status,
            time.monotonic() - start,
            log=run.settings.display(self.log_path),
            retries=self.retries,
            **values,
        )

    def _failed(self, start: float, step: str, message: str, hint: str) -> PublishResult:
        self.ctx.progress.finish(self.unit.ref, f"failed at {step}")
        message = self.ctx.redact(message)
        return self._result(
            start, "failed", step=step, error=message, hint=hint, tail=(*self.tail,)
        )

    def _on_log(self, entry: Any) -> None:
        message = self.ctx.redact(str(getattr(entry, "message", entry)))
        level = str(getattr(entry, "level", "info"))
        self.log.write(f"{getattr(entry, 'timestamp', '')} [{level}] {message}\n")
        self.log.flush()
        for prefix, step in _PHASES:
            if message.startswith(prefix):
                self.step = step
        if level != "debug" and message.strip():
            self.tail.append(message)
            self.ctx.progress.update(self.unit.ref, message[:120])

    def _retrying(self, action: Callable[[], _T], budget: str) -> _T:
        """`action()`, retried on transient failures with backoff; each retry is logged.

        Every call with the same `budget` (a step: request, follow, lookup) shares its retries,
        so the counter counts on across the polls of one build."""
        retries = self.budgets.setdefault(budget, Retries(self.ctx.policy))
        while True:
            try:
                return action()
            except Exception as exc:
                delay = retries.take() if is_transient(exc) else None
                if delay is None:
                    raise
                reason = " ".join((str(exc) or type(exc).__name__).split())[:200]
                self.ctx.progress.note(
                    f"publish {self.unit.ref}: {self.step}: {self.ctx.redact(reason)}; "
                    f"retry {retries.used}/{retries.allowed} in {delay:.1f}s"
                )
                self.retries += 1
                self._wait(delay)

    def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, or less: _Stopped on Ctrl-C, _Failure once the deadline passed."""
        left = self.deadline - time.monotonic()
        if self.ctx.stop.wait(max(0.0, min(seconds, left))):
            raise _Stopped
        if time.monotonic() >= self.deadline:
            raise self._overdue()

    def _overdue(self) -> _Failure:
        run, limit = self.ctx, f"{self.ctx.timeout:g}"
        setting = f"the publish deadline ({TIMEOUT_SETTING}={limit} seconds) passed"
        if not self.build_id:
            return _Failure(
                self.step,
                f"no build started within {limit}s: {setting}",
                f"check that {run.target.name} answers; set {TIMEOUT_SETTING} higher to wait "
                "longer",
            )
        return _Failure(
            self.step,
            f"build {self.build_id} on {run.target.name} is still {self.state or 'running'} "
            f"after {limit}s: {setting}",
            f"the build goes on there and the next publish of {self.unit.ref} waits for it "
            f"instead of starting another; for builds this long set {TIMEOUT_SETTING} higher",
        )

    # -- what the target already has (module doc) ------------------------------------------

    def _existing(self) -> tuple[Any, bool] | None:
        """A build of this version on the target, and whether it is ready; None to build."""
        self.step = "look up the version on the target"
        run, ref = self.ctx, self.unit.ref
        found = [self._retrying(self._tagged, "lookup"), self._pending()]
        if found[1] is None:
            self._other_content_running()
        for info in (i for i in found if i is not None):
            self.build_id = str(info.build_id)
            self.state = self._retrying(partial(self._status_of, info), "lookup")
            if self.state == "ready":
                run.progress.note(
                    f"publish {ref}: already on {run.target.name} as build {self.build_id}, "
                    "record restored; bump the version if the content changed"
                )
                return info, True
            if self.state in ("waiting", "building"):
                run.progress.note(
                    f"publish {ref}: build {self.build_id} of this version already runs on "
                    f"{run.target.name} (an earlier publish was interrupted); waiting for it "
                    "instead of starting another"
                )
                return info, False
        self.build_id = self.state = ""
        self.marker.unlink(missing_ok=True)  # failed or unknown there: build anew
        return None

    def _tagged(self) -> Any:
        """The build the target's `<name>:<version>` tag points at (BuildInfo), or None."""
        from e2b import Template as SdkTemplate
        from e2b.template.types import BuildInfo

        name = self.unit.template.name
        try:
            tags = SdkTemplate.get_tags(name, **self.ctx.params)
        except Exception as exc:
            if http_status(exc) == 404:  # no template of that name: nothing published yet
                return None
            raise
        tag = version_tag(self.unit.template.version)
        build_id = next((str(t.build_id) for t in tags if t.tag == tag), None)
        if build_id is None:
            return None
        ours = content_tag(self.unit.content_hash)
        if not any(t.tag == ours and str(t.build_id) == build_id for t in tags):
            raise _Failure(
                self.step,
                f"{self.unit.ref} is on {self.ctx.target.name} already (build {build_id}), "
                f"but not with this content (it has no tag {ours})",
                "a published version is immutable: bump the version (or, if that build is "
                "yours, restore its record in generated/index.json from git)",
            )
        return BuildInfo(self._template_id(name), build_id, self.unit.name, name)

    def _template_id(self, name: str) -> str:
        """The target's id of template `name` (the SDK's alias lookup answers it)."""
        from e2b.api import encode_path_param, handle_api_exception
        from e2b.api.client.api.templates import get_templates_aliases_alias
        from e2b.api.client_sync import get_api_client
        from e2b.connection_config import ConnectionConfig
        from e2b.exceptions import TemplateException

        client = get_api_client(ConnectionConfig(**self.ctx.params))
        answer = get_templates_aliases_alias.sync_detailed(
            alias=encode_path_param(name), client=client
        )
        parsed = answer.parsed
        if answer.status_code >= 300 or parsed is None or not hasattr(parsed, "template_id"):
            raise handle_api_exception(answer, TemplateException)
        return str(parsed.template_id)

    def _status_of(self, info: Any) -> str:
        """The status of a build the target may or may not know ("unknown" when it does not)."""
        from e2b import Template as SdkTemplate

        try:
            status = SdkTemplate.get_build_status(info, logs_offset=0, **self.ctx.params)
        except Exception as exc:
            if http_status(exc) == 404:
                return "unknown"
            raise
        return str(getattr(status.status, "value", status.status))

    def _remember(self, info: Any) -> None:
        """Note the build this publish started, so an interrupted one is waited for later."""
        self.build_id = str(info.build_id)
        data = {
            "template_id": str(info.template_id),
            "build_id": self.build_id,
            "content_hash": self.unit.content_hash,
            "api_url": str(self.ctx.target.params.get("api_url") or ""),
        }
        write_atomic(self.marker, json.dumps(data, indent=2).encode() + b"\n")

    def _pending(self) -> Any:
        """The build an earlier publish of this content to this target started, or None."""
        from e2b.template.types import BuildInfo

        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
            same = (data["content_hash"], data["api_url"]) == (
                self.unit.content_hash,
                str(self.ctx.target.params.get("api_url") or ""),
            )
            info = BuildInfo(
                str(data["template_id"]), str(data["build_id"]), self.unit.name, self.unit.name
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none, or not ours to trust: a new build
        return info if same else None

    def _other_content_running(self) -> None:
        """_Failure while a build of other content of this version, which an interrupted
        publish started, still runs on the target: once it ends it takes the version's tag, so
        building this content now would race it for that tag."""
        from e2b.template.types import BuildInfo

        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
            info = BuildInfo(str(data["template_id"]), str(data["build_id"]), "", "")
            here = data["api_url"] == str(self.ctx.target.params.get("api_url") or "")
        except (OSError, ValueError, KeyError, TypeError):
            return
        if not here:
            return
        state = self._retrying(partial(self._status_of, info), "lookup")
        if state in ("waiting", "building"):
            raise _Failure(
                self.step,
                f"build {info.build_id} of other content of {self.unit.ref} still runs on "
                f"{self.ctx.target.name} (an earlier publish was interrupted)",
                "publish again once it has ended; if it ends ready, that content holds the "
                "version there, and this content needs a new version",
            )

    def _request(self) -> Any:
        """Request the build, upload the COPY sources, start it; retried as a whole."""
        from e2b import Template as SdkTemplate

        if self.ctx.stop.is_set():
            raise _Stopped
        self.step = "request the build"
        return SdkTemplate.build_in_background(
            self.sdk,
            self.unit.name,
            tags=[*self.unit.tags, content_tag(self.unit.content_hash)],
            cpu_count=self.unit.cpu_count,
            memory_mb=self.unit.memory_mb,
            on_build_logs=self._on_log,
            **self.ctx.params,
        )

    def _follow(self, info: Any) -> None:
        """Poll the status from the log offset until the build is ready; _Failure when not."""
        from e2b import Template as SdkTemplate

        offset, interval = 0, self.ctx.poll_interval
        while True:
            poll = partial(SdkTemplate.get_build_status, info, logs_offset=offset)
            status = self._retrying(partial(poll, **self.ctx.params), "follow")
            for entry in status.log_entries:
                self._on_log(entry)
            offset += len(status.log_entries)
            state = self.state = str(getattr(status.status, "value", status.status))
            if state in ("ready", "error") and status.log_entries:
                continue  # a page holds at most 100 entries: drain the log first
            if state == "ready":
                return
            if state == "error":
                self.marker.unlink(missing_ok=True)  # the next publish builds anew
                reason = status.reason
                message = str(reason.message) if reason is not None else "the build failed"
                raise _Failure(_step_name(self.sdk, reason.step if reason else None), message)
            # slower polls while nothing happens (long builds, hundreds at once), fast on news
            interval = self.ctx.poll_interval if status.log_entries else min(interval * 1.5, 5.0)
            self._wait(interval)

    def _record(self, info: Any) -> PublishRecord:
        """Append the record to generated/index.json, then re-stamp e2b.toml (module doc)."""
        unit, run = self.unit, self.ctx
        version = unit.template.version
        data: dict[str, Any] = {
            "target": run.target.name,
            "template_id": str(info.template_id),
            "build_id": str(info.build_id),
            "tags": [
                str(t)
                for t in (info.tags or [version_tag(version), *unit.tags])
                if not str(t).startswith(CONTENT_TAG_PREFIX)
            ],
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "content_hash": unit.content_hash,
        }
        if run.target.params.get("domain"):
            data["domain"] = str(run.target.params["domain"])
        record = PublishRecord.model_validate(data)
        path = run.settings.generated_dir / INDEX_FILE
        with run.lock:
            index = load_index(path, run.settings.display(path))
            entry = index.entry(unit.template.name, version)
            if entry is None or entry.content_hash != unit.content_hash:
                raise _Failure(
                    "record",
                    f"{run.settings.display(path)} changed while {unit.ref} was building; "
                    f"build {record.build_id} on {run.target.name} is not recorded",
                    "run `boxsmith render`, then publish again",
                )
            live = run.live
            if live is not None:  # forget records of builds the target no longer has
                entry.publishes = [
                    p for p in entry.publishes if p.target != record.target or p.build_id in live
                ]
            entry.publishes.append(record)
            write_atomic(path, index.dumps())
            primary = entry.primary_publish()
            assert primary is not None
            toml = unit.folder / TOML
            stamped = stamp_publish(toml.read_text(encoding="utf-8"), primary.model_dump())
            write_atomic(toml, stamped.encode())
        return record


def _hint(exc: Exception) -> str:
    from e2b import AuthenticationException

    if isinstance(exc, AuthenticationException):
        return "the target refused the API key: check E2B_API_KEY (and E2B_DOMAIN)"
    return ""


def _sdk_template(unit: PublishUnit) -> Any:
    """The SDK template of the rendered folder: its Dockerfile, start and ready command."""
    from e2b import Template as SdkTemplate

    dockerfile = (unit.folder / DOCKERFILE).read_text(encoding="utf-8")
    template: Any = SdkTemplate(file_context_path=str(unit.folder)).from_dockerfile(dockerfile)
    if unit.start_cmd:  # E2B's default ready command for a start command alone: sleep 20
        return template.set_start_cmd(unit.start_cmd, unit.ready_cmd or "sleep 20")
    if unit.ready_cmd:
        return template.set_ready_cmd(unit.ready_cmd)
    return template


def _step_name(template: Any, step: str | None) -> str:
    """`build step 5 (RUN make)`: E2B's reason.step counts the SDK's instructions from 1."""
    if not step:
        return "build"
    if not step.isdigit():
        return f"build step {step}"  # base, finalize
    # the SDK keeps its instruction list private: name the instruction when it is there
    items = getattr(getattr(template, "_template", None), "_instructions", None)
    item = items[int(step) - 1] if isinstance(items, list) and 0 < int(step) <= len(items) else None
    if not isinstance(item, dict):
        return f"build step {step}"
    kind = getattr(item.get("type"), "value", item.get("type"))
    args = " ".join(str(a) for a in item.get("args", []) if a)
    return f"build step {step} ({kind} {args})"
