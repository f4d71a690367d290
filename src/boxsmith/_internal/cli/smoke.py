"""`boxsmith smoke`: run each template's smoke checks in a local container (`--local`, the built
image) or in a sandbox of its published version (`--target local|e2b`, several at once).

A sandbox run that passes records the version as verified (`verified_at` on its publish record
in generated/index.json; `boxsmith release` skips verified versions) and moves the channel tag
(default `stable`) to it unless `--no-promote`. Exit 1 when a check fails or the template never
gets ready (each failure names the check, what was expected and what came), 2 when a version is
not built or not published, 3 when the engine fails. JUnit XML and JSON reports are written
every time (default: `.boxsmith/reports/smoke-<local|target>.{xml,json}`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from boxsmith._internal.build.rendered import BuildUnit, select_units
from boxsmith._internal.docker.boot import DEFAULT_READY_TIMEOUT, start_sandbox
from boxsmith._internal.docker.client import Engine, EngineError
from boxsmith._internal.lock import hold
from boxsmith._internal.progress import Progress
from boxsmith._internal.publish.targets import (
    PublishTarget,
    check_channel,
    connect,
    live_builds,
)
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index, mark_verified
from boxsmith._internal.smoke.report import SuiteResult, write_json, write_junit
from boxsmith._internal.smoke.runner import CheckResult, run_checks
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings
from boxsmith.errors import EXIT_FINDINGS, EXIT_OK, UsageError

__all__ = ["DEFAULT_CHANNEL", "DEFAULT_JOBS", "execute", "execute_remote", "report", "run"]

DEFAULT_CHANNEL = "stable"
DEFAULT_JOBS = 4  # sandboxes at once on a target


def _smoke_one(
    engine: Engine,
    unit: BuildUnit,
    progress: Progress,
    ready_timeout: float,
    lifetime: float | None,
) -> SuiteResult:
    key = unit.ref
    start = time.monotonic()
    progress.add(key, "starting", total=len(unit.template.spec.smoke) or 1)
    container = ""
    try:
        try:
            target, readiness = start_sandbox(
                engine,
                unit,
                ready_timeout=ready_timeout,
                lifetime=lifetime,
                on_status=lambda text: progress.update(key, text),
            )
        except EngineError as exc:
            progress.finish(key, f"error: {exc.message}")
            return SuiteResult(
                key,
                target=f"image {unit.image}",
                seconds=time.monotonic() - start,
                error=exc.message,
                stage="start",
            )
        container = target.container_id
        for note in readiness.notes:
            progress.note(f"smoke {key}: {note}")
        if not readiness.ready:
            progress.finish(key, f"not ready: {readiness.error}")
            return SuiteResult(
                key,
                target=target.description,
                seconds=time.monotonic() - start,
                error=readiness.error,
                stage="ready",
                output=readiness.start_log,
            )
        progress.update(key, f"ready in {readiness.seconds:.1f}s; running checks", completed=0)
        done: list[CheckResult] = []

        def on_result(result: CheckResult) -> None:
            done.append(result)
            progress.update(key, f"{result.status}: {result.name}", completed=len(done), quiet=True)

        checks = run_checks(target, unit.template.spec.smoke, on_result=on_result)
        failed = [c for c in checks if c.status != "passed"]
        progress.finish(
            key,
            f"{len(checks) - len(failed)}/{len(checks)} checks passed"
            + (f" (ready in {readiness.seconds:.1f}s)" if readiness.attempts > 1 else ""),
        )
        return SuiteResult(
            key, tuple(checks), target=target.description, seconds=time.monotonic() - start
        )
    finally:
        if container:
            engine.remove_container(container)


def execute(
    settings: Settings,
    units: Sequence[BuildUnit],
    *,
    err: TextIO,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    skipped: Sequence[tuple[BuildUnit, str]] = (),
) -> list[SuiteResult]:
    """Smoke-test `units` one after the other; `skipped` are reported with their reason."""
    suites = [SuiteResult(u.ref, skipped=reason, stage="build") for u, reason in skipped]
    if not units:
        return suites
    with Engine(err=None, project=settings.project_id) as engine:
        missing = [u for u in units if engine.image(u.image) is None]
        if missing:
            names = " ".join(u.template.name for u in missing)
            raise UsageError(
                f"not built: {', '.join(u.image for u in missing)}",
                f"run `boxsmith build {names}` first",
            )
        with Progress(err, "smoke") as progress:
            for unit in units:
                suites.append(
                    _smoke_one(engine, unit, progress, ready_timeout, settings.container_lifetime)
                )
    return suites


def _records(
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


@dataclass
class _Remote:
    """What the sandbox smoke runs of one `execute_remote` share."""

    settings: Settings
    target: PublishTarget
    progress: Progress
    channel: str
    promote: bool
    notes: list[str] = field(default_factory=list)
    live: dict[str, Any] = field(default_factory=dict)  # unit ref -> its running sandbox
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kill_all(self) -> None:
        """Ctrl-C: kill every sandbox still running (the workers then stop at once)."""
        self.stop.set()
        with self.lock:
            sandboxes = list(self.live.values())
        for sandbox in sandboxes:
            with contextlib.suppress(Exception):
                sandbox.kill()


def _smoke_sandbox(run: _Remote, unit: BuildUnit, record: PublishRecord) -> SuiteResult:
    from e2b import Sandbox, Template

    from boxsmith._internal.smoke.sandbox_target import SandboxTarget

    key, target, progress = unit.ref, run.target, run.progress
    ref = f"{unit.template.name}:{version_tag(unit.template.version)}"
    start = time.monotonic()
    progress.add(key, f"booting a sandbox of {ref}", total=len(unit.template.spec.smoke) or 1)
    if run.stop.is_set():
        return SuiteResult(key, target=target.description, error="interrupted", stage="start")
    try:
        sandbox = Sandbox.create(
            ref, timeout=900, metadata={"boxsmith": "smoke", "template": key}, **target.params
        )
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
    with run.lock:
        run.live[key] = sandbox
    try:
        if run.stop.is_set():  # Ctrl-C came while this one booted
            raise KeyboardInterrupt
        done: list[CheckResult] = []

        def on_result(result: CheckResult) -> None:
            done.append(result)
            progress.update(key, f"{result.status}: {result.name}", completed=len(done), quiet=True)

        checks = run_checks(
            SandboxTarget(sandbox, label, target.description),
            unit.template.spec.smoke,
            on_result=on_result,
        )
    finally:
        with run.lock:
            run.live.pop(key, None)
        try:
            sandbox.kill()
        except Exception as exc:  # the checks' verdict stands; say what was left
            run.notes.append(f"{key}: could not kill {label}: {exc} (it ends at its timeout)")
    suite = SuiteResult(key, tuple(checks), target=label, seconds=time.monotonic() - start)
    passed = sum(c.status == "passed" for c in checks)
    status = f"{passed}/{len(checks)} checks passed"
    if suite.status == "passed":
        path = run.settings.generated_dir / INDEX_FILE
        mark_verified(
            path,
            run.settings.display(path),
            unit.template,
            target=target.name,
            build_id=record.build_id,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if run.promote:
            Template.assign_tags(ref, [run.channel], **target.params)
            status += f"; {unit.template.name}:{run.channel} -> {ref.split(':', 1)[1]}"
    progress.finish(key, status)
    return suite


def execute_remote(
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
    `channel` tag to it. Results come in the order of `units`.

    On Ctrl-C every running sandbox is killed before KeyboardInterrupt goes on."""
    records = _records(settings, units, target_name)
    unpublished = [u for u in units if u.ref not in records]
    if unpublished:
        names = " ".join(u.template.name for u in unpublished)
        raise UsageError(
            f"not published to {target_name}: {', '.join(u.ref for u in unpublished)}",
            f"run `boxsmith publish --target {target_name} {names}` first",
        )
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}", "use e.g. -j 4")
    target = connect(settings, target_name, err=err)
    with Progress(err, "smoke") as progress:
        run = _Remote(settings, target, progress, channel, promote)
        workers = min(jobs, len(units) or 1)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smoke")
        futures: list[Future[SuiteResult]] = []
        try:
            futures = [pool.submit(_smoke_sandbox, run, u, records[u.ref]) for u in units]
            pending = set(futures)
            while pending:  # short waits, so that Ctrl-C reaches this thread
                _done, pending = wait(pending, timeout=0.5)
        except BaseException:
            for future in futures:
                future.cancel()
            run.kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
            if run.stop.is_set():
                run.kill_all()  # one that booted while the others were being killed
    for note in run.notes:
        err.write(f"warning: {note}\n")
    return [future.result() for future in futures]


