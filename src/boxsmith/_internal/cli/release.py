"""`boxsmith release [NAME...] [--target local|e2b]`: release the templates that changed
(`boxsmith._internal.release.stages` runs the stages and says what "changed" means).

The order, built here (the default): render, check, lint, build, smoke-container (each new
version booted in a local container, as `boxsmith smoke --local`), publish only the versions
whose container smoke passed, smoke-sandbox (a sandbox of each published version on the target)
and promote the channel. A version whose checks fail here is never published: its row names the
failing check, and the release exits 1. `--no-build` leaves the proof build on the local engine
out (the target builds anyway; E2B's remote builds scale where one machine does not), and with
it the container smoke: render, check, lint, publish, smoke-sandbox and promote, so a version
whose checks fail is published but not promoted. `--allow-skip` reports templates that cannot
build on this machine as skipped instead of failed, not smoked and not published (the main job
uses it). Every extra the run needs is asked for at once, before the first stage (exit 2).
Exit code: the first failing stage's (README, "Exit codes"). Progress and each
stage's report go to stderr; the release summary (or `--json`) to stdout; smoke reports to
`.boxsmith/reports/release-container.*` (container) and `release-<target>.*` (sandbox).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.cli import build, check, lint, publish, render
from boxsmith._internal.cli.options import at_least_one, channel_tag, positive_seconds
from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT
from boxsmith._internal.extras import TARGET_EXTRAS, check_extras, require
from boxsmith._internal.gha import in_github_actions, write_step_summary
from boxsmith._internal.lint.hadolint import find_hadolint
from boxsmith._internal.lock import hold
from boxsmith._internal.publish.targets import TARGETS
from boxsmith._internal.release.commands import Commands
from boxsmith._internal.release.report import Release, counts, markdown, summary
from boxsmith._internal.release.stages import release_templates
from boxsmith._internal.spec.catalog import load_catalog
from boxsmith.config import Settings
from boxsmith.errors import BoxsmithError, UsageError

__all__ = ["run"]

COMMANDS = Commands(
    render=functools.partial(render.run, quiet=True),
    check=check.run,
    lint=lint.run,
    build=build.execute,
    build_report=build.report,
    publish=publish.run,
)


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    target: str = "local",
    channel: str = "stable",
    jobs: int = 4,
    build_jobs: int = 2,
    build: bool = True,
    allow_skip: bool = False,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    as_json: bool = False,
) -> int:
    """Release the selected templates that changed to `target`; print the summary."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}", f"use one of {', '.join(TARGETS)}")
    at_least_one("--jobs", jobs, 4)
    at_least_one("--build-jobs", build_jobs, 2)
    channel_tag(channel)
    positive_seconds("--ready-timeout", ready_timeout, DEFAULT_READY_TIMEOUT)
    _require_extras(target, build, _check_kinds(settings, names, labels))
    with hold(settings, "release", err=err):  # one hold for every stage
        release = release_templates(
            settings,
            names,
            labels,
            commands=COMMANDS,
            err=err,
            target=target,
            channel=channel,
            jobs=jobs,
            build_jobs=build_jobs,
            build=build,
            allow_skip=allow_skip,
            ready_timeout=ready_timeout,
        )
    if as_json:
        json.dump(release.to_json(), out, indent=2)
        out.write("\n")
    else:
        summary(release, out)
    if in_github_actions():
        write_step_summary(markdown(release))
    err.write(_verdict(release) + "\n")
    return release.exit_code


def _check_kinds(settings: Settings, names: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The smoke check kinds of the selected templates; none when the specs do not load (the
    release's render stage reports why, in the release's own output)."""
    try:
        selected = load_catalog(settings).select(names, labels)
    except BoxsmithError:
        return []
    return [check.kind for template in selected for check in template.spec.smoke]


def _require_extras(target: str, build: bool, kinds: list[str]) -> None:
    """Every extra this release needs, asked for at once before it lints, builds and smokes:
    lint (hadolint), build for the proof build and container smoke (none with --no-build) and
    the target's (e2b, or backend for the local backend, which has build and e2b), and those
    of the selected templates' smoke check `kinds` (page: a browser)."""
    try:
        find_hadolint()
    except UsageError:
        lacking = {"lint": "hadolint not found"}
    else:
        lacking = {}
    proof = ["build"] if build else []
    require([*proof, "e2b", TARGET_EXTRAS[target], *check_extras(kinds)], lacking=lacking)


def _verdict(release: Release) -> str:
    """The last line: nothing to release, ok, or the failure, with the templates' outcomes."""
    rows = release.rows
    if rows and all(r.change == "released" for r in rows):
        return (
            f"ok: nothing to release: {len(rows)} template(s) already published and "
            f"verified on {release.target}"
        )
    code = release.exit_code
    verdict = "ok" if code == 0 else f"release failed (exit {code})"
    outcomes = counts(r.outcome for r in rows)
    return f"{verdict}: {len(rows)} template(s): {outcomes or 'none selected'}"
