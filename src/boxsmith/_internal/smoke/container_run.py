"""Smoke checks in local containers: `boxsmith smoke --local`.

Each built image is started as E2B starts a sandbox (`smoke/container_target.py`: its start
command, then its ready command until it passes or `ready_timeout` runs out), its checks run
through `docker exec`, and the container is removed. Templates go one after the other.

Before any starts, each image must be this project's build of the version's current rendered
files: its project, template and version labels are this unit's, and its build-key label equals
the key recomputed from the rendered folder and the parity base id it was built FROM
(`build.composite.build_key`). Otherwise the run refuses (exit 2, like an image not built) and
names `boxsmith build`: it never tests another project's or an older build.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.build.composite import build_key
from boxsmith._internal.build.rendered import (
    BUILD_KEY_LABEL,
    PARITY_ID_LABEL,
    PROJECT_LABEL,
    TEMPLATE_LABEL,
    VERSION_LABEL,
    BuildUnit,
)
from boxsmith._internal.docker.client import Engine, EngineError, ImageInfo
from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT
from boxsmith._internal.progress import Progress
from boxsmith._internal.smoke.container_target import start_sandbox
from boxsmith._internal.smoke.report import SuiteResult
from boxsmith._internal.smoke.runner import run_checks
from boxsmith._internal.smoke.suites import check_counter
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = ["image_problem", "smoke_in_containers"]


def smoke_in_containers(
    settings: Settings,
    units: Sequence[BuildUnit],
    *,
    err: TextIO,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    skipped: Sequence[tuple[BuildUnit, str]] = (),
) -> list[SuiteResult]:
    """Smoke-test `units` one after the other in containers of their built images, with
    progress on `err`; `skipped` are reported with their reason. A UsageError (exit 2) when an
    image is not built."""
    suites = [SuiteResult(u.ref, skipped=reason, stage="build") for u, reason in skipped]
    if not units:
        return suites
    with Engine(err=None, project=settings.project_id) as engine:
        _refuse_unbuilt(engine, units)
        with Progress(err, "smoke") as progress:
            for unit in units:
                suites.append(
                    _smoke_one(engine, unit, progress, ready_timeout, settings.container_lifetime)
                )
    return suites


def image_problem(unit: BuildUnit, image: ImageInfo | None) -> str:
    """Why `image` is not this project's build of `unit`'s current rendered files ("" when it
    is)."""
    if image is None:
        return "not built"
    labels = image.labels
    owner = labels.get(PROJECT_LABEL)
    if owner != unit.project:
        return f"built for another project ({owner or 'no project label'}), not this one"
    built = f"{labels.get(TEMPLATE_LABEL)}:{labels.get(VERSION_LABEL)}"
    if built != unit.ref:
        return f"its labels say {built}"
    parity_id = labels.get(PARITY_ID_LABEL)
    if not parity_id:
        return "built by an older boxsmith (no parity base id to check its build key with)"
    if labels.get(BUILD_KEY_LABEL) != build_key(unit, parity_id):
        return f"out of date: {unit.display} changed since it was built"
    return ""


def _refuse_unbuilt(engine: Engine, units: Sequence[BuildUnit]) -> None:
    """A UsageError (exit 2) naming each image that is missing or not this project's build of
    its current files."""
    problems = [(u, image_problem(u, engine.image(u.image))) for u in units]
    bad = [(u, why) for u, why in problems if why]
    if not bad:
        return
    names = " ".join(u.template.name for u, _ in bad)
    if all(why == "not built" for _, why in bad):
        raise UsageError(
            f"not built: {', '.join(u.image for u, _ in bad)}",
            f"run `boxsmith build {names}` first",
        )
    lines = [f"{u.ref}: image {u.image}: {why}" for u, why in bad]
    raise UsageError(
        "refusing to smoke-test an image that is not this project's build of its current "
        "files:\n  " + "\n  ".join(lines),
        f"run `boxsmith build {names}`, then smoke again",
    )


def _smoke_one(
    engine: Engine,
    unit: BuildUnit,
    progress: Progress,
    ready_timeout: float,
    lifetime: float | None,
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
                lifetime=lifetime,
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
        checks = run_checks(
            target, unit.template.spec.smoke, on_result=check_counter(progress, key)
        )
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
