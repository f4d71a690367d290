"""Smoke checks in sandboxes of published versions: `boxsmith smoke --target local|e2b`, and the
smoke-sandbox stage of a release.

For each version published to the target, a sandbox of it boots (`jobs` at once), its checks run
through the SDK (`SandboxTarget`), and it is killed. A pass records the version as verified
(`verified_at` on its publish record in generated/index.json; a release skips verified versions)
and, with `promote`, moves the channel tag to it (`publish/channels.py`). On Ctrl-C every running
sandbox is killed before KeyboardInterrupt goes on; one that cannot be killed is named in a
warning (it ends at its timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from boxsmith._internal.build.rendered import BuildUnit
from boxsmith._internal.progress import Progress
from boxsmith._internal.publish.channels import DEFAULT_CHANNEL, assign
from boxsmith._internal.publish.targets import PublishTarget, connect, live_builds
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index, mark_verified
from boxsmith._internal.smoke.report import SuiteResult
from boxsmith._internal.smoke.runner import CheckResult, run_checks
from boxsmith._internal.smoke.suites import check_counter
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings
from boxsmith.errors import UsageError

if TYPE_CHECKING:
    from e2b import Sandbox

__all__ = ["DEFAULT_JOBS", "SANDBOX_TIMEOUT", "published_records", "smoke_in_sandboxes"]

DEFAULT_JOBS = 4  # sandboxes at once on a target
SANDBOX_TIMEOUT = 900  # seconds a smoke sandbox lives at most, should nothing kill it


def published_records(
    settings: Settings, units: Sequence[BuildUnit], target: str
) -> dict[str, PublishRecord]:
    """The latest publish record on `target` of each unit's version that has one, by ref."""
    path = settings.generated_dir / INDEX_FILE
    index = load_index(path, settings.display(path))
    live = live_builds(settings, target)
    records: dict[str, PublishRecord] = {}
    for unit in units:
        entry = index.entry(unit.template.name, unit.template.version)
        own = entry.records(target, live) if entry else []
        if own:
            records[unit.ref] = own[-1]
    return records


def smoke_in_sandboxes(
    settings: Settings,
    units: Sequence[BuildUnit],
    target_name: str,
    *,
    err: TextIO,
    channel: str = DEFAULT_CHANNEL,
    promote: bool = True,
    jobs: int = DEFAULT_JOBS,
) -> list[SuiteResult]:
    """Boot a sandbox of each published version on the target (`jobs` at once), run its checks,
    kill it; on a pass, record the version as verified in the index and (with `promote`) move the
    `channel` tag to it. Results come in the order of `units`. A UsageError (exit 2) when a
    version is not published to the target.

    On Ctrl-C every running sandbox is killed before KeyboardInterrupt goes on."""
    records = published_records(settings, units, target_name)
    unpublished = [u for u in units if u.ref not in records]
    if unpublished:
        names = " ".join(u.template.name for u in unpublished)
        raise UsageError(
            f"not published to {target_name}: {', '.join(u.ref for u in unpublished)}",
            f"run `boxsmith publish --target {target_name} {names}` first",
        )
    target = connect(settings, target_name, err=err)
    notes: list[str] = []
    try:
        with Progress(err, "smoke") as progress:
            run = _SandboxRun(settings, target, progress, channel, promote, notes)
            futures = run.smoke_all(units, records, jobs)
    finally:  # also on Ctrl-C: a sandbox left running is worth a word
        for note in notes:
            err.write(f"warning: {note}\n")
    return [future.result() for future in futures]


