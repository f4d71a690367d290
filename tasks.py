"""invoke tasks: boxsmith's stages, as in any project (`boxsmith.tasks`), and this repository's
own: test, qa, bench."""

from __future__ import annotations

import sys

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

import boxsmith.tasks
from boxsmith.errors import EXIT_INFRA


def _finish(code: int | None) -> None:
    if code:
        raise Exit(code=code)


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
    for script in ("render", "build", "backend", "release"):
        c.run(f"{sys.executable} benchmarks/{script}.py")


ns = Collection.from_module(boxsmith.tasks)  # a copy: boxsmith's own stays as it ships
for dev_task in (run_tests, qa, bench):
    ns.add_task(dev_task)
