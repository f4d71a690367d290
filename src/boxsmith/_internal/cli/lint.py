"""`boxsmith lint`: hadolint and E2B rules on each template's Dockerfile (exit 1 on findings at or
above the failure threshold).

The report (text, JSON or SARIF) goes to stdout or to `output`; notes and the summary go to
stderr. Under GitHub Actions it also prints annotations and writes the job summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from boxsmith._internal.gha import in_github_actions, write_step_summary
from boxsmith._internal.lint import (
    DEFAULT_IGNORE,
    DEFAULT_THRESHOLD,
    Level,
    LintReport,
    lint_project,
)
from boxsmith._internal.lint.report import FORMATS, gha_annotations, step_summary
from boxsmith._internal.render.outputs import write_atomic
from boxsmith.config import Settings
from boxsmith.errors import UsageError


def _summary(report: LintReport) -> str:
    counts = ", ".join(f"{n} {level}" for level, n in report.counts().items() if n)
    tail = f"{len(report.ignored)} ignored, failure threshold {report.threshold}"
    head = f"{len(report.templates)} template(s) linted: {counts or 'no findings'} ({tail})"
    if report.failing:
        return f"lint: {head}; {len(report.failing)} at or above the threshold\n"
    return f"ok: {head}\n"


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    fmt: str = "text",
    threshold: str | Level = DEFAULT_THRESHOLD,
    output: str | None = None,
    ignore: Sequence[str] = (),
    default_ignore: bool = True,
) -> int:
    """Lint the selected templates and print the report; the exit code follows the threshold.

    Args:
        fmt: "text", "json" or "sarif".
        threshold: level name (or `Level`) at or above which findings fail the run.
        output: write the report to this file (a relative path: to the project root) instead of
            stdout.
        ignore: codes ignored for every template, on top of the defaults.
        default_ignore: False drops `DEFAULT_IGNORE`.
    """
    formatter = FORMATS.get(fmt)
    if formatter is None:
        raise UsageError(f"unknown lint format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    level = threshold if isinstance(threshold, Level) else Level.parse(threshold)
    codes = [*(DEFAULT_IGNORE if default_ignore else ()), *ignore]
    report = lint_project(settings, names, labels, threshold=level, ignore=codes)

    for t in report.templates:
        if t.edited:
            err.write(
                f"note: {t.dockerfile} differs from what its spec renders (edited by hand or "
                "stale); judged as it is; `boxsmith check` shows the difference\n"
            )
    rendered = formatter(report)
    if output:
        target = Path(output)
        path = target if target.is_absolute() else settings.root / target
        write_atomic(path, rendered.encode())
        err.write(f"wrote {settings.display(path)}\n")
    else:
        out.write(rendered)
    if in_github_actions():
        stream = out if fmt == "text" and not output else err
        for line in gha_annotations(report):
            stream.write(line + "\n")
        write_step_summary(step_summary(report))
    err.write(_summary(report))
    return report.exit_code
