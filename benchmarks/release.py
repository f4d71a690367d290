"""Wall-clock benchmark of `boxsmith release`: nothing changed, and one template changed.

The project is a copy of this repository's bundled catalog (template_specs/, generated/,
pyproject.toml) in a fresh temporary folder, released to a local backend of its own (a free
port, its data in the folder). One untimed `release --allow-skip` first releases every template
that builds here (build, publish, smoke in a sandbox, promote); the ones that cannot build here
are skipped by every run, with their reason, as in the main job.

(a) Nothing changed: `boxsmith -C <project> release --allow-skip --json`, `--repeat` times, each
    a fresh process timed with `time.perf_counter` around `subprocess.run`. Every run must
    report no image built, nothing published and no sandbox booted (its JSON: no build status
    `built`, the publish and smoke stages `skipped`), or the benchmark fails. Target: median
    under 2 s. For the ratio, the baseline is what a user runs without `release` to reach the
    same verdict: the stages as separate commands, `render`, `check`, `lint`, `build
    --allow-skip`, `publish <built>` (which answers "already published") and `smoke --target
    local <built>` (which boots a sandbox of each: it cannot know they passed before). Ratio =
    baseline / release on the medians; the rounds interleave the two.
(b) One template changed: `--changed` rounds, each bumping debian-minimal's version (1.0.1,
    1.0.2, ...) and running the same release once; the time of each stage comes from the
    release's own JSON (`stages[].seconds`), the wall time around the process. Every round must
    release that one template (built, published, smoke passed, channel moved) and leave the
    others unchanged or skipped.

Children get a private bytecode cache filled by the untimed release. At the end the benchmark
stops its backend and removes what it made: the images its backend built and the proof builds
`boxsmith/debian-minimal:1.0.<n>` of the bumped versions (never the 1.0.0 images, which the
checkout shares), unless `--keep`. The script reports and never gates: it exits 0 whatever the
figures, and 2 only when the setup fails.

    .venv/bin/python benchmarks/release.py [--repeat 5] [--changed 3] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    Conditions,
    Figure,
    SetupError,
    Watch,
    children,
    free_port,
    main_of,
    new_parser,
    run,
    verdict_lines,
)

REPO = Path(__file__).resolve().parents[1]
CHANGED = "debian-minimal"
TARGET_S = 2.0


@dataclass
class Results:
    conditions: Conditions
    templates: dict[str, str]  # name -> outcome of the first (untimed) release
    nothing: Figure
    baseline: Figure
    stage_times: dict[str, list[float]] = field(default_factory=dict)
    changed_wall: list[float] = field(default_factory=list)


class Bench:
    """The project, its backend and the commands run against it."""

    def __init__(self, args: argparse.Namespace, project: Path) -> None:
        self.args, self.project = args, project
        for part in ("template_specs", "generated"):
            shutil.copytree(REPO / part, project / part)
        shutil.copy2(REPO / "pyproject.toml", project / "pyproject.toml")
        port = free_port()
        self.box, self.env = children(args, project, {"BOXSMITH_BACKEND_PORT": str(port)})
        self.env.pop("BOXSMITH_BACKEND_DIR", None)
        self.bumped: list[str] = []

    def command(self, *args: str) -> list[str]:
        return [self.box, "-C", str(self.project), *args]

    def release(self) -> tuple[float, dict[str, Any]]:
        command = self.command("release", "--allow-skip", "--json")
        elapsed, out = run(command, self.project, self.env)
        return elapsed, json.loads(out)

    def bump(self, n: int) -> None:
        spec = self.project / "template_specs" / f"{CHANGED}.yaml"
        text, count = re.subn(
            r'^version: "[^"]*"$', f'version: "1.0.{n}"', spec.read_text(), flags=re.M
        )
        if count != 1:
            raise SetupError(f"no version line to bump in {spec}")
        spec.write_text(text)
        self.bumped.append(f"1.0.{n}")

    def clean(self) -> None:
        """Stop the backend; remove its images and the proof builds of the bumped versions."""
        import docker

        from boxsmith._internal.backend.server import backend_id, data_dir, stop

        folder = data_dir(self.project)
        stop(folder)
        if self.args.keep:
            return
        client = docker.from_env()
        backend = backend_id(folder)
        for image in client.images.list(filters={"label": f"dev.boxsmith.backend={backend}"}):
            client.images.remove(image.id, force=True)
        for version in self.bumped:
            for image in client.images.list(name=f"boxsmith/{CHANGED}:{version}"):
                client.images.remove(image.id, force=True)


def _nothing_done(report: Mapping[str, Any]) -> None:
    """SetupError unless a release built, published and booted nothing."""
    stages = {s["name"]: s["status"] for s in report["stages"]}
    built = [t["name"] for t in report["templates"] if t["build"] == "built"]
    if built or stages["publish"] != "skipped" or stages["smoke"] != "skipped":
        raise SetupError(
            f"a no-change release did work: built {built}, publish {stages['publish']}, "
            f"smoke {stages['smoke']}"
        )


def _one_released(report: Mapping[str, Any], version: str) -> None:
    rows = {t["name"]: t for t in report["templates"]}
    row = rows[CHANGED]
    if (row["version"], row["smoke"], row["channel"]) != (version, "passed", f"-> {version}"):
        raise SetupError(f"{CHANGED}:{version} was not released: {row}")
    others = [t for t in report["templates"] if t["name"] != CHANGED and t["build"] == "built"]
    if others:
        raise SetupError(f"templates that did not change were built: {others}")


def measure(bench: Bench) -> Results:
    args = bench.args
    watch = Watch(bench.env)
    with watch.noting_edits():
        _, first = bench.release()  # untimed: releases what builds here, fills the caches
        outcomes = {t["name"]: _outcome(t) for t in first["templates"]}
        built = sorted(t["name"] for t in first["templates"] if t["smoke"] == "passed")
        if not built:
            raise SetupError(f"the first release released nothing: {outcomes}")
        for _ in range(args.warmup):
            _nothing_done(bench.release()[1])
        nothing = Figure("release, nothing changed", bench.command("release", "--allow-skip"))
        steps = [
            ["render"],
            ["check"],
            ["lint"],
            ["build", "--allow-skip"],
            ["publish", *built],
            ["smoke", "--target", "local", *built],
        ]
        by_hand = " && ".join(shlex.join(bench.command(*step)) for step in steps)
        baseline = Figure("the stages by hand", ["sh", "-c", by_hand])
        for _ in range(args.repeat):
            elapsed, report = bench.release()
            _nothing_done(report)
            nothing.times.append(elapsed)
            total = 0.0
            for step in steps:
                total += run(bench.command(*step), bench.project, bench.env)[0]
            baseline.times.append(total)
        results = Results(watch.conditions(), outcomes, nothing, baseline)
        for n in range(1, args.changed + 1):
            bench.bump(n)
            elapsed, report = bench.release()
            _one_released(report, f"1.0.{n}")
            results.changed_wall.append(elapsed)
            for stage in report["stages"]:
                results.stage_times.setdefault(stage["name"], []).append(stage["seconds"])
        results.conditions = watch.conditions()
    return results


def _outcome(row: Mapping[str, Any]) -> str:
    if row["smoke"] == "passed":
        return "released"
    return f"{row['build']}: {row['reason']}" if row["reason"] else row["build"]


def targets(res: Results) -> list[dict[str, Any]]:
    return [
        {
            "name": "release with nothing changed (bundled catalog) under 2 s",
            "value": round(res.nothing.median, 3),
            "unit": "s",
            "pass": res.nothing.median < TARGET_S,
            "note": "no image built, nothing published, no sandbox (checked on every run)",
        }
    ]


def as_json(res: Results) -> dict[str, Any]:
    return {
        "conditions": res.conditions.as_json(),
        "templates": res.templates,
        "nothing_changed": res.nothing.as_json(),
        "baseline_stages_by_hand": res.baseline.as_json(),
        "ratio_baseline_over_release": round(res.baseline.median / res.nothing.median, 2),
        "one_changed": {
            "template": CHANGED,
            "wall_s": [round(t, 3) for t in res.changed_wall],
            "stages_median_s": {
                name: round(statistics.median(times), 3) for name, times in res.stage_times.items()
            },
        },
        "targets": targets(res),
    }


def as_table(res: Results) -> str:
    lines = res.conditions.table_head(
        "boxsmith release",
        "bundled catalog, local backend",
        f"{len(res.nothing.times)} rounds",
    )
    lines += ["", "templates (first release):"]
    lines += [f"  {name:<22} {outcome}" for name, outcome in res.templates.items()]
    ratio = res.baseline.median / res.nothing.median
    lines += [
        "",
        "(a) nothing changed                      median     best",
        f"  release --allow-skip               {res.nothing.median:8.3f} s "
        f"{res.nothing.best:8.3f} s",
        f"  the stages by hand (6 commands)    {res.baseline.median:8.3f} s "
        f"{res.baseline.best:8.3f} s",
        f"  ratio (by hand / release)          {ratio:8.2f}x",
        "",
        f"(b) one template changed ({CHANGED}, {len(res.changed_wall)} rounds), median per stage",
    ]
    for name, times in res.stage_times.items():
        lines.append(f"  {name:<10} {statistics.median(times):8.3f} s")
    if res.changed_wall:
        lines.append(f"  {'wall':<10} {statistics.median(res.changed_wall):8.3f} s")
    lines += ["", *verdict_lines(targets(res), lambda t: f"median {t['value']:.3f} s")]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of (a) (default 5)")
    parser.add_argument("--changed", type=int, default=3, help="rounds of (b) (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the folder and the images")
    parser.add_argument(
        "--tmp-dir", type=Path, default=None, help="where the folder goes (default: system temp)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.changed < 0 or args.warmup < 0:
        parser.error("--repeat must be at least 1, --changed and --warmup at least 0")
    return args


def measure_in(args: argparse.Namespace, project: Path) -> Results:
    bench = Bench(args, project)
    start = time.monotonic()
    try:
        return measure(bench)
    finally:
        bench.clean()
        sys.stderr.write(f"benchmark took {time.monotonic() - start:.0f} s\n")


def main(argv: Sequence[str] | None = None) -> int:
    return main_of(
        parse_args(argv), measure_in, as_json, as_table, prefix="boxsmith-bench-release-"
    )


if __name__ == "__main__":
    sys.exit(main())
