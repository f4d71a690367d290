"""`boxsmith release [NAME...] [--target local|e2b]`: render, check, lint, build, publish, smoke
and promote the templates that changed.

What changed is decided from generated/index.json, before any engine or network: a template
whose current version has no publish record on the target is `new` (lint, build, publish,
smoke, promote); one published there but never verified (no sandbox of it passed its checks,
e.g. the last release failed at smoke) is `unverified` (smoke, promote); one verified there is
`released` and left alone, so a rollback by hand stays rolled back. With nothing changed a
release renders nothing (the verification stamp), builds nothing and boots no sandbox.

Stages run in order; render, check and lint stop the release when they fail. From build on,
each template goes as far as it can: one that fails to build is not published, one whose smoke
checks fail is published but not promoted (the next release smokes it again). `--no-build`
leaves the proof build on the local engine out (the target builds anyway; E2B's remote builds
scale where one machine does not). `--allow-skip` reports templates that cannot build on this
machine as skipped instead of failed (the main job uses it). Exit code: the first failing
stage's (README, "Exit codes"). Progress and each stage's report go to stderr; the release
summary (or `--json`) to stdout; smoke reports to `.boxsmith/reports/release-<target>.*`.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from boxsmith._internal.gha import in_github_actions, write_step_summary
from boxsmith._internal.lock import hold
from boxsmith._internal.publish.targets import TARGETS, check_channel, live_builds
from boxsmith._internal.release.report import STAGES, Release, Row, counts, markdown, summary
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, BoxsmithError, UsageError

if TYPE_CHECKING:
    from boxsmith._internal.build.rendered import BuildUnit
    from boxsmith._internal.publish.publisher import PublishResult

__all__ = ["run"]


def _timed(release: Release, name: str, err: TextIO, step: Callable[[], int | None]) -> bool:
    """Run one stage; record its status, exit code and time. True when it did not fail."""
    stage = release.stage(name)
    err.write(f"\n== {name}\n")
    start = time.perf_counter()
    try:
        code = step()
    except BoxsmithError as exc:
        err.write(exc.format() + "\n")
        code = exc.exit_code
    stage.seconds = time.perf_counter() - start
    if code is None:  # nothing to do
        stage.status = "skipped"
        return True
    stage.exit_code = code
    stage.status = "ok" if code == 0 else "failed"
    return code == 0


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
    as_json: bool = False,
) -> int:
    """Release the selected templates that changed to `target`; print the summary."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}", f"use one of {', '.join(TARGETS)}")
    if jobs < 1 or build_jobs < 1:
        raise UsageError("--jobs and --build-jobs must be at least 1", "use e.g. -j 4")
    check_channel(channel)
    release = Release(target, channel)
    for name in STAGES:
        release.stage(name)
    # one hold for every stage: the plan reads the index the publish and smoke stages write
    with hold(settings, "release", err=err):
        _Pipeline(settings, names, labels, release, err, build, allow_skip, jobs, build_jobs).run()
    if as_json:
        json.dump(release.to_json(), out, indent=2)
        out.write("\n")
    else:
        summary(release, out)
    if in_github_actions():
        write_step_summary(markdown(release))
    code = release.exit_code
    if release.rows and all(r.change == "released" for r in release.rows):
        err.write(
            f"ok: nothing to release: {len(release.rows)} template(s) already published and "
            f"verified on {target}\n"
        )
    else:
        verdict = "ok" if code == 0 else f"release failed (exit {code})"
        outcomes = counts(r.outcome for r in release.rows)
        err.write(f"{verdict}: {len(release.rows)} template(s): {outcomes or 'none selected'}\n")
    return code


