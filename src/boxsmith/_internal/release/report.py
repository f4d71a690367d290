"""The record of one `boxsmith release`: its stages, its templates and how far each went,
printed as two tables or as `--json` (`release/stages.py` runs the release)."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from boxsmith._internal.progress import table
from boxsmith.errors import EXIT_OK

__all__ = ["STAGES", "Release", "Row", "Stage", "counts", "markdown", "summary"]


@dataclass(slots=True)
class Stage:
    """One stage of the release: `ok`, `failed`, `skipped` (nothing to do) or `not run`."""

    name: str
    status: str = "not run"
    exit_code: int = 0
    seconds: float = 0.0
    detail: str = ""


@dataclass(slots=True)
class Row:
    """One template of the release and how far it went."""

    name: str
    version: str
    change: str  # new, unverified, released
    build: str = "-"
    smoke_container: str = "-"
    publish: str = "-"
    smoke_sandbox: str = "-"
    channel: str = "-"
    reason: str = ""

    @property
    def ref(self) -> str:
        """`name:version`."""
        return f"{self.name}:{self.version}"

    def cells(self) -> tuple[str, ...]:
        """The templates table's row: name, version, change, each stage's status, channel."""
        return (
            self.name,
            self.version,
            self.change,
            self.build,
            self.smoke_container,
            self.publish,
            self.smoke_sandbox,
            self.channel,
        )

    @property
    def outcome(self) -> str:
        """released (now), unchanged (before), skipped (cannot build here), failed or not run
        (a stage before it stopped the release)."""
        if self.change == "released":
            return "unchanged"
        if self.smoke_sandbox == "passed":
            return "released"
        if self.build == "skipped":
            return "skipped"
        stages = (self.build, self.smoke_container, self.publish, self.smoke_sandbox)
        return "not run" if all(s in ("-", "left out") for s in stages) else "failed"


@dataclass(slots=True)
class Release:
    """The whole release, as `--json` prints it."""

    target: str
    channel: str
    stages: list[Stage] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The first failing stage's code."""
        return next((s.exit_code for s in self.stages if s.exit_code), EXIT_OK)

    def stage(self, name: str) -> Stage:
        """The stage called `name` (made on first use, in pipeline order)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        self.stages.append(Stage(name))
        return self.stages[-1]

    def to_json(self) -> dict[str, Any]:
        """Plain mapping for `--json` output."""
        return {
            "target": self.target,
            "channel": self.channel,
            "exit_code": self.exit_code,
            "stages": [{**asdict(s), "seconds": round(s.seconds, 3)} for s in self.stages],
            "templates": [asdict(r) for r in self.rows],
        }


# The order with a local build; with `--no-build`, smoke-container is left out (skipped).
STAGES = (
    "render",
    "check",
    "plan",
    "lint",
    "build",
    "smoke-container",
    "publish",
    "smoke-sandbox",
)
# The templates table's columns (`Row.cells`) before the channel's.
_COLUMNS = ("template", "version", "change", "build", "smoke-container", "publish", "smoke-sandbox")


def counts(statuses: Iterable[str]) -> str:
    """`2 built, 1 skipped`: how many of each, in order of first appearance."""
    seen = collections.Counter(statuses)
    return ", ".join(f"{n} {status}" for status, n in seen.items())


def summary(release: Release, out: TextIO) -> None:
    """The stages table and the templates table (with each template's reason below)."""
    out.write(f"\nrelease to {release.target} (channel {release.channel})\n")
    out.write(
        table(
            ("stage", "status", "time", "detail"),
            [
                (
                    s.name,
                    s.status if s.exit_code == 0 else f"failed (exit {s.exit_code})",
                    f"{s.seconds:.2f}s" if s.status != "not run" else "-",
                    s.detail,
                )
                for s in release.stages
            ],
            right=(2,),
        )
    )
    if release.rows:
        out.write("\n")
        out.write(table((*_COLUMNS, release.channel), [r.cells() for r in release.rows]))
        for row in release.rows:
            if row.reason:
                out.write(f"  {row.ref}: {row.reason.splitlines()[0]}\n")


def markdown(release: Release) -> str:
    """The release as a GitHub job summary: verdict, templates table, stage times."""
    code = release.exit_code
    verdict = "ok" if code == 0 else f"failed (exit {code})"
    lines = [
        f"### boxsmith release to {release.target}: {verdict}",
        "",
        "| " + " | ".join((*_COLUMNS, release.channel)) + " |",
        "|" + "---|" * (len(_COLUMNS) + 1),
    ]
    lines += ["| " + " | ".join((f"`{r.name}`", *r.cells()[1:])) + " |" for r in release.rows]
    reasons = [f"- `{r.ref}`: {r.reason.splitlines()[0]}" for r in release.rows if r.reason]
    if reasons:
        lines += ["", *reasons]
    times = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in release.stages if s.status != "not run")
    lines += ["", f"Stages: {times}"]
    return "\n".join(lines) + "\n"
