"""The order of `boxsmith release`: nothing is published that was not proven.

Built here (the default), each new version is smoke-tested in a container after its build and
only those that pass are published (a published version is immutable: a failing one would burn
its version number). With `--no-build` the target builds, so the order stays: publish, then the
sandbox smoke. The real engine, a local backend of the test's own, the real SDK over HTTP.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import pytest
from e2b import Template

from boxsmith._internal.build.rendered import BuildUnit
from boxsmith._internal.build.results import BuildResult
from boxsmith._internal.cli.release import COMMANDS
from boxsmith._internal.release.stages import release_templates
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith.config import Settings, load_settings
from tests.helpers import cli, write_tree
from tests.test_build_smoke import UNBUILDABLE_BASE
from tests.test_release import (
    _channel,
    _release,
    _rows,
    _spec,
    _stages,
    _target,
    _verified,
    remove_proof_builds,
)

ORDER = ["render", "check", "plan", "lint", "build", "smoke-container", "publish", "smoke-sandbox"]
# What `marker` (its command prints 1, its check wants 2) says when it fails.
FAILING_CHECK = (
    "check 'marker' failed: expected exit 0, stdout matching /^2$/; got exit 0, stdout: '1'"
)
UNREADY = """\
start_cmd: echo no config here >&2; exit 3
ready_cmd: test -e /tmp/never-there
"""


@pytest.fixture
def releasing(backend_project: Path) -> Iterator[Path]:
    """A project whose `local` target is a backend of its own; the proof builds removed after."""
    (backend_project / "template_specs").mkdir()
    yield backend_project
    remove_proof_builds(backend_project, "proven", "unproven", "unready", "rel", "hand")


def _report(root: Path, report: str) -> list[dict[str, Any]]:
    """The suites in `.boxsmith/reports/<report>.json`."""
    suites: list[dict[str, Any]] = json.loads(
        (root / ".boxsmith/reports" / f"{report}.json").read_text()
    )["suites"]
    return suites


def _suites(root: Path, report: str) -> dict[str, str]:
    """Suite name -> status in `.boxsmith/reports/<report>.json`."""
    return {s["name"]: s["status"] for s in _report(root, report)}


@pytest.mark.docker
def test_a_version_whose_checks_fail_here_is_not_published(releasing: Path) -> None:
    # unproven's check fails; unready's start command fails, so it never gets ready.
    unready = _spec("unready", "1.0.0", 1)
    unready["template_specs/unready.yaml"] += UNREADY
    write_tree(
        releasing,
        {**_spec("proven", "1.0.0", 1), **_spec("unproven", "1.0.0", 1, expect=2), **unready},
    )
    code, report, err = _release(releasing)
    assert code == 1, err  # failed checks

    # Neither passed in its container: no publish record, no build of it on the target.
    index = load_index(releasing / "generated" / INDEX_FILE, INDEX_FILE)
    target = _target(releasing)
    for name in ("unproven", "unready"):
        entry = index.entry(name, "1.0.0")
        assert entry is not None
        assert entry.publishes == []
        assert not Template.exists(name, **target.params)
    rows = _rows(report)
    assert rows["unproven"] == {
        "name": "unproven",
        "version": "1.0.0",
        "change": "new",
        "build": "built",
        "smoke_container": "failed",
        "publish": "-",
        "smoke_sandbox": "-",
        "channel": "-",
        "reason": f"smoke-container failed: {FAILING_CHECK}",
    }
    assert (rows["unready"]["smoke_container"], rows["unready"]["publish"]) == ("error", "-")
    assert rows["unready"]["reason"] == (
        "smoke-container error: ready: start_cmd exited with code 3 before ready_cmd passed"
    )

    # proven passed there: published, smoked in a sandbox, verified and promoted.
    assert (rows["proven"]["build"], rows["proven"]["smoke_container"]) == ("built", "passed")
    assert (rows["proven"]["publish"], rows["proven"]["smoke_sandbox"]) == ("published", "passed")
    assert rows["proven"]["channel"] == "-> 1.0.0"
    (verified,) = _verified(releasing, "proven", "1.0.0")
    assert verified is not None
    assert _channel(target, "proven") == "1"

    assert [s["name"] for s in report["stages"]] == ORDER
    stages = {s["name"]: s for s in report["stages"]}
    assert (stages["smoke-container"]["status"], stages["smoke-container"]["exit_code"]) == (
        "failed",
        1,
    )
    assert stages["smoke-container"]["detail"] == "1 passed, 1 failed, 1 error; 2 not published"
    assert (stages["publish"]["status"], stages["smoke-sandbox"]["status"]) == ("ok", "ok")
    assert _suites(releasing, "release-container") == {
        "proven:1.0.0": "passed",
        "unproven:1.0.0": "failed",
        "unready:1.0.0": "error",
    }
    assert _suites(releasing, "release-local") == {"proven:1.0.0": "passed"}

    # Their versions are not burned: the next release tries them again (the builds cached), and
    # the table names what failed.
    again = cli(releasing, "release")
    assert again.code == 1, again.err
    assert f"unproven:1.0.0: smoke-container failed: {FAILING_CHECK}\n" in again.out
    assert "template  version  change    build   smoke-container  publish" in again.out
    assert "proven    1.0.0    released  -       -                -" in again.out
    assert "unproven  1.0.0    new       cached  failed           -" in again.out
    assert "unready   1.0.0    new       cached  error            -" in again.out
    assert "unready:1.0.0: smoke-container error: ready: start_cmd exited with code 3" in again.out
    assert not Template.exists("unproven", **target.params)


@pytest.mark.docker
def test_without_a_local_build_publish_comes_first_and_a_failure_is_smoked_again(
    releasing: Path,
) -> None:
    """`--no-build`: no image here, so no container smoke; rel is published, fails in its
    sandbox and is not promoted; hand, published by hand before, is smoked and promoted."""
    # rel writes 1 and its check wants 2; hand is published by hand before any release.
    write_tree(releasing, {**_spec("rel", "1.0.0", 1, expect=2), **_spec("hand", "1.0.0", 5)})
    assert cli(releasing, "render").code == 0
    by_hand = cli(releasing, "publish", "hand")
    assert by_hand.code == 0, by_hand.err

    code, report, err = _release(releasing, "--no-build")
    assert code == 1, err
    assert [s["name"] for s in report["stages"]] == ORDER
    stages = _stages(report)
    assert [stages[s] for s in ORDER[4:]] == ["skipped", "skipped", "ok", "failed"]
    assert "left out (--no-build): no image here" in err
    assert not (releasing / ".boxsmith/reports/release-container.json").exists()
    rows = _rows(report)
    assert (rows["rel"]["build"], rows["rel"]["smoke_container"]) == ("left out", "left out")
    assert (rows["rel"]["publish"], rows["rel"]["smoke_sandbox"]) == ("published", "failed")
    assert rows["rel"]["channel"] == "-"
    assert rows["rel"]["reason"] == f"smoke-sandbox failed: {FAILING_CHECK}"
    assert "check 'marker' failed: expected exit 0, stdout matching /^2$/" in err
    assert _verified(releasing, "rel", "1.0.0") == [None]
    # hand was published but never verified: the release smoke-tests and promotes it only.
    assert rows["hand"]["change"] == "unverified"
    assert (rows["hand"]["build"], rows["hand"]["smoke_container"]) == ("-", "-")
    assert rows["hand"]["publish"] == "-"
    assert (rows["hand"]["smoke_sandbox"], rows["hand"]["channel"]) == ("passed", "-> 1.0.0")
    target = _target(releasing)
    assert not any(t.tag == "stable" for t in Template.get_tags("rel", **target.params))
    assert _channel(target, "hand") == "5"

    # The next release, built here, smokes rel again in a sandbox (published, not verified):
    # no build and no container smoke for it.
    code, report, err = _release(releasing)
    assert code == 1
    rows = _rows(report)
    assert rows["rel"]["change"] == "unverified"
    assert [rows["rel"][s] for s in ("build", "smoke_container", "publish", "smoke_sandbox")] == [
        "-",
        "-",
        "-",
        "failed",
    ]
    assert _stages(report)["smoke-container"] == "skipped"
    assert rows["hand"]["change"] == "released"
    summary = cli(releasing, "release")
    assert summary.code == 1
    assert f"rel:1.0.0: smoke-sandbox failed: {FAILING_CHECK}\n" in summary.out


@pytest.mark.docker
def test_the_container_smoke_waits_as_long_as_ready_timeout_says(releasing: Path) -> None:
    """`--ready-timeout` bounds the container smoke's wait for each ready command (600 s, as
    E2B, by default): a template that never gets ready is not published."""
    slow = _spec("unready", "1.0.0", 1)
    slow["template_specs/unready.yaml"] += "start_cmd: sleep 600\nready_cmd: test -e /never\n"
    write_tree(releasing, slow)
    refused = cli(releasing, "release", "--ready-timeout", "0")
    assert refused.code == 2
    assert "--ready-timeout" in refused.err

    code, report, err = _release(releasing, "--ready-timeout", "2")
    assert code == 1, err
    row = _rows(report)["unready"]
    assert (row["smoke_container"], row["publish"]) == ("error", "-")
    assert row["reason"].startswith(  # then how many attempts there were, and the last's exit
        "smoke-container error: ready: not ready after 2s: ready_cmd `test -e /never` never passed"
    )
    assert not Template.exists("unready", **_target(releasing).params)


@pytest.mark.docker
def test_a_version_that_cannot_build_here_is_reported_skipped(releasing: Path) -> None:
    """`--allow-skip`: a version whose base image nobody can provide here is skipped, not
    published, and the container smoke's reports say so with the reason."""
    spec = _spec("unbuildable", "1.0.0", 1)
    path = "template_specs/unbuildable.yaml"
    spec[path] = spec[path].replace("debian:bookworm-slim", UNBUILDABLE_BASE)
    write_tree(releasing, spec)

    code, report, err = _release(releasing, "--allow-skip")
    assert code == 0, err
    why = f"cannot provide base image {UNBUILDABLE_BASE}"
    (suite,) = _report(releasing, "release-container")
    assert (suite["name"], suite["status"], suite["stage"]) == (
        "unbuildable:1.0.0",
        "skipped",
        "build",
    )
    assert suite["skipped"].startswith(why)
    row = _rows(report)["unbuildable"]
    assert (row["build"], row["smoke_container"], row["publish"]) == ("skipped", "skipped", "-")
    assert row["reason"].startswith(f"build skipped: {why}")


