"""One version's publish: find what the target has, request the build, follow it, record it.

A version is immutable, on the target too: before building, publish asks the target for the
version's tag (`Template.get_tags`). A tag on a ready build of this content means the version is
already there (its record was lost): the record is restored, nothing is built. A tag on a running
build, or the build an interrupted publish started (`records.read_pending`), is followed instead of
starting another; a tag on a build of other content refuses the version (`refused`: the version
must be bumped, or the content put back; `boxsmith publish` exits 2). Otherwise the
version is built from its folder with `Template.build_in_background` (its e2b.Dockerfile; start and
ready command, cpu and memory from its e2b.toml; named `<name>:<version>` plus the spec's `tags` and
the content tag) and followed with `Template.get_build_status` from a log offset, the log streamed
to the progress rows and `.boxsmith/logs/publish-<target>-<name>-<version>.log`.

Transient failures (429, 5xx, upload and connection errors) are retried with backoff
(`RetryPolicy`); the retry counter counts per step (`Retries`), however many status polls the
step makes. Other failures fail the version, naming the step. Every wait has the version's
deadline (`limits.publish_timeout`): past it the version fails, naming its build, which goes
on on the target and is waited for by the next publish.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, TypeVar

from e2b.template.types import BuildInfo

from boxsmith._internal.progress import Progress
from boxsmith._internal.publish.limits import TIMEOUT_SETTING
from boxsmith._internal.publish.plan import PublishResult, PublishUnit
from boxsmith._internal.publish.records import (
    append_record,
    content_tag,
    new_record,
    pending_path,
    read_pending,
    remember_build,
)
from boxsmith._internal.publish.sdk import TemplateApi, hint, state_of, step_name
from boxsmith._internal.publish.targets import PublishTarget, live_builds
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord
from boxsmith._internal.retry import Retries, RetryPolicy, is_transient
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings

__all__ = ["Job", "Run"]

_T = TypeVar("_T")

_PHASES = (  # build_in_background's own log lines -> the step that runs next
    ("Requesting build", "request the build"),
    ("Template created", "upload the build context"),
    ("All file uploads completed", "start the build"),
)


class _Stopped(Exception):
    """Ctrl-C in the main thread: a worker stops at its next wait."""


class _Failure(Exception):
    """A step failed for a reason that retrying does not fix."""

    def __init__(self, step: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.step, self.message, self.hint = step, message, hint


class _Refused(_Failure):
    """The target holds this version with other content: a usage error, not a failure."""


@dataclass
class Run:
    """What the jobs of one `publish_units` call share."""

    settings: Settings
    target: PublishTarget
    progress: Progress
    policy: RetryPolicy
    poll_interval: float
    timeout: float  # seconds per version (`publish_timeout`)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    api: TemplateApi = field(init=False)  # the target's template API

    def __post_init__(self) -> None:
        self.api = TemplateApi(self.target.params)

    @cached_property
    def live(self) -> frozenset[str] | None:
        """The builds the target still has (`live_builds`), read once per run: a record of
        this run belongs to the one version it records, so it never changes the answer."""
        return live_builds(self.settings, self.target.name)

    @property
    def api_url(self) -> str:
        """The target's API address, as the marker of a build in flight keeps it."""
        return str(self.target.params.get("api_url") or "")

    def redact(self, text: str) -> str:
        """`text` without the API key, whatever an error message carries."""
        key = str(self.target.params.get("api_key") or "")
        return text.replace(key, "***") if key else text


