"""The stages of `boxsmith release`, in order and timed: render, check, plan, lint, build,
publish, smoke, then a quiet check that restamps generated/.

What changed is decided from generated/index.json, before any engine or network (the plan): a
template whose current version has no publish record on the target is `new` (lint, build,
publish, smoke, promote); one published there but never verified (no sandbox of it passed its
checks, e.g. the last release failed at smoke) is `unverified` (smoke, promote); one verified
there is `released` and left alone, so a rollback by hand stays rolled back. With nothing
changed a release renders nothing (the verification stamp), builds nothing and boots no sandbox.

Render, check and lint stop the release when they fail. From build on, each template goes as
far as it can: one that fails to build is not published, one whose smoke checks fail is
published but not promoted (the next release smokes it again). Each stage's report goes to
`err`; the record of the whole release (`release/report.py`) is the result.

Render, check, lint, build and publish are the commands themselves, each printing its own
report: the cli passes them in as `Commands` (`cli/release.py`), since a stage never imports the
cli. The smoke stage is `smoke/sandbox_run.py`.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

from boxsmith._internal.build.rendered import BuildUnit, select_units
from boxsmith._internal.publish.targets import live_builds
from boxsmith._internal.release.report import STAGES, Release, Row, counts
from boxsmith._internal.render import stamp
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith._internal.smoke.sandbox_run import smoke_in_sandboxes
from boxsmith._internal.smoke.suites import report_suites
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, BoxsmithError

if TYPE_CHECKING:
    from boxsmith._internal.build.results import BuildResult
    from boxsmith._internal.publish.plan import PublishResult

__all__ = ["Command", "Commands", "release_templates"]


class Command(Protocol):
    """A command's `run()` as a release calls it: its report on `err`, its exit code back."""

    def __call__(
        self,
        settings: Settings,
        names: Sequence[str],
        labels: Sequence[str],
        *,
        out: TextIO,
        err: TextIO,
    ) -> int: ...


class BuildCommand(Protocol):
    """`boxsmith build` on the units the plan chose: one result per unit, progress on `err`."""

    def __call__(
        self,
        settings: Settings,
        units: Sequence[BuildUnit],
        *,
        err: TextIO,
        jobs: int,
        allow_skip: bool,
    ) -> list[BuildResult]: ...


class BuildReport(Protocol):
    """`boxsmith build`'s report of those results: its exit code."""

    def __call__(self, results: Sequence[BuildResult], *, out: TextIO, err: TextIO) -> int: ...


class PublishCommand(Protocol):
    """`boxsmith publish` of the named templates; `results` receives one result per version."""

    def __call__(
        self,
        settings: Settings,
        names: Sequence[str],
        labels: Sequence[str],
        *,
        out: TextIO,
        err: TextIO,
        target: str,
        jobs: int,
        results: list[PublishResult],
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Commands:
    """The commands a release runs, each printing its own report (render: quietly, without the
    identical files)."""

    render: Command
    check: Command
    lint: Command
    build: BuildCommand
    build_report: BuildReport
    publish: PublishCommand


def release_templates(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    commands: Commands,
    err: TextIO,
    target: str,
    channel: str,
    jobs: int,
    build_jobs: int,
    build: bool = True,
    allow_skip: bool = False,
) -> Release:
    """Release the selected templates that changed to `target` (the caller holds the project
    lock for all of it: the plan reads the index that publish and smoke write); the record of
    each stage and template.

    Args:
        jobs: publishes and sandboxes at once.
        build_jobs: local builds at once.
        build: False leaves the proof build on the local engine out (the target builds anyway).
        allow_skip: templates that cannot build on this machine are skipped, not failed.
    """
    release = Release(target, channel)
    for name in STAGES:
        release.stage(name)
    _Stages(
        settings, names, labels, commands, release, err, build, allow_skip, jobs, build_jobs
    ).run()
    return release


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


@dataclass
class _Stages:
    """One release's stages; each sets the units the next one works on."""

    settings: Settings
    names: Sequence[str]
    labels: Sequence[str]
    commands: Commands
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
        whole = not self.names and not self.labels
        if whole and stamp.matches(self.settings, stamp.load(self.settings)):
            self.err.write("nothing to render: nothing changed since the last clean check\n")
            return None
        return self.commands.render(
            self.settings, self.names, self.labels, out=self.err, err=self.err
        )

    def check(self) -> int:
        return self.commands.check(
            self.settings, self.names, self.labels, out=self.err, err=self.err
        )

    def plan(self) -> int:
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
        changed = {c: sum(r.change == c for r in self.release.rows) for c in ("new", "unverified")}
        detail = (
            f"{changed['new']} new, {changed['unverified']} unverified, "
            f"{len(self.units) - sum(changed.values())} released"
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
        names = [u.template.name for u in new]
        return self.commands.lint(self.settings, names, [], out=self.err, err=self.err)

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
        results = self.commands.build(
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
        return self.commands.build_report(results, out=self.err, err=self.err)

    def publish(self) -> int | None:
        ready = self.ready
        if not ready:
            self.err.write("nothing to publish\n")
            return None
        results: list[PublishResult] = []
        code = self.commands.publish(
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
        release = self.release
        suites = smoke_in_sandboxes(
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
        return report_suites(
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
        quiet = io.StringIO()
        with contextlib.suppress(BoxsmithError):  # an optimisation: else the next one checks
            self.commands.check(self.settings, [], [], out=quiet, err=quiet)