def _claims_cached(
    settings: Settings,
    units: Sequence[BuildUnit],
    *,
    err: TextIO,
    jobs: int,
    allow_skip: bool,
) -> list[BuildResult]:
    """A build that calls each image cached without looking: as if another process removed it
    between the build and the container smoke (a release builds, so nothing else gets there)."""
    return [
        BuildResult(u.template.name, u.template.version, u.image, status="cached") for u in units
    ]


@pytest.mark.docker
def test_a_container_smoke_that_cannot_run_reports_each_version_as_an_error(
    releasing: Path,
) -> None:
    """When the container smoke cannot run at all (here: the image is gone), its reports say so
    for each version, replacing the last release's, so `boxsmith status` shows this result."""
    write_tree(releasing, _spec("unproven", "1.0.0", 1, expect=2))
    code, _, err = _release(releasing)
    assert code == 1, err
    assert _suites(releasing, "release-container") == {"unproven:1.0.0": "failed"}

    remove_proof_builds(releasing, "unproven")
    out = io.StringIO()
    release = release_templates(
        load_settings(releasing),
        [],
        [],
        commands=dataclasses.replace(COMMANDS, build=_claims_cached),
        err=out,
        target="local",
        channel="stable",
        jobs=1,
        build_jobs=1,
    )
    assert release.exit_code == 2, out.getvalue()  # as `smoke --local` of an image not built
    assert "run `boxsmith build unproven` first" in out.getvalue()
    (suite,) = _report(releasing, "release-container")
    assert (suite["name"], suite["status"], suite["stage"]) == ("unproven:1.0.0", "error", "start")
    assert suite["error"].startswith("not built: ")
    status = cli(releasing, "status", "--json")
    (template,) = json.loads(status.out)["templates"]
    assert template["smoke"]["container"]["status"] == "error"
    (row,) = release.rows
    assert (row.build, row.smoke_container, row.publish) == ("cached", "error", "-")
    assert row.reason.startswith("smoke-container error: start: not built: "), row.reason
