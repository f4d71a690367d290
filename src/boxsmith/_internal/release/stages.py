"""The stages of `boxsmith release`, in order and timed, then a quiet check that restamps
generated/. Two orders, by where the new versions are built:

- built here (the default): render, check, plan, lint, build, smoke-container, publish,
  smoke-sandbox (which promotes the channel). Nothing is published that was not proven: each new
  version that built (or was cached) boots in a container as E2B boots a sandbox and runs its
  smoke checks (`smoke/container_run.py`, as `boxsmith smoke --local`); only those that pass
  are published, since a published version is immutable and a failing one would burn its
  version number. Reports: `.boxsmith/reports/release-container.{xml,json}`, with the versions
  whose build was skipped (`--allow-skip`) as skipped, and each version as an error when the
  smoke cannot run at all (the engine down, an image not this project's build).
- `--no-build` (the target builds each version, e.g. E2B's remote builds): render, check, plan,
  lint, publish, smoke-sandbox, as before; smoke-container is left out (no image here), so a
  version whose checks fail is published but not promoted.

What changed is decided from generated/index.json, before any engine or network (the plan): a
template whose current version has no publish record on the target is `new` (lint, build,
smoke-container, publish, smoke-sandbox, promote); one published there but never verified (no
sandbox of it passed its checks, e.g. the last release failed at smoke-sandbox) is `unverified`
(smoke-sandbox, promote); one verified there is `released` and left alone, so a rollback by
hand stays rolled back. With nothing changed a release renders nothing (the verification
stamp), builds nothing and boots no container or sandbox.

Render, check and lint stop the release when they fail. From build on, each template goes as
far as it can: one that fails to build, or whose container smoke fails, is not published (its
row names the failing check); one whose sandbox smoke fails is published but not promoted (the
next release smokes it again). The release's exit code is the first failing stage's. Each
stage's report goes to `err`; the record of the whole release (`release/report.py`) is the
result.

Render, check, lint, build and publish are the commands themselves (`release/commands.py`),
passed in by the cli. The smoke stages are `smoke/container_run.py` and `smoke/sandbox_run.py`,
their reports `smoke/suites.py`'s; `smoke-sandbox`'s go to
`.boxsmith/reports/release-<target>.{xml,json}`.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from boxsmith._internal.build.rendered import BuildUnit, select_units
from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT
from boxsmith._internal.publish.targets import live_builds
from boxsmith._internal.release.commands import Commands
from boxsmith._internal.release.report import STAGES, Release, Row, counts
from boxsmith._internal.render import stamp
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith._internal.smoke.report import SuiteResult
from boxsmith._internal.smoke.sandbox_run import smoke_in_sandboxes
from boxsmith._internal.smoke.suites import report_suites
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, BoxsmithError

if TYPE_CHECKING:
    from boxsmith._internal.publish.plan import PublishResult

__all__ = ["release_templates"]


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
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
) -> Release:
    """Release the selected templates that changed to `target` (the caller holds the project
    lock for all of it: the plan reads the index that publish and smoke write); the record of
    each stage and template.

    Args:
        jobs: publishes and sandboxes at once.
        build_jobs: local builds at once.
        build: False leaves the proof build on the local engine out (the target builds anyway),
            and with it the container smoke: publish comes first, then the sandbox smoke.
        allow_skip: templates that cannot build on this machine are skipped, not failed.
        ready_timeout: seconds the container smoke waits for each template's ready command.
    """
    release = Release(target, channel)
    for name in STAGES:
        release.stage(name)
    _Stages(
        settings,
        names,
        labels,
        commands,
        release,
        err,
        build,
        allow_skip,
        jobs,
        build_jobs,
        ready_timeout,
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
    ready_timeout: float
    units: list[BuildUnit] = field(default_factory=list)  # selected (plan)
    rows: dict[str, Row] = field(default_factory=dict)  # by unit ref (plan)
    built: list[BuildUnit] = field(default_factory=list)  # an image here (build)
    skipped: list[tuple[BuildUnit, str]] = field(default_factory=list)  # and why (build)
    # passed in a container, or left to the target (smoke-container)
    ready: list[BuildUnit] = field(default_factory=list)
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
            ("smoke-container", self.smoke_container),
            ("publish", self.publish),
            ("smoke-sandbox", self.smoke_sandbox),
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
                self.built.append(unit)
            else:
                if result.status == "skipped":
                    self.skipped.append((unit, result.reason))
                row.reason = f"build {result.status}: {result.reason}".strip(": ")
        self.release.stage("build").detail = counts(r.status for r in results)
        return self.commands.build_report(results, out=self.err, err=self.err)

    def smoke_container(self) -> int | None:
        """The new versions built here, each booted in a container and smoke-checked: only
        those that pass go on to publish. Those whose build was skipped are reported skipped."""
        new = self._changed("new")
        if new and not self.build:  # no image here: the sandbox smoke after publish is the proof
            for unit in new:
                self.rows[unit.ref].smoke_container = "left out"
            self.ready.extend(new)
            self.err.write(
                "left out (--no-build): no image here; each new version is smoke-tested in a "
                "sandbox after it is published\n"
            )
            return None
        if not self.built and not self.skipped:
            self.err.write("nothing to smoke-test in a container: no new version built\n")
            return None
        # here, not at the top: the Docker SDK is the `build` extra's (none with --no-build)
        from boxsmith._internal.smoke.container_run import smoke_in_containers

        try:
            suites = smoke_in_containers(
                self.settings,
                self.built,
                err=self.err,
                ready_timeout=self.ready_timeout,
                skipped=self.skipped,
            )
        except BoxsmithError as exc:  # none of them proven, each reported so: none published
            skipped = [SuiteResult(u.ref, skipped=why, stage="build") for u, why in self.skipped]
            errors = [
                SuiteResult(u.ref, target=f"image {u.image}", error=exc.message, stage="start")
                for u in self.built
            ]
            self._container_report(skipped + errors)
            raise
        return self._container_report(suites)

    def _container_report(self, suites: Sequence[SuiteResult]) -> int:
        """Each suite's status in its row (a failure's reason too), the passed ones ready to
        publish; the reports, as `boxsmith smoke --local` writes them."""
        by_ref = {u.ref: u for u in self.built}
        for suite in suites:
            row = self.rows[suite.name]
            row.smoke_container = suite.status
            if suite.status == "passed":
                self.ready.append(by_ref[suite.name])
            elif suite.status != "skipped":  # a skipped build's row already says why
                row.reason = f"smoke-container {suite.status}: {_failure(suite)}"
        held = sum(s.status in ("failed", "error") for s in suites)
        self.release.stage("smoke-container").detail = counts(s.status for s in suites) + (
            f"; {held} not published" if held else ""
        )
        return report_suites(
            self.settings, suites, out=self.err, err=self.err, prefix="release-container"
        )

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

    def smoke_sandbox(self) -> int | None:
        units = self._changed("unverified") + self.published
        if not units:
            self.err.write("nothing to smoke-test in a sandbox\n")
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
            row.smoke_sandbox = suite.status
            if suite.status == "passed":
                row.channel = f"-> {row.version}"
            elif not row.reason:
                row.reason = f"smoke-sandbox {suite.status}: {_failure(suite)}"
        detail = counts(s.status for s in suites)
        promoted = sum(s.status == "passed" for s in suites)
        self.release.stage(
            "smoke-sandbox"
        ).detail = f"{detail}; {release.channel} moved for {promoted}"
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


def _failure(suite: SuiteResult) -> str:
    """Why a smoke suite did not pass, in one line: the step before the checks that failed, or
    the first failing check with what it expected and what came."""
    failed = [c for c in suite.checks if c.status != "passed"]
    if suite.error is not None:
        text = f"{suite.stage}: {suite.error}"
    elif failed:
        check = failed[0]
        text = f"check {check.name!r} {check.status}: expected {check.expected}; got {check.actual}"
    else:
        text = suite.skipped or ""
    return next(iter(text.splitlines()), "") or "checks failed"