class Job:
    """Publish one version: build it on the target, follow its log, record it."""

    def __init__(self, run: Run, unit: PublishUnit) -> None:
        self.ctx, self.unit = run, unit
        self.step = "read the Dockerfile"
        self.retries = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=12)
        name = f"publish-{run.target.name}-{unit.template.name}-{unit.template.version}.log"
        self.log_path = run.settings.state_dir / "logs" / name
        # the build this version's publish started, until it is recorded (records module doc)
        self.marker = pending_path(run.settings, run.target.name, unit.template)
        self.sdk: Any = None  # the SDK's Template
        self.budgets: dict[str, Retries] = {}  # one retry budget per step, however many calls
        self.deadline = math.inf
        self.build_id = ""  # once the target named it
        self.state = ""  # the build's last status

    def publish(self) -> PublishResult:
        """The result; failures become a `failed` result naming the step, a version the target
        holds with other content a `refused` one.

        Raises:
            KeyboardInterrupt: the run was stopped (Ctrl-C) while this version waited.
        """
        start = time.monotonic()
        self.deadline = start + self.ctx.timeout
        self.ctx.progress.add(self.unit.ref, "preparing")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("w", encoding="utf-8") as self.log:
                record, ready = self._steps()
        except _Stopped:
            raise KeyboardInterrupt from None
        except _Refused as exc:
            self.ctx.progress.finish(self.unit.ref, "refused")
            return self._result(
                start, "refused", build_id=self.build_id, error=exc.message, hint=exc.hint
            )
        except _Failure as exc:
            return self._failed(start, exc.step, exc.message, exc.hint)
        except Exception as exc:  # the SDK's and the network's errors: this version fails
            return self._failed(start, self.step, str(exc) or type(exc).__name__, hint(exc))
        done = "record restored" if ready else "published"
        self.ctx.progress.finish(self.unit.ref, f"{done}: build {record.build_id}")
        return self._result(
            start,
            "published",
            template_id=record.template_id,
            build_id=record.build_id,
            tags=tuple(record.tags),
        )

    def _steps(self) -> tuple[PublishRecord, bool]:
        """The record, and whether the target had the build already (restored, not built)."""
        self.sdk = self.ctx.api.template(self.unit)
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
        return record, ready

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
        so the counter counts on across the polls of one build.
        """
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

    def _existing(self) -> tuple[BuildInfo, bool] | None:
        """A build of this version on the target, and whether it is ready; None to build."""
        self.step = "look up the version on the target"
        run, ref = self.ctx, self.unit.ref
        found = [self._retrying(self._tagged, "lookup"), self._pending()]
        if found[1] is None:
            self._other_content_running()
        for info in (i for i in found if i is not None):
            self.build_id = str(info.build_id)
            self.state = self._retrying(partial(run.api.state, info), "lookup")
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

    def _tagged(self) -> BuildInfo | None:
        """The build the target's `<name>:<version>` tag points at, or None."""
        name, api = self.unit.template.name, self.ctx.api
        tags = api.tags(name)
        if tags is None:
            return None
        tag = version_tag(self.unit.template.version)
        build_id = next((build for t, build in tags if t == tag), None)
        if build_id is None:
            return None
        ours = content_tag(self.unit.content_hash)
        if (ours, build_id) not in tags:
            self.build_id = build_id
            raise _Refused(
                self.step,
                f"{self.unit.ref} is on {self.ctx.target.name} already (build {build_id}), "
                f"but not with this content (that build has no tag {ours}): a published "
                "version is immutable",
                f"bump the version in {self.unit.template.spec_file}, `boxsmith render` and "
                "publish again (or put back the spec that build was made from)",
            )
        return BuildInfo(api.template_id(name), build_id, self.unit.name, name)

    def _pending(self) -> BuildInfo | None:
        """The build an earlier publish of this content to this target started, or None."""
        pending = read_pending(self.marker)
        if pending is None or (pending.content_hash, pending.api_url) != (
            self.unit.content_hash,
            self.ctx.api_url,
        ):
            return None  # none, or not ours to trust: a new build
        return BuildInfo(pending.template_id, pending.build_id, self.unit.name, self.unit.name)

    def _other_content_running(self) -> None:
        """_Failure while a build of other content of this version, which an interrupted
        publish started, still runs on the target: once it ends it takes the version's tag, so
        building this content now would race it for that tag."""
        pending = read_pending(self.marker)
        if pending is None or pending.api_url != self.ctx.api_url:
            return
        info = BuildInfo(pending.template_id, pending.build_id, "", "")
        state = self._retrying(partial(self.ctx.api.state, info), "lookup")
        if state in ("waiting", "building"):
            raise _Failure(
                self.step,
                f"build {info.build_id} of other content of {self.unit.ref} still runs on "
                f"{self.ctx.target.name} (an earlier publish was interrupted)",
                "publish again once it has ended; if it ends ready, that content holds the "
                "version there, and this content needs a new version",
            )

    # -- building -----------------------------------------------------------------------------

    def _request(self) -> BuildInfo:
        """Request the build, upload the COPY sources, start it; retried as a whole."""
        if self.ctx.stop.is_set():
            raise _Stopped
        self.step = "request the build"
        tags = [*self.unit.tags, content_tag(self.unit.content_hash)]
        return self.ctx.api.request(self.sdk, self.unit, tags, self._on_log)

    def _remember(self, info: BuildInfo) -> None:
        """Note the build this publish started, so an interrupted one is waited for later."""
        self.build_id = str(info.build_id)
        unit = self.unit
        remember_build(
            self.marker, str(info.template_id), self.build_id, unit.content_hash, self.ctx.api_url
        )

    def _follow(self, info: BuildInfo) -> None:
        """Poll the status from the log offset until the build is ready; _Failure when not."""
        offset, interval = 0, self.ctx.poll_interval
        while True:
            status = self._retrying(partial(self.ctx.api.status, info, offset), "follow")
            for entry in status.log_entries:
                self._on_log(entry)
            offset += len(status.log_entries)
            state = self.state = state_of(status)
            if state in ("ready", "error") and status.log_entries:
                continue  # a page holds at most 100 entries: drain the log first
            if state == "ready":
                return
            if state == "error":
                self.marker.unlink(missing_ok=True)  # the next publish builds anew
                reason = status.reason
                message = str(reason.message) if reason is not None else "the build failed"
                raise _Failure(step_name(self.sdk, reason.step if reason else None), message)
            # slower polls while nothing happens (long builds, hundreds at once), fast on news
            interval = self.ctx.poll_interval if status.log_entries else min(interval * 1.5, 5.0)
            self._wait(interval)

    def _record(self, info: BuildInfo) -> PublishRecord:
        """Append the record to generated/index.json, then re-stamp e2b.toml (records)."""
        unit, run = self.unit, self.ctx
        template_id, build_id = str(info.template_id), str(info.build_id)
        record = new_record(run.target, unit, template_id, build_id, info.tags)
        with run.lock:
            if not append_record(run.settings, unit, record, run.live):
                path = run.settings.display(run.settings.generated_dir / INDEX_FILE)
                raise _Failure(
                    "record",
                    f"{path} changed while {unit.ref} was building; "
                    f"build {record.build_id} on {run.target.name} is not recorded",
                    "run `boxsmith render`, then publish again",
                )
        return record
