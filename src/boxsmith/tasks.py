"""boxsmith's stages as invoke tasks: a project's whole `tasks.py` is

    from boxsmith.tasks import namespace as namespace

(invoke runs the Collection a tasks.py calls `namespace` or `ns`; `boxsmith init` writes that
file). The tasks call boxsmith's commands, never a second copy, and exit with its exit codes
(README, "Exit codes"): 0 ok, 1 findings or drift, 2 spec or usage error, 3
build/engine/backend/publish failure, 130 interrupted.

    invoke validate | render | check | lint | images | build | smoke | schema | list | status
    invoke report
    invoke publish | promote | rollback | release | main

Add a project's own tasks to a copy, leaving this one as shipped:

    from invoke import Collection
    import boxsmith.tasks

    ns = Collection.from_module(boxsmith.tasks)
    ns.add_task(my_task)

Needs invoke (`pip install 'boxsmith[tasks]'`): without it, importing this module raises
ModuleNotFoundError for `invoke`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from boxsmith._internal.cli.outcome import run_command
from boxsmith.config import load_settings

__all__ = ["namespace", "ns"]

# Each task imports its command module when it runs: loading them all (the spec models, the
# Docker and e2b SDKs) would add about 0.5 s to every `invoke` call, `invoke --list` too.


def _names(names: str) -> list[str]:
    return [n for n in names.replace(",", " ").split() if n]


def _run(step: Callable[[], int]) -> int:
    """Run one command with the CLI's error handling (`cli.outcome`); return its exit code."""
    return run_command(step, sys.stderr)


def _finish(code: int) -> None:
    if code:
        raise Exit(code=code)


def _stage(command: str, names: str, **options: Any) -> None:
    """Run `boxsmith._internal.cli.<command>.run` on the named templates; exit with its code."""

    def step() -> int:  # the import inside: a missing extra is the command's error (exit 2)
        module = importlib.import_module(f"boxsmith._internal.cli.{command}")
        return int(
            module.run(
                load_settings(), _names(names), [], out=sys.stdout, err=sys.stderr, **options
            )
        )

    _finish(_run(step))


@task(help={"names": "template names or globs, comma separated", "json": "machine output"})
def validate(c: Context, names: str = "", json: bool = False) -> None:
    """Validate every spec; all errors at once."""
    _stage("validate", names, as_json=json)


@task(help={"names": "template names or globs", "dry_run": "only show what would change"})
def render(c: Context, names: str = "", dry_run: bool = False) -> None:
    """Render specs into generated/<name>/<version>/."""
    _stage("render", names, dry_run=dry_run, quiet=True)


@task(help={"names": "template names or globs"})
def check(c: Context, names: str = "") -> None:
    """Exit 1 when generated/ does not match the specs (the CI drift gate)."""
    _stage("check", names)


@task(
    help={
        "names": "template names or globs",
        "format": "text, json or sarif",
        "threshold": "error, warning, info or style",
        "output": "report file",
    }
)
def lint(
    c: Context, names: str = "", format: str = "text", threshold: str = "warning", output: str = ""
) -> None:
    """hadolint and E2B rules on each template's Dockerfile."""
    _stage("lint", names, fmt=format, threshold=threshold, output=output or None)


@task
def schema(c: Context) -> None:
    """Write the JSON Schema for spec files."""

    def step() -> int:  # the import inside, as in `_stage`
        from boxsmith._internal.cli import schema as command

        return command.run(load_settings(), None, out=sys.stdout, err=sys.stderr)

    _finish(_run(step))


@task(name="list", help={"json": "machine output"})
def list_(c: Context, json: bool = False) -> None:
    """Templates, versions and status from generated/index.json."""

    def step() -> int:  # the import inside, as in `_stage`
        from boxsmith._internal.cli import list as command

        return command.run(load_settings(), [], out=sys.stdout, err=sys.stderr, as_json=json)

    _finish(_run(step))


@task(help={"names": "template names or globs, comma separated", "json": "machine output"})
def status(c: Context, names: str = "", json: bool = False) -> None:
    """Per template: generated/, the local build, publishes, channels, the last smoke results."""
    _stage("status", names, as_json=json)


@task(help={"out": "folder to write (default: .boxsmith/report)", "json": "machine output"})
def report(c: Context, out: str = "", json: bool = False) -> None:
    """Write the catalog site (static HTML) and print the path of its index.html."""

    def step() -> int:  # the import inside, as in `_stage`
        from boxsmith._internal.cli import report as command

        folder = os.path.abspath(out) if out else None  # relative to here, as in the CLI
        return command.run(load_settings(), folder, out=sys.stdout, err=sys.stderr, as_json=json)

    _finish(_run(step))


@task(help={"refs": "images, comma separated (default: every spec's base image)"})
def images(c: Context, refs: str = "") -> None:
    """Pull the base images the specs use, or make local stand-ins."""

    def step() -> int:  # all inside: a missing extra, a bad [tool.boxsmith] exit 2 as in the CLI
        from boxsmith._internal.cli import images as command

        settings = load_settings()
        return command.run(
            settings, _names(refs), out=sys.stdout, err=sys.stderr, mirrors=settings.mirrors
        )

    _finish(_run(step))


