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
from boxsmith.units import BuildUnit, select_units

__all__ = ["execute", "report", "run"]


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
) -> int:
    """Smoke-test the selected, built templates in local containers."""
    units = select_units(settings, names, labels)
    suites = execute(settings, units, err=err, ready_timeout=ready_timeout)
    return report(
        settings, suites, out=out, err=err, junit=junit, json_report=json_report, as_json=as_json
    )
