"""`boxsmith build`: build each rendered template on the Docker engine (exit 3 when one fails).

Progress goes to stderr; the summary table (or `--json`) goes to stdout. A template that cannot
be built on this machine is reported as skipped, with the reason, when `allow_skip` is set (the
main job does that); otherwise it fails the run like a failed build.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from boxsmith._internal.build.record import BuildRecord, summary_table
from boxsmith._internal.build.results import BuildResult, describe_failure
from boxsmith._internal.cli.options import at_least_one
from boxsmith._internal.lock import hold
from boxsmith._internal.progress import Progress
from boxsmith.config import Settings
from boxsmith.errors import EXIT_INFRA, EXIT_OK

if TYPE_CHECKING:
    from boxsmith._internal.build.rendered import BuildUnit

__all__ = ["execute", "report", "run"]

# The builder, the engine client and the spec models load in the functions that use them: a
# no-change `boxsmith build`, answered from the build record, is 0.3 s faster without them.


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    jobs: int = 2,
    force: bool = False,
    allow_skip: bool = False,
    as_json: bool = False,
) -> int:
    """Build the selected templates; exit 3 when any build fails (skips are not failures).

    Without `force`, a selection whose specs, rendered files and images are all as the last
    good build recorded them is answered from that record (`build.record`), without the engine
    or the lock. Otherwise the run holds the project lock (`boxsmith._internal.lock`).
    """
    at_least_one("--jobs", jobs, 2)
    record = BuildRecord(settings, names, labels, allow_skip)
    if not force:
        code = record.answer(out=out, err=err, as_json=as_json)
        if code is not None:
            return code
    from boxsmith._internal.build.rendered import select_units  # lazy: see the note above
    from boxsmith._internal.spec.catalog import inputs, load_catalog

    with hold(settings, "build", err=err):
        units = select_units(settings, names, labels)
        results = execute(settings, units, err=err, jobs=jobs, force=force, allow_skip=allow_skip)
        if results and all(r.status in ("built", "cached") for r in results):
            images: dict[str, str] = {}
            for unit, r in zip(units, results, strict=True):
                images.update(
                    {r.image: r.image_id, r.parity: r.parity_id, unit.base_image: r.base_id}
                )
            record.save(
                context=inputs(load_catalog(settings)),
                rows=[r.to_json() for r in results],
                images=images,
            )
        else:
            record.forget()
    return report(results, out=out, err=err, as_json=as_json)


def execute(
    settings: Settings,
    units: Sequence[BuildUnit],
    *,
    err: TextIO,
    jobs: int = 2,
    force: bool = False,
    allow_skip: bool = False,
) -> list[BuildResult]:
    """Build `units` with progress on `err`; one result per unit."""
    from boxsmith._internal.build.builder import build_templates  # lazy: see the note above
    from boxsmith._internal.docker.client import Engine

    with (
        Engine(err=None, project=settings.project_id) as engine,
        Progress(err, "build") as progress,
    ):
        return build_templates(
            settings,
            units,
            engine=engine,
            progress=progress,
            jobs=jobs,
            force=force,
            allow_skip=allow_skip,
        )


def report(
    results: Sequence[BuildResult], *, out: TextIO, err: TextIO, as_json: bool = False
) -> int:
    """Print failures (stderr), the table or JSON (stdout) and the summary; the exit code."""
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        err.write(describe_failure(r) + "\n")
    if as_json:
        json.dump({"builds": [r.to_json() for r in results]}, out, indent=2)
        out.write("\n")
    else:
        out.write(summary_table([r.to_json() for r in results]))
    counts = ", ".join(
        f"{sum(r.status == s for r in results)} {s}"
        for s in ("built", "cached", "skipped", "failed")
        if any(r.status == s for r in results)
    )
    err.write(f"{'build' if failed else 'ok'}: {len(results)} template(s): {counts or 'none'}\n")
    if any(not r.hint for r in failed):
        err.write("  fix: fix the failing step in the spec, `boxsmith render`, and build again\n")
    return EXIT_INFRA if failed else EXIT_OK
