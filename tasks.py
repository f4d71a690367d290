"""invoke tasks: the same stages as the CLI, calling boxsmith's commands (never a second copy).

Every task exits with boxsmith's exit codes (README, "Exit codes"): 0 ok, 1 findings or drift,
2 spec or usage error, 3 build/engine/backend/publish failure, 130 interrupted.

    invoke validate | render | check | lint | schema | list | main | test | qa | bench
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
        return EXIT_INTERRUPTED


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


@task
def main(c: Context) -> None:
    """The main job on the bundled templates: validate, render, check, lint, then a summary."""
    from boxsmith.commands import check as check_command
    from boxsmith.commands import lint as lint_command
    from boxsmith.commands import list as list_command
    from boxsmith.commands import render as render_command
    from boxsmith.commands import validate as validate_command

    settings = load_settings()
    stages: list[tuple[str, Callable[[], int]]] = [
        (
            "validate",
            lambda: validate_command.run(settings, [], [], out=sys.stderr, err=sys.stderr),
        ),
        (
            "render",
            lambda: render_command.run(
                settings, [], [], out=sys.stderr, err=sys.stderr, quiet=True
            ),
        ),
        ("check", lambda: check_command.run(settings, [], [], out=sys.stdout, err=sys.stderr)),
        ("lint", lambda: lint_command.run(settings, [], [], out=sys.stdout, err=sys.stderr)),
    ]
    results: list[tuple[str, int]] = []
    code = 0
    for name, step in stages:
        code = _run(step)
        results.append((name, code))
        if code:
            break
    print("\nsummary")
    for name, result in results:
        print(f"  {name:<9} {'ok' if result == 0 else f'failed (exit {result})'}")
    _run(lambda: list_command.run(settings, [], out=sys.stdout, err=sys.stderr))
    _finish(code)


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
