"""The main job on a project's templates: `release` to the local backend.

Render, check, lint, build on the local engine, run each new version's smoke checks in a
container of its image, publish those that passed to the bundled E2B-compatible backend (started
when it is not running), boot a sandbox of each published version, run its smoke checks again
there and move `stable` to it: only the templates that changed since the last run
(`cli/release.py`). A template that cannot build on this machine (a base image nobody can
provide, a build host that does not answer) is reported as skipped with the reason, never as
passed. The exit code is the first failing stage's (README, "Exit codes").
"""

from __future__ import annotations

from typing import TextIO

from boxsmith._internal.cli import release
from boxsmith.config import Settings

__all__ = ["run"]


def run(settings: Settings, *, out: TextIO, err: TextIO, jobs: int = 2) -> int:
    """Release every template that changed to the local backend; `jobs` local builds at once."""
    return release.run(
        settings,
        [],
        [],
        out=out,
        err=err,
        target="local",
        build_jobs=jobs,
        allow_skip=True,
    )