@dataclass
class _Pipeline:
    """One release's stages; each sets the units the next one works on."""

    settings: Settings
    names: Sequence[str]
    labels: Sequence[str]
    release: Release
    err: TextIO
    build: bool
    allow_skip: bool
    jobs: int
    build_jobs: int
    units: list[BuildUnit] = field(default_factory=list)  # selected (plan)
    rows: dict[str, Row] = field(default_factory=dict)  # by unit ref (plan)
    ready: list[BuildUnit] = field(default_factory=list)  # built or left to the target (build)
    published: list[BuildUnit] = field(default_factory=list)  # on the target now (publish)

    def run(self) -> None:
        release, err = self.release, self.err
        for name, step in (
            ("render", self.render),
            ("check", self.check),
            ("plan", self.plan),
            ("lint", self.lint),
        ):
            if not _timed(release, name, err, step):
                return
        for name, step in (
            ("build", self.build_new),
            ("publish", self.publish),
            ("smoke", self.smoke),
        ):
            _timed(release, name, err, step)
        self.restamp()

    def _changed(self, change: str) -> list[BuildUnit]:
        return [u for u in self.units if self.rows[u.ref].change == change]

    def render(self) -> int | None:
        from boxsmith._internal.render import stamp

        whole = not self.names and not self.labels
        if whole and stamp.matches(self.settings, stamp.load(self.settings)):
            self.err.write("nothing to render: nothing changed since the last clean check\n")
            return None
        from boxsmith._internal.cli import render

        return render.run(
            self.settings, self.names, self.labels, out=self.err, err=self.err, quiet=True
        )

    def check(self) -> int:
        from boxsmith._internal.cli import check

        return check.run(self.settings, self.names, self.labels, out=self.err, err=self.err)

    def plan(self) -> int:
        from boxsmith._internal.build.rendered import select_units
        from boxsmith._internal.render.index import INDEX_FILE, load_index

        path = self.settings.generated_dir / INDEX_FILE
        index = load_index(path, self.settings.display(path))
        target = self.release.target
        live = live_builds(self.settings, target)
        gone = 0
        for unit in select_units(self.settings, self.names, self.labels):
            name, version = unit.template.name, unit.template.version
            entry = index.entry(name, version)
            own = entry.records(target, live) if entry else []
            if not own:
                change = "new"
                gone += bool(entry and entry.records(target))
            else:
                change = "released" if any(p.verified for p in own) else "unverified"
            row = Row(name, version, change)
            self.release.rows.append(row)
            self.rows[unit.ref] = row
            self.units.append(unit)
        counts = {c: sum(r.change == c for r in self.release.rows) for c in ("new", "unverified")}
        detail = (
            f"{counts['new']} new, {counts['unverified']} unverified, "
            f"{len(self.units) - sum(counts.values())} released"
        )
        if gone:  # recorded, but the local backend's data was reset since
            detail += f" ({gone} new again: the {target} backend no longer has their builds)"
        self.release.stage("plan").detail = detail
        self.err.write(f"{len(self.units)} template(s) on {target}: {detail}\n")
        return EXIT_OK

    def lint(self) -> int | None:
        new = self._changed("new")
        if not new:
            self.err.write("nothing to lint: no new version\n")
            return None
        from boxsmith._internal.cli import lint

        names = [u.template.name for u in new]
        return lint.run(self.settings, names, [], out=self.err, err=self.err)

    def build_new(self) -> int | None:
        new, rows = self._changed("new"), self.rows
        if not new:
            self.err.write("nothing to build: no new version\n")
            return None
        if not self.build:
            self.err.write("left out (--no-build): the target builds each version itself\n")
            self.ready.extend(new)
            for unit in new:
                rows[unit.ref].build = "left out"
            return None
        from boxsmith._internal.cli import build

        results = build.execute(
            self.settings, new, err=self.err, jobs=self.build_jobs, allow_skip=self.allow_skip
        )
        for unit, result in zip(new, results, strict=True):
            row = rows[unit.ref]
            row.build = result.status
            if result.ok:
                self.ready.append(unit)
            else:
                row.reason = f"build {result.status}: {result.reason}".strip(": ")
        self.release.stage("build").detail = counts(r.status for r in results)
        return build.report(results, out=self.err, err=self.err)

    def publish(self) -> int | None:
        ready = self.ready
        if not ready:
            self.err.write("nothing to publish\n")
            return None
        from boxsmith._internal.cli import publish

        results: list[PublishResult] = []
        code = publish.run(
            self.settings,
            [u.template.name for u in ready],
            [],
            out=io.StringIO(),
            err=self.err,
            target=self.release.target,
            jobs=self.jobs,
            results=results,
        )
        by_ref = {f"{r.name}:{r.version}": r for r in results}
        for unit in ready:
            result = by_ref.get(unit.ref)
            row = self.rows[unit.ref]
            row.publish = result.status if result else "not run"
            if result is not None and result.status in ("published", "unchanged"):
                self.published.append(unit)
            elif result is not None and not row.reason:
                row.reason = f"publish {result.status}: {result.error}"
        self.release.stage("publish").detail = counts(r.status for r in results)
        return code

    def smoke(self) -> int | None:
        units = self._changed("unverified") + self.published
        if not units:
            self.err.write("nothing to smoke-test\n")
            return None
        from boxsmith._internal.cli import smoke

        release = self.release
        suites = smoke.execute_remote(
            self.settings,
            units,
            release.target,
            err=self.err,
            channel=release.channel,
            promote=True,
            jobs=self.jobs,
        )
        for suite in suites:
            row = self.rows[suite.name]
            row.smoke = suite.status
            if suite.status == "passed":
                row.channel = f"-> {row.version}"
            elif not row.reason:
                first = (suite.error or "checks failed").splitlines()[0]
                row.reason = f"smoke {suite.status}: {first}"
        detail = counts(s.status for s in suites)
        promoted = sum(s.status == "passed" for s in suites)
        self.release.stage("smoke").detail = f"{detail}; {release.channel} moved for {promoted}"
        return smoke.report(
            self.settings,
            suites,
            out=self.err,
            err=self.err,
            prefix=f"release-{release.target}",
        )

    def restamp(self) -> None:
        """Publishing and smoke wrote the index: check again (in memory, quietly) so the next
        release's render and check answer from the verification stamp."""
        if self.names or self.labels or all(r.change == "released" for r in self.release.rows):
            return
        from boxsmith._internal.cli import check

        quiet = io.StringIO()
        with contextlib.suppress(BoxsmithError):  # an optimisation: else the next one checks
            check.run(self.settings, [], [], out=quiet, err=quiet)
