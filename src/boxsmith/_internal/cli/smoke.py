"""`boxsmith smoke`: run each template's smoke checks in a local container (`--local`, the built
image) or in a sandbox of its published version (`--target local|e2b`, several at once).

A sandbox run that passes records the version as verified (`verified_at` on its publish record
in generated/index.json; `boxsmith release` skips verified versions) and moves the channel tag
(default `stable`) to it unless `--no-promote`. Exit 1 when a check fails or the template never
gets ready (each failure names the check, what was expected and what came), 2 when a version is
not built (or its image is not this project's build of the current files) or not published, 3
when the engine fails. JUnit XML and JSON reports are written
every time, named per kind and target (default: `.boxsmith/reports/smoke-container.{xml,json}`
for `--local`, `smoke-local.*` or `smoke-e2b.*` for a sandbox run), so one never overwrites
another; the JSON report says when the run finished (`finished_at`).

The runs are `boxsmith._internal.smoke.container_run` and `smoke.sandbox_run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.build.rendered import select_units
from boxsmith._internal.cli.options import at_least_one, channel_tag, positive_seconds
from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT
from boxsmith._internal.extras import TARGET_EXTRAS, check_extras, require
from boxsmith._internal.lock import hold
from boxsmith._internal.publish.channels import DEFAULT_CHANNEL
from boxsmith._internal.smoke.sandbox_run import DEFAULT_JOBS, smoke_in_sandboxes
from boxsmith._internal.smoke.suites import report_suites
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = ["require_target", "run"]


def require_target(local: bool, target: str | None) -> None:
    """The CLI's `smoke` needs `--local` or `--target`: a UsageError (exit 2) when it has neither.
    (`run()` cannot tell: its `target=None` is `--local`, as the invoke task's empty target.)"""
    if not local and target is None:
        raise UsageError(
            "smoke needs a target: --local (a container of the built image) or "
            "--target local|e2b (a sandbox of the published version)",
            "run `boxsmith smoke --local`, or `boxsmith smoke --target local` after publish",
        )


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
    jobs: int = DEFAULT_JOBS,
) -> int:
    """Smoke-test the selected templates: built images in local containers (no `target`), or
    published versions in sandboxes of `target` (`local` backend or `e2b`). A sandbox run
    records its passes, so it holds the project lock (`boxsmith._internal.lock`); a local one
    does not."""
    positive_seconds("--ready-timeout", ready_timeout, DEFAULT_READY_TIMEOUT)
    at_least_one("--jobs", jobs, DEFAULT_JOBS)
    if target is not None and promote:
        channel_tag(channel)
    if target is None:  # every extra it needs, before the slow work
        require(["build"])
    elif target in TARGET_EXTRAS:
        require([TARGET_EXTRAS[target]])
    units = select_units(settings, names, labels)
    require(check_extras(check.kind for unit in units for check in unit.template.spec.smoke))
    if target is None:
        # here, not at the top: the Docker SDK is the `build` extra's (`--target e2b` needs none)
        from boxsmith._internal.smoke.container_run import smoke_in_containers

        suites = smoke_in_containers(settings, units, err=err, ready_timeout=ready_timeout)
    else:
        with hold(settings, "smoke", err=err):
            suites = smoke_in_sandboxes(
                settings, units, target, err=err, channel=channel, promote=promote, jobs=jobs
            )
    return report_suites(
        settings,
        suites,
        out=out,
        err=err,
        junit=junit,
        json_report=json_report,
        as_json=as_json,
        prefix="smoke-container" if target is None else f"smoke-{target}",
    )
