"""The main job on a project's templates: validate, render, check, lint, build, smoke (local).

Stages run in order and the job stops at the first stage that fails before building (a spec
error, drift, lint findings). Every template that can build on this machine is built and
smoke-tested in a container; one that cannot (a base image nobody can provide, a build host that
does not answer) is reported as skipped with the reason, never as passed. The exit code is the
first failing stage's (README, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from boxsmith.build import BuildResult
from boxsmith.checks.report import SuiteResult
from boxsmith.commands import build as build_command
from boxsmith.commands import check as check_command
from boxsmith.commands import lint as lint_command
from boxsmith.commands import render as render_command
from boxsmith.commands import smoke as smoke_command
from boxsmith.commands import validate as validate_command
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, BoxsmithError

__all__ = ["run"]


def _stage(err: TextIO, step: Callable[[], int]) -> int:
    try:
        return step()
    except BoxsmithError as exc:
        err.write(exc.format() + "\n")
        return exc.exit_code


def run(settings: Settings, *, out: TextIO, err: TextIO, jobs: int = 2) -> int:
    """Run the main job; prints a per-stage and per-template summary to `out`."""
    stages: list[tuple[str, int]] = []
    early: list[tuple[str, Callable[[], int]]] = [
        ("validate", lambda: validate_command.run(settings, [], [], out=err, err=err)),
        (
            "render",
            lambda: render_command.run(settings, [], [], out=err, err=err, quiet=True),
        ),
        ("check", lambda: check_command.run(settings, [], [], out=out, err=err)),
        ("lint", lambda: lint_command.run(settings, [], [], out=out, err=err)),
    ]
    for name, step in early:
        err.write(f"\n== {name}\n")
        code = _stage(err, step)
        stages.append((name, code))
        if code:
            return _summary(out, stages, [], [])

    err.write("\n== build\n")
    builds: list[BuildResult] = []
    suites: list[SuiteResult] = []

    def build_stage() -> int:
        units = build_command.select_units(settings, [], [])
        builds.extend(build_command.execute(settings, units, err=err, jobs=jobs, allow_skip=True))
        return build_command.report(builds, out=out, err=err)

    stages.append(("build", _stage(err, build_stage)))

    err.write("\n== smoke (local containers)\n")

    def smoke_stage() -> int:
        units = {u.ref: u for u in build_command.select_units(settings, [], [])}
        ready = [units[f"{b.name}:{b.version}"] for b in builds if b.ok]
        skipped = [
            (
                units[f"{b.name}:{b.version}"],
                f"build {b.status}: {b.reason}" if b.reason else f"build {b.status}",
            )
            for b in builds
            if not b.ok
        ]
        suites.extend(smoke_command.execute(settings, ready, err=err, skipped=skipped))
        return smoke_command.report(settings, suites, out=out, err=err)

    stages.append(("smoke", _stage(err, smoke_stage)))
    return _summary(out, stages, builds, suites)


def _summary(
    out: TextIO,
    stages: list[tuple[str, int]],
    builds: list[BuildResult],
    suites: list[SuiteResult],
) -> int:
    out.write("\nsummary\n")
    for name, code in stages:
        out.write(f"  {name:<9} {'ok' if code == 0 else f'failed (exit {code})'}\n")
    if builds:
        smoke = {s.name: s for s in suites}
        out.write(f"\n  {'template':<30} {'build':<8} {'smoke':<8} reason\n")
        for b in builds:
            ref = f"{b.name}:{b.version}"
            suite = smoke.get(ref)
            verdict = suite.status if suite else "-"
            reason = b.reason or (suite.error or "" if suite else "")
            first = reason.splitlines()[0] if reason else ""
            out.write(f"  {ref:<30} {b.status:<8} {verdict:<8} {first}\n")
    failing = [code for _, code in stages if code]
    return failing[0] if failing else EXIT_OK