@task(
    help={
        "names": "template names or globs",
        "jobs": "builds at once",
        "force": "rebuild unchanged templates",
        "allow_skip": "report templates that cannot build here as skipped",
    }
)
def build(
    c: Context, names: str = "", jobs: int = 2, force: bool = False, allow_skip: bool = False
) -> None:
    """Build each rendered template on the Docker engine (with the E2B parity layer)."""
    _stage("build", names, jobs=jobs, force=force, allow_skip=allow_skip)


@task(
    help={
        "names": "template names or globs",
        "target": "'' (a local container of the built image), local or e2b (a sandbox)",
        "channel": "tag moved on a pass (with a target)",
        "no_promote": "do not move the channel",
        "jobs": "sandboxes at once (with a target)",
        "ready_timeout": "seconds to wait for ready",
    }
)
def smoke(
    c: Context,
    *,
    names: str = "",
    target: str = "",
    channel: str = "stable",
    no_promote: bool = False,
    jobs: int = 4,
    ready_timeout: float = 600.0,
) -> None:
    """Run each template's smoke checks in a local container, or a sandbox (--target).

    Without a target: a container of the built image. With --target local|e2b: a sandbox of the
    published version; a pass moves the channel (default stable) to it.
    """
    _stage(
        "smoke",
        names,
        ready_timeout=ready_timeout,
        target=target or None,
        channel=channel,
        promote=not no_promote,
        jobs=jobs,
    )


@task(
    help={
        "names": "template names or globs",
        "target": "local (the bundled backend) or e2b (E2B_API_KEY)",
        "jobs": "builds at once",
        "json": "machine output",
    }
)
def publish(
    c: Context, *, names: str = "", target: str = "local", jobs: int = 4, json: bool = False
) -> None:
    """Build each rendered version on the target through the SDK and record it."""
    _stage("publish", names, target=target, jobs=jobs, as_json=json)


def _channel(action: str, names: str, target: str, channel: str, version: str) -> None:
    _stage("promote", names, action=action, target=target, channel=channel, version=version or None)


@task(
    help={
        "names": "template names or globs",
        "target": "local or e2b",
        "channel": "the channel tag",
        "version": "version (default: the spec's; one template only)",
    }
)
def promote(
    c: Context, names: str = "", target: str = "local", channel: str = "stable", version: str = ""
) -> None:
    """Point a channel tag at a published version."""
    _channel("promote", names, target, channel, version)


@task(help={"names": "template names or globs", "target": "local or e2b", "channel": "the tag"})
def rollback(c: Context, names: str = "", target: str = "local", channel: str = "stable") -> None:
    """Point a channel tag back at the previous published version."""
    _channel("rollback", names, target, channel, "")


@task(
    help={
        "names": "template names or globs",
        "target": "local (the bundled backend) or e2b (E2B_API_KEY)",
        "channel": "tag moved to versions whose smoke checks pass",
        "jobs": "publishes and sandboxes at once",
        "build_jobs": "local builds at once",
        "no_build": "leave out the proof build on the local engine",
        "allow_skip": "report templates that cannot build here as skipped",
        "ready_timeout": "seconds the container smoke waits for ready",
        "json": "machine output",
    }
)
def release(
    c: Context,
    *,
    names: str = "",
    target: str = "local",
    channel: str = "stable",
    jobs: int = 4,
    build_jobs: int = 2,
    no_build: bool = False,
    allow_skip: bool = False,
    ready_timeout: float = 600.0,
    json: bool = False,
) -> None:
    """Release what changed: render, check, lint, build, smoke, publish, smoke a sandbox, promote.

    The build and the container smoke prove each new version before it is published; a version
    whose sandbox passes its smoke checks gets the channel tag.
    """
    _stage(
        "release",
        names,
        target=target,
        channel=channel,
        jobs=jobs,
        build_jobs=build_jobs,
        build=not no_build,
        allow_skip=allow_skip,
        ready_timeout=ready_timeout,
        as_json=json,
    )


@task(help={"jobs": "builds at once"})
def main(c: Context, jobs: int = 2) -> None:
    """The main job: release what changed to the local backend (`release --allow-skip`).

    Render, check, lint, build, smoke in a container, publish what passed, smoke in a sandbox
    and promote. Templates that cannot
    build on this machine (a base image nobody can provide, a build host that does not answer)
    are reported as skipped with the reason, never as passed.
    """

    def step() -> int:  # the import inside, as in `_stage`
        from boxsmith._internal.cli import main_job as command

        return command.run(load_settings(), out=sys.stdout, err=sys.stderr, jobs=jobs)

    _finish(_run(step))


namespace = Collection(
    validate,
    render,
    check,
    lint,
    images,
    build,
    smoke,
    publish,
    promote,
    rollback,
    release,
    main,
    status,
    report,
    schema,
    list_,
)
"""boxsmith's stages, validate ... release, and main, status, report, images, schema, list."""

ns = namespace
"""The same Collection by invoke's other name for it."""
