"""invoke tasks: the same stages as the CLI, calling boxsmith's commands (never a second copy).

Every task exits with boxsmith's exit codes (README, "Exit codes"): 0 ok, 1 findings or drift,
2 spec or usage error, 3 build/engine/backend/publish failure, 130 interrupted.

    invoke validate | render | check | lint | images | build | smoke | schema | list | main
    invoke test | qa | bench
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from invoke import Context, Exit, task

from boxsmith.config import load_settings
from boxsmith.errors import EXIT_INFRA, EXIT_INTERRUPTED, BoxsmithError


def _names(names: str) -> list[str]:
    return [n for n in names.replace(",", " ").split() if n]


def _run(step: Callable[[], int]) -> int:
    """Run one command with the CLI's error handling; return its exit code."""
    try:
        return step()
    except BoxsmithError as exc:
        sys.stderr.write(exc.format() + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; builds cancelled and containers removed\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug in boxsmith: the CLI's code for it, not invoke's 1
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  fix: rerun the same stage with `boxsmith --debug` and report the traceback\n"
        )
        return EXIT_INFRA


def _finish(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(help={"names": "template names or globs, comma separated", "json": "machine output"})
def validate(c: Context, names: str = "", json: bool = False) -> None:
    """Validate every spec; all errors at once."""
    from boxsmith.commands import validate as command

    _finish(
        _run(
            lambda: command.run(
                load_settings(), _names(names), [], out=sys.stdout, err=sys.stderr, as_json=json
            )
        )
    )


@task(help={"names": "template names or globs", "dry_run": "only show what would change"})
def render(c: Context, names: str = "", dry_run: bool = False) -> None:
    """Render specs into generated/<name>/<version>/."""
    from boxsmith.commands import render as command

    _finish(
        _run(
            lambda: command.run(
                load_settings(),
                _names(names),
                [],
                out=sys.stdout,
                err=sys.stderr,
                dry_run=dry_run,
                quiet=True,
            )
        )
    )


@task(help={"names": "template names or globs"})
def check(c: Context, names: str = "") -> None:
    """Exit 1 when generated/ does not match the specs (the CI drift gate)."""
    from boxsmith.commands import check as command

    _finish(
        _run(
            lambda: command.run(load_settings(), _names(names), [], out=sys.stdout, err=sys.stderr)
        )
    )


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
    from boxsmith.commands import lint as command

    _finish(
        _run(
            lambda: command.run(
                load_settings(),
                _names(names),
                [],
                out=sys.stdout,
                err=sys.stderr,
                fmt=format,
                threshold=threshold,
                output=output or None,
            )
        )
    )


@task
def schema(c: Context) -> None:
    """Write the JSON Schema for spec files."""
    from boxsmith.commands import schema as command

    _finish(_run(lambda: command.run(load_settings(), None, out=sys.stdout, err=sys.stderr)))


@task(name="list", help={"json": "machine output"})
def list_(c: Context, json: bool = False) -> None:
    """Templates, versions and status from generated/index.json."""
    from boxsmith.commands import list as command

    _finish(
        _run(lambda: command.run(load_settings(), [], out=sys.stdout, err=sys.stderr, as_json=json))
    )


@task(help={"refs": "images, comma separated (default: every spec's base image)"})
def images(c: Context, refs: str = "") -> None:
    """Pull the base images the specs use, or make local stand-ins."""
    from boxsmith.commands import images as command

    settings = load_settings()
    _finish(
        _run(
            lambda: command.run(
                settings, _names(refs), out=sys.stdout, err=sys.stderr, mirrors=settings.mirrors
            )
        )
    )


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
    from boxsmith.commands import build as command

    _finish(
        _run(
            lambda: command.run(
                load_settings(),
                _names(names),
                [],
                out=sys.stdout,
                err=sys.stderr,
                jobs=jobs,
                force=force,
                allow_skip=allow_skip,
            )
        )
    )


@task(help={"names": "template names or globs", "ready_timeout": "seconds to wait for ready"})
def smoke(c: Context, names: str = "", ready_timeout: float = 600.0) -> None:
    """Run each built template's smoke checks in a local container."""
    from boxsmith.commands import smoke as command

    _finish(
        _run(
            lambda: command.run(
                load_settings(),
                _names(names),
                [],
                out=sys.stdout,
                err=sys.stderr,
                ready_timeout=ready_timeout,
            )
        )
    )


@task(help={"jobs": "builds at once"})
def main(c: Context, jobs: int = 2) -> None:
    """The main job: validate, render, check, lint, build and smoke-test the bundled templates.

    Templates that cannot build on this machine (a base image nobody can provide, a build host
    that does not answer) are reported as skipped with the reason, never as passed.
    """
    from boxsmith.commands import main as command

    _finish(_run(lambda: command.run(load_settings(), out=sys.stdout, err=sys.stderr, jobs=jobs)))


@task(name="test", help={"pytest_args": "extra pytest arguments"})
def run_tests(c: Context, pytest_args: str = "") -> None:
    """Run the whole test suite."""
    result = c.run(f"{sys.executable} -m pytest {pytest_args}", warn=True, pty=False)
    _finish(result.exited if result is not None else EXIT_INFRA)


@task
def qa(c: Context) -> None:
    """ruff (lint + format check) and mypy."""
    for command in ("ruff check .", "ruff format --check .", "mypy"):
        result = c.run(f"{sys.executable} -m {command}", warn=True)
        if result is None or result.exited:
            _finish(1)


@task
def bench(c: Context) -> None:
    """Benchmarks (figures, not gates)."""
    c.run(f"{sys.executable} benchmarks/render.py")
    c.run(f"{sys.executable} benchmarks/build.py")
    c.run(f"{sys.executable} benchmarks/backend.py")
