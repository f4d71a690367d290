"""The commands a release runs, as `release/stages.py` calls them: render, check, lint, build and
publish are the commands themselves, each printing its own report. The cli passes them in
(`cli/release.py`), since a stage never imports the cli.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from boxsmith.config import Settings

if TYPE_CHECKING:
    from boxsmith._internal.build.rendered import BuildUnit
    from boxsmith._internal.build.results import BuildResult
    from boxsmith._internal.publish.plan import PublishResult

__all__ = ["BuildCommand", "BuildReport", "Command", "Commands", "PublishCommand"]


class Command(Protocol):
    """A command's `run()` as a release calls it: its report on `err`, its exit code back."""

    def __call__(
        self,
        settings: Settings,
        names: Sequence[str],
        labels: Sequence[str],
        *,
        out: TextIO,
        err: TextIO,
    ) -> int: ...


class BuildCommand(Protocol):
    """`boxsmith build` on the units the plan chose: one result per unit, progress on `err`."""

    def __call__(
        self,
        settings: Settings,
        units: Sequence[BuildUnit],
        *,
        err: TextIO,
        jobs: int,
        allow_skip: bool,
    ) -> list[BuildResult]: ...


class BuildReport(Protocol):
    """`boxsmith build`'s report of those results: its exit code."""

    def __call__(self, results: Sequence[BuildResult], *, out: TextIO, err: TextIO) -> int: ...


class PublishCommand(Protocol):
    """`boxsmith publish` of the named templates; `results` receives one result per version."""

    def __call__(
        self,
        settings: Settings,
        names: Sequence[str],
        labels: Sequence[str],
        *,
        out: TextIO,
        err: TextIO,
        target: str,
        jobs: int,
        results: list[PublishResult],
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Commands:
    """The commands a release runs, each printing its own report (render: quietly, without the
    identical files)."""

    render: Command
    check: Command
    lint: Command
    build: BuildCommand
    build_report: BuildReport
    publish: PublishCommand