@dataclass
class _SandboxRun:
    """What the sandbox smoke runs of one `smoke_in_sandboxes` share."""

    settings: Settings
    target: PublishTarget
    progress: Progress
    channel: str
    promote: bool
    notes: list[str]
    live: dict[str, tuple[str, Sandbox]] = field(default_factory=dict)  # ref -> (label, sandbox)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def smoke_all(
        self, units: Sequence[BuildUnit], records: dict[str, PublishRecord], jobs: int
    ) -> list[Future[SuiteResult]]:
        """Smoke `units` on a pool of `jobs` threads; the futures, all done, in `units` order."""
        pool = ThreadPoolExecutor(
            max_workers=min(jobs, len(units) or 1), thread_name_prefix="smoke"
        )
        futures: list[Future[SuiteResult]] = []
        try:
            futures = [pool.submit(self.smoke_one, u, records[u.ref]) for u in units]
            pending = set(futures)
            while pending:  # short waits, so that Ctrl-C reaches this thread
                _done, pending = wait(pending, timeout=0.5)
        except BaseException:
            for future in futures:
                future.cancel()
            self.kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
            if self.stop.is_set():
                self.kill_all()  # one that booted while the others were being killed
        return futures

    def kill_all(self) -> None:
        """Ctrl-C: kill every sandbox still running (the workers then stop at once)."""
        self.stop.set()
        with self.lock:
            running = list(self.live.items())
            self.live.clear()
        for key, (label, sandbox) in running:
            self.kill(key, label, sandbox)

    def kill(self, key: str, label: str, sandbox: Sandbox) -> None:
        """Kill `sandbox`; when that fails, say what was left (it ends at its timeout)."""
        try:
            sandbox.kill()
        except Exception as exc:  # the SDK's, the network's: the verdict stands, others still die
            self.notes.append(f"{key}: could not kill {label}: {exc} (it ends at its timeout)")

    def smoke_one(self, unit: BuildUnit, record: PublishRecord) -> SuiteResult:
        """Boot a sandbox of `unit`'s published version, run its checks, kill it."""
        key, target, progress = unit.ref, self.target, self.progress
        ref = f"{unit.template.name}:{version_tag(unit.template.version)}"
        start = time.monotonic()
        progress.add(key, f"booting a sandbox of {ref}", total=len(unit.template.spec.smoke) or 1)
        if self.stop.is_set():
            return SuiteResult(key, target=target.description, error="interrupted", stage="start")
        try:
            sandbox = self.boot(ref, key)
        except Exception as exc:  # the SDK's errors, auth, network: the suite's error, not a crash
            progress.finish(key, f"error: {exc}")
            return SuiteResult(
                key,
                target=target.description,
                seconds=time.monotonic() - start,
                error=f"cannot boot a sandbox of {ref} on {target.description}: {exc}",
                stage="start",
            )
        label = f"sandbox {sandbox.sandbox_id} ({ref}, {target.name})"
        checks = self.check(unit, label, sandbox)
        suite = SuiteResult(key, tuple(checks), target=label, seconds=time.monotonic() - start)
        status = f"{sum(c.status == 'passed' for c in checks)}/{len(checks)} checks passed"
        if suite.status == "passed":
            status += self.passed(unit, record)
        progress.finish(key, status)
        return suite

    def boot(self, ref: str, key: str) -> Sandbox:
        """A sandbox of the version tag `ref` on the target."""
        from e2b import Sandbox  # the SDK takes about 0.5 s to import: not for smoke --local

        return Sandbox.create(
            ref,
            timeout=SANDBOX_TIMEOUT,
            metadata={"boxsmith": "smoke", "template": key},
            **self.target.params,
        )

    def check(self, unit: BuildUnit, label: str, sandbox: Sandbox) -> list[CheckResult]:
        """Run `unit`'s checks in `sandbox`, then kill it (unless Ctrl-C's `kill_all` did)."""
        from boxsmith._internal.smoke.sandbox_target import SandboxTarget  # imports the SDK

        key = unit.ref
        with self.lock:
            self.live[key] = (label, sandbox)
        try:
            if self.stop.is_set():  # Ctrl-C came while this one booted
                raise KeyboardInterrupt
            return run_checks(
                SandboxTarget(sandbox, label, self.target.description),
                unit.template.spec.smoke,
                on_result=check_counter(self.progress, key),
            )
        finally:
            with self.lock:
                mine = self.live.pop(key, None)
            if mine is not None:
                self.kill(key, label, sandbox)

    def passed(self, unit: BuildUnit, record: PublishRecord) -> str:
        """Record `unit`'s version as verified and, with `promote`, move the channel to it; what
        moved, for the progress line."""
        path = self.settings.generated_dir / INDEX_FILE
        mark_verified(
            path,
            self.settings.display(path),
            unit.template,
            target=self.target.name,
            build_id=record.build_id,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if not self.promote:
            return ""
        name, version = unit.template.name, unit.template.version
        assign(self.target, name, version, self.channel)
        return f"; {name}:{self.channel} -> {version_tag(version)}"