def _describe(suite: SuiteResult) -> list[str]:
    lines: list[str] = []
    if suite.error is not None:
        text = f"{suite.name}: {suite.stage}: {suite.error}"
        if suite.output:
            text += "\n  start_cmd output (last lines):\n" + "\n".join(
                f"    {line}" for line in suite.output.splitlines()
            )
        lines.append(text)
    for check in suite.checks:
        if check.status != "passed":
            lines.append(
                f"{suite.name}: check {check.name!r} {check.status}: expected {check.expected}; "
                f"got {check.actual}"
            )
    return lines


def report(
    settings: Settings,
    suites: Sequence[SuiteResult],
    *,
    out: TextIO,
    err: TextIO,
    junit: str | None = None,
    json_report: str | None = None,
    as_json: bool = False,
    prefix: str = "smoke-local",
) -> int:
    """Write the reports, print failures and a summary; exit 1 when anything failed."""
    reports = settings.state_dir / "reports"
    junit_path = _path(settings, junit) if junit else reports / f"{prefix}.xml"
    json_path = _path(settings, json_report) if json_report else reports / f"{prefix}.json"
    write_junit(suites, junit_path)
    write_json(suites, json_path)
    problems = [line for suite in suites for line in _describe(suite)]
    for line in problems:
        err.write(f"error: {line}\n")
    if as_json:
        json.dump({"suites": [s.to_json() for s in suites]}, out, indent=2)
        out.write("\n")
    else:
        for suite in suites:
            checks = f"{sum(c.status == 'passed' for c in suite.checks)}/{len(suite.checks)}"
            message = suite.error or suite.skipped or ""
            why = f"  {message.splitlines()[0]}" if message else ""
            head = f"{suite.status:<8} {suite.name:<32} checks {checks:<6}"
            out.write(f"{head} {suite.seconds:6.1f}s{why}\n")
    bad = [s for s in suites if s.status in ("failed", "error")]
    passed = sum(s.status == "passed" for s in suites)
    skipped = sum(s.status == "skipped" for s in suites)
    err.write(
        f"{'smoke' if bad else 'ok'}: {len(suites)} template(s): {passed} passed, "
        f"{len(bad)} failed, {skipped} skipped; reports: {settings.display(junit_path)}, "
        f"{settings.display(json_path)}\n"
    )
    return EXIT_FINDINGS if bad else EXIT_OK


def _path(settings: Settings, raw: str) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else settings.root / path


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    junit: str | None = None,
    json_report: str | None = None,
    as_json: bool = False,
    target: str | None = None,
    channel: str = DEFAULT_CHANNEL,
    promote: bool = True,
    jobs: int = DEFAULT_JOBS,
) -> int:
    """Smoke-test the selected templates: built images in local containers (no `target`), or
    published versions in sandboxes of `target` (`local` backend or `e2b`). A sandbox run
    records its passes, so it holds the project lock (`boxsmith._internal.lock`); a local one does
    not."""
    if target is not None and promote:
        check_channel(channel)
    units = select_units(settings, names, labels)
    if target is None:
        suites = execute(settings, units, err=err, ready_timeout=ready_timeout)
    else:
        with hold(settings, "smoke", err=err):
            suites = execute_remote(
                settings, units, target, err=err, channel=channel, promote=promote, jobs=jobs
            )
    return report(
        settings,
        suites,
        out=out,
        err=err,
        junit=junit,
        json_report=json_report,
        as_json=as_json,
        prefix="smoke-local" if target is None else f"smoke-{target}",
    )
