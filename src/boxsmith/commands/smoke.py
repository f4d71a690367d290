"""`boxsmith smoke --local`: boot each built template in a container and run its smoke checks.

Exit 1 when a check fails or the template never gets ready (each failure names the check, what
was expected and what came), 3 when the engine fails or an image is not built. JUnit XML and
JSON reports are written every time (default: `.boxsmith/reports/smoke-local.{xml,json}`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from boxsmith.checks.report import SuiteResult, write_json, write_junit
from boxsmith.checks.runner import CheckResult, run_checks
from boxsmith.config import Settings
from boxsmith.engine import Engine, EngineError
from boxsmith.errors import EXIT_FINDINGS, EXIT_OK, UsageError
from boxsmith.progress import Progress
from boxsmith.smoke_local import DEFAULT_READY_TIMEOUT, start_sandbox
from boxsmith.targets import Target, connect, version_tag
from boxsmith.units import BuildUnit, select_units

__all__ = ["DEFAULT_CHANNEL", "execute", "execute_remote", "report", "run"]

DEFAULT_CHANNEL = "stable"


def _smoke_one(
    engine: Engine, unit: BuildUnit, progress: Progress, ready_timeout: float
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
    with Engine(err=None) as engine:
        missing = [u for u in units if engine.image(u.image) is None]
        if missing:
            names = " ".join(u.template.name for u in missing)
            raise UsageError(
                f"not built: {', '.join(u.image for u in missing)}",
                f"run `boxsmith build {names}` first",
            )
        with Progress(err, "smoke") as progress:
            for unit in units:
                suites.append(_smoke_one(engine, unit, progress, ready_timeout))
    return suites


def _published(settings: Settings, unit: BuildUnit, target: str) -> bool:
    from boxsmith.index import INDEX_FILE, load_index

    path = settings.generated_dir / INDEX_FILE
    entry = load_index(path, settings.display(path)).entry(
        unit.template.name, unit.template.version
    )
    return entry is not None and any(p.target == target for p in entry.publishes)


def _smoke_sandbox(
    unit: BuildUnit,
    target: Target,
    progress: Progress,
    *,
    channel: str,
    promote: bool,
    notes: list[str],
) -> SuiteResult:
    from e2b import Sandbox, Template

    from boxsmith.checks.sandbox import SandboxTarget

    key = unit.ref
    ref = f"{unit.template.name}:{version_tag(unit.template.version)}"
    start = time.monotonic()
    progress.add(key, f"booting a sandbox of {ref}", total=len(unit.template.spec.smoke) or 1)
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
    try:
        checks = run_checks(SandboxTarget(sandbox, label), unit.template.spec.smoke)
    finally:
        try:
            sandbox.kill()
        except Exception as exc:  # the checks' verdict stands; say what was left
            notes.append(f"{key}: could not kill {label}: {exc} (it ends at its timeout)")
    suite = SuiteResult(key, tuple(checks), target=label, seconds=time.monotonic() - start)
    passed = sum(c.status == "passed" for c in checks)
    status = f"{passed}/{len(checks)} checks passed"
    if suite.status == "passed" and promote:
        Template.assign_tags(ref, [channel], **target.params)
        status += f"; {unit.template.name}:{channel} -> {version_tag(unit.template.version)}"
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
) -> list[SuiteResult]:
    """Boot a sandbox of each published version on the target, run its checks, kill it; on a
    pass, move the `channel` tag to that version."""
    unpublished = [u for u in units if not _published(settings, u, target_name)]
    if unpublished:
        names = " ".join(u.template.name for u in unpublished)
        raise UsageError(
            f"not published to {target_name}: {', '.join(u.ref for u in unpublished)}",
            f"run `boxsmith publish --target {target_name} {names}` first",
        )
    target = connect(settings, target_name, err=err)
    notes: list[str] = []
    suites: list[SuiteResult] = []
    with Progress(err, "smoke") as progress:
        for unit in units:
            suites.append(
                _smoke_sandbox(
                    unit, target, progress, channel=channel, promote=promote, notes=notes
                )
            )
    for note in notes:
        err.write(f"warning: {note}\n")
    return suites


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
) -> int:
    """Smoke-test the selected templates: built images in local containers (no `target`), or
    published versions in sandboxes of `target` (`local` backend or `e2b`)."""
    units = select_units(settings, names, labels)
    if target is None:
        suites = execute(settings, units, err=err, ready_timeout=ready_timeout)
    else:
        suites = execute_remote(settings, units, target, err=err, channel=channel, promote=promote)
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
