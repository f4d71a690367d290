"""`boxsmith publish [NAME...] [--target local|e2b]`: build each rendered version on the target
and record it (template_id and build_id in e2b.toml, a publish record in generated/index.json).

Exit 1 when generated/ does not match the specs (nothing is published: run `boxsmith render`),
2 for a spec or usage error (a published version whose content would change, no E2B_API_KEY)
or a `refused` version: one that generated/index.json records, or the target holds under its
version tag, with other content (a published version is immutable: bump it). 3 when a publish
failed (the failing step is named), also beside refused versions: every problem is listed, and
3 is what a retry may clear (a later run exits 2 for the refusals alone).
Versions already published with the same content are `unchanged`; one the target already holds
with this content, its record missing from the index, is `published` (record restored).
`boxsmith release` exits with publish's code when publish is its first failing stage.
Progress and failures go to stderr; the summary table (or `--json`) to stdout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.cli.options import at_least_one
from boxsmith._internal.extras import TARGET_EXTRAS, require
from boxsmith._internal.lock import hold
from boxsmith._internal.progress import table
from boxsmith._internal.publish.plan import PublishResult, plan_publish
from boxsmith._internal.publish.publisher import publish_units
from boxsmith._internal.publish.targets import TARGETS, PublishTarget, connect
from boxsmith._internal.retry import RetryPolicy
from boxsmith.config import Settings
from boxsmith.errors import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK, EXIT_USAGE, UsageError

__all__ = ["DEFAULT_JOBS", "describe_failure", "report", "run"]

DEFAULT_JOBS = 4


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    target: str | PublishTarget = "local",
    jobs: int = DEFAULT_JOBS,
    as_json: bool = False,
    retry: RetryPolicy | None = None,
    results: list[PublishResult] | None = None,
) -> int:
    """Publish the selected templates to `target` (`local`, `e2b`, or a connected PublishTarget);
    `results`, when given, receives one result per version (drift: none). Holds the project
    lock (`boxsmith._internal.lock`)."""
    at_least_one("--jobs", jobs, DEFAULT_JOBS)
    name = target.name if isinstance(target, PublishTarget) else target
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r}", f"use one of {', '.join(TARGETS)}")
    require([TARGET_EXTRAS[name]])  # before the plan: the local backend starts in it
    with hold(settings, "publish", err=err):
        return _publish(
            settings,
            names,
            labels,
            out=out,
            err=err,
            target=target,
            jobs=jobs,
            as_json=as_json,
            retry=retry,
            results=[] if results is None else results,
        )


def _publish(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    target: str | PublishTarget,
    jobs: int,
    as_json: bool,
    retry: RetryPolicy | None,
    results: list[PublishResult],
) -> int:
    name = target.name if isinstance(target, PublishTarget) else target
    plan = plan_publish(settings, names, labels, name)
    if plan.drift:
        prefix = settings.display(settings.generated_dir)
        for change in plan.drift:
            err.write(f"drift: {prefix}/{change.rel}: {change.action.value} needed\n")
        err.write(
            f"error: {len(plan.drift)} file(s) in {prefix}/ do not match the specs; nothing "
            "was published\n  fix: run `boxsmith render` (and commit the result), then publish\n"
        )
        return EXIT_FINDINGS
    for ref in plan.gone:
        err.write(
            f"{ref}: recorded as published to {name}, but the {name} backend no longer has that "
            "build (its data was reset): publishing it again\n"
        )
    for result in plan.settled:
        if result.status == "unchanged":
            err.write(
                f"{result.name}:{result.version}: already published to {name} with the same "
                f"content (template {result.template_id}, build {result.build_id}); nothing to do\n"
            )
    results += plan.settled
    if plan.units:
        remote = target if isinstance(target, PublishTarget) else connect(settings, target, err=err)
        err.write(
            f"publishing {len(plan.units)} template(s) to {remote.description}, "
            f"{min(jobs, len(plan.units))} at a time\n"
        )
        results += publish_units(settings, plan.units, remote, err=err, jobs=jobs, policy=retry)
    results.sort(key=lambda r: (r.name, r.version))
    return report(results, name, out=out, err=err, as_json=as_json)


def describe_failure(result: PublishResult) -> str:
    """What failed, where, and the end of its build log."""
    ref = f"{result.name}:{result.version}"
    if result.status == "refused":
        return f"error: {ref}: refused: {result.error}\n  fix: {result.hint}"
    named = result.step.removeprefix("build ") in result.error  # the backend named it already
    where = "" if named else f" at {result.step}"
    lines = [f"error: {ref}: publish to {result.target} failed{where}: {result.error}"]
    if result.tail:
        lines.append(f"  last build log lines (full log: {result.log}):")
        lines += [f"    {line}" for line in result.tail[-8:]]
    if result.hint:
        lines.append(f"  fix: {result.hint}")
    elif result.step.startswith("build step"):
        lines.append("  fix: fix that step in the spec, `boxsmith render`, and publish again")
    return "\n".join(lines)


def report(
    results: Sequence[PublishResult],
    target: str,
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Print failures (stderr), the table or JSON (stdout) and a summary; the exit code:
    3 when any version failed, else 2 when any was refused (module doc), else 0."""
    bad = [r for r in results if r.status in ("failed", "refused")]
    for result in bad:
        err.write(describe_failure(result) + "\n")
    if as_json:
        json.dump({"target": target, "publishes": [r.to_json() for r in results]}, out, indent=2)
        out.write("\n")
    elif results:
        out.write(
            table(
                ("template", "version", "target", "status", "time", "template_id", "build_id"),
                [
                    (
                        r.name,
                        r.version,
                        r.target,
                        r.status,
                        f"{r.seconds:.1f}s",
                        r.template_id or "-",
                        r.build_id or "-",
                    )
                    for r in results
                ],
                right=(4,),
            )
        )
    counts = ", ".join(
        f"{sum(r.status == s for r in results)} {s}"
        for s in ("published", "unchanged", "refused", "failed")
        if any(r.status == s for r in results)
    )
    err.write(f"{'publish' if bad else 'ok'}: {len(results)} template(s): {counts or 'none'}\n")
    if any(r.status == "failed" for r in results):
        return EXIT_INFRA
    return EXIT_USAGE if bad else EXIT_OK
