"""What the two smoke runs (`container_run`, `sandbox_run`) share: a suite's progress line while
its checks run, and at the end the report files (JUnit XML, JSON, page checks' screenshots), each
failure and a summary.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from boxsmith._internal.history import record_smoke
from boxsmith._internal.progress import Progress
from boxsmith._internal.render.outputs import write_atomic
from boxsmith._internal.smoke.report import SuiteResult, write_json, write_junit
from boxsmith._internal.smoke.runner import CheckResult
from boxsmith.config import Settings
from boxsmith.errors import EXIT_FINDINGS, EXIT_OK

__all__ = ["check_counter", "report_suites", "save_screenshots"]


def check_counter(progress: Progress, key: str) -> Callable[[CheckResult], None]:
    """An `on_result` for `run_checks` that shows each finished check on `key`'s progress line."""
    done: list[CheckResult] = []

    def on_result(result: CheckResult) -> None:
        done.append(result)
        progress.update(key, f"{result.status}: {result.name}", completed=len(done), quiet=True)

    return on_result


def report_suites(
    settings: Settings,
    suites: Sequence[SuiteResult],
    *,
    out: TextIO,
    err: TextIO,
    junit: str | None = None,
    json_report: str | None = None,
    as_json: bool = False,
    prefix: str,
) -> int:
    """Write the reports (default `.boxsmith/reports/<prefix>.{xml,json}`, the JSON one with
    the time it finished), print failures (`err`), one line per suite or `as_json` (`out`) and
    a summary (`err`); exit 1 when anything failed.

    `prefix` names the run's kind and target (`smoke-container`, `smoke-local`, `smoke-e2b`,
    `release-<target>`), so the reports of one run never overwrite another's.
    """
    reports = settings.state_dir / "reports"
    junit_path = _path(settings, junit) if junit else reports / f"{prefix}.xml"
    json_path = _path(settings, json_report) if json_report else reports / f"{prefix}.json"
    suites = save_screenshots(settings, suites, json_path.parent, prefix)
    record_smoke(settings, suites, run=prefix)  # the catalog site's results over time
    write_junit(suites, junit_path)
    write_json(suites, json_path, finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
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


def save_screenshots(
    settings: Settings, suites: Sequence[SuiteResult], folder: Path, prefix: str
) -> list[SuiteResult]:
    """Write each page check's screenshot to `folder` as
    `<prefix>-<template>-<version>-<check>.png`; the suites with each check's `screenshot` path
    set (as `settings.display` shows it) and the PNG bytes let go."""
    saved: list[SuiteResult] = []
    taken: set[str] = set()  # across suites: two long names may slug alike
    for suite in suites:
        checks: list[CheckResult] = []
        for check in suite.checks:
            if check.png is None:
                checks.append(check)
                continue
            name = _unique(_slug(f"{prefix}-{suite.name}-{check.name}"), taken)
            path = folder / f"{name}.png"
            write_atomic(str(path), check.png)
            checks.append(dataclasses.replace(check, png=None, screenshot=settings.display(path)))
        saved.append(dataclasses.replace(suite, checks=tuple(checks)))
    return saved


def _slug(text: str) -> str:
    """A file name part: letters, digits, dots, dashes and underscores (`app:1.0.0` ->
    `app-1.0.0`), at most 120 characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:120] or "check"


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate)
    return candidate


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


def _path(settings: Settings, raw: str) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else settings.root / path
