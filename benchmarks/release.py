"""Wall-clock benchmark of `boxsmith release`: nothing changed, and one template changed.

The project is a copy of this repository's bundled catalog (template_specs/, generated/,
pyproject.toml) in a fresh temporary folder, released to a local backend of its own (a free
port, its data in the folder). One untimed `release --allow-skip` first releases every template
that builds here (build, smoke in a container, publish, smoke in a sandbox, promote); the ones
that cannot build here are skipped by every run, with their reason, as in the main job.

(a) Nothing changed: `boxsmith -C <project> release --allow-skip --json`, `--repeat` times, each
    a fresh process timed with `time.perf_counter` around `subprocess.run`. Every run must
    report no image built, nothing published and no container or sandbox booted (its JSON: no
    build status `built`; the smoke-container, publish and smoke-sandbox stages `skipped`), or
    the benchmark fails. Target: median under 2 s. Two baselines, each a sequence of separate
    `boxsmith` commands, timed in the same rounds (interleaved with the release):
    - the same work: `render`, `check`, `build --allow-skip` and `publish <released>` with
      nothing to do (every image cached, every version "already published"). A no-change
      release does this work and no more: it boots no sandbox. Ratio = this / release.
    - the earlier baseline, kept for comparison with older figures: the same plus `lint` and
      `smoke --target local <released>`, which boots a sandbox of each (by hand a user cannot
      know they passed before). That is more work than the release does; its ratio is shown
      beside, not judged.
(b) One template changed: `--changed` rounds, each bumping debian-minimal's version (1.0.1,
    1.0.2, ...) and running the same release once; the time of each stage comes from the
    release's own JSON (`stages[].seconds`), the wall time around the process. Every round must
    release that one template (built, passed in a container, published, passed in a sandbox,
    channel moved) and leave the others unchanged or skipped.

(c) With `--first`: a first release instead, of the bundled catalog into a fresh project and a
    fresh backend, the engine's cache cold for both builds of each template (every spec gets an
    env variable with a per-run nonce, which changes its first layer: neither the proof build
    nor the backend's build can use an earlier run's layers). Reported: the build and publish
    stages' seconds (the release's JSON) and publish/build; target: at most 0.10. With
    `--before-src <checkout>/src` the same runs first with that code (PYTHONPATH), in its own
    fresh project, nonce and backend. Each run's backend is reset and its proof images removed.

Children get a private bytecode cache filled by the untimed release. At the end the benchmark
runs `boxsmith backend reset --yes` in the project (stops its backend, removes the images and
containers it made, clears its data) and removes the proof builds of debian-minimal 1.0.<n>
of the bumped versions (never the 1.0.0 images, which the checkout shares); with `--keep` it
only stops the backend. The script reports and never gates: it exits 0 whatever the figures,
and 2 only when the setup fails. Reports: stdout and benchmarks/out/.

    .venv/bin/python benchmarks/release.py [--repeat 5] [--changed 3] [--json] [--keep]
    .venv/bin/python benchmarks/release.py --first [--before-src /tmp/old/src]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from catalog import copy_bundled, remove_images
from common import (
    Conditions,
    Figure,
    Goal,
    SetupError,
    Watch,
    at_least,
    children,
    figure_head,
    figure_row,
    free_port,
    main_of,
    new_parser,
    run,
    template_image,
    verdict_lines,
)

CHANGED = "debian-minimal"
TARGET_S = 2.0
FIRST_RATIO = 0.10  # publish stage / build stage of a first release


@dataclass
class Results:
    conditions: Conditions
    templates: dict[str, str]  # name -> outcome of the first (untimed) release
    nothing: Figure
    same_work: Figure  # render, check, build, publish by hand
    earlier: Figure  # the same plus lint and smoke (boots sandboxes)
    stage_times: dict[str, list[float]] = field(default_factory=dict)
    changed_wall: list[float] = field(default_factory=list)


class Bench:
    """The project, its backend and the commands run against it."""

    def __init__(self, args: argparse.Namespace, project: Path) -> None:
        self.args, self.project = args, project
        copy_bundled(project)
        port = free_port()
        self.box, self.env = children(args, project, {"BOXSMITH_BACKEND_PORT": str(port)})
        self.env.pop("BOXSMITH_BACKEND_DIR", None)
        self.bumped: list[str] = []

    def command(self, *args: str) -> list[str]:
        return [self.box, "-C", str(self.project), *args]

    def release(self) -> tuple[float, dict[str, Any]]:
        """(seconds, JSON report) of one `release --allow-skip --json`."""
        command = self.command("release", "--allow-skip", "--json")
        elapsed, out = run(command, self.project, self.env)
        return elapsed, json.loads(out)

    def by_hand(self, steps: Sequence[Sequence[str]]) -> float:
        """Seconds of `steps`, each a `boxsmith` command in a fresh process, one after another."""
        return sum(run(self.command(*step), self.project, self.env)[0] for step in steps)

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
        """Stop the backend; unless --keep, reset it (its images and containers go) and remove
        the proof builds of the bumped versions."""
        last = ["backend", "stop"] if self.args.keep else ["backend", "reset", "--yes"]
        try:
            run(self.command(*last), self.project, self.env)
        except SetupError as exc:
            sys.stderr.write(f"clean-up: {exc}\n")
        if not self.args.keep:
            remove_images([template_image(self.project, CHANGED, v) for v in self.bumped])


def _nothing_done(report: Mapping[str, Any]) -> None:
    """SetupError unless a release built, published and booted nothing."""
    stages = {s["name"]: s["status"] for s in report["stages"]}
    built = [t["name"] for t in report["templates"] if t["build"] == "built"]
    booted = [stages[s] for s in ("smoke-container", "smoke-sandbox")]
    if built or stages["publish"] != "skipped" or booted != ["skipped", "skipped"]:
        raise SetupError(
            f"a no-change release did work: built {built}, publish {stages['publish']}, "
            f"smoke-container {booted[0]}, smoke-sandbox {booted[1]}"
        )


def _one_released(report: Mapping[str, Any], version: str) -> None:
    rows = {t["name"]: t for t in report["templates"]}
    row = rows[CHANGED]
    proven = (row["smoke_container"], row["smoke_sandbox"])
    if (row["version"], *proven, row["channel"]) != (version, "passed", "passed", f"-> {version}"):
        raise SetupError(f"{CHANGED}:{version} was not released: {row}")
    others = [t for t in report["templates"] if t["name"] != CHANGED and t["build"] == "built"]
    if others:
        raise SetupError(f"templates that did not change were built: {others}")


def _steps(released: Sequence[str]) -> tuple[list[list[str]], list[list[str]]]:
    """The by-hand baselines: the same work as a no-change release, and the earlier one."""
    same = [["render"], ["check"], ["build", "--allow-skip"], ["publish", *released]]
    earlier = [*same[:2], ["lint"], *same[2:], ["smoke", "--target", "local", *released]]
    return same, earlier


def _figure(bench: Bench, label: str, steps: Sequence[Sequence[str]]) -> Figure:
    line = " && ".join(shlex.join(bench.command(*step)) for step in steps)
    return Figure(label, ["sh", "-c", line])


def measure(bench: Bench) -> Results:
    args = bench.args
    watch = Watch(bench.env)
    with watch.noting_edits():
        _, first = bench.release()  # untimed: releases what builds here, fills the caches
        outcomes = {t["name"]: _outcome(t) for t in first["templates"]}
        released = sorted(t["name"] for t in first["templates"] if t["smoke_sandbox"] == "passed")
        if not released:
            raise SetupError(f"the first release released nothing: {outcomes}")
        same, earlier = _steps(released)
        for _ in range(args.warmup):
            _nothing_done(bench.release()[1])
            bench.by_hand(earlier)
        command = bench.command("release", "--allow-skip", "--json")
        nothing = Figure("release --allow-skip", command)
        results = Results(
            watch.conditions(),
            outcomes,
            nothing,
            _figure(bench, f"same work by hand ({len(same)} commands)", same),
            _figure(bench, f"earlier baseline ({len(earlier)} commands)", earlier),
        )
        for _ in range(args.repeat):
            elapsed, report = bench.release()
            _nothing_done(report)
            nothing.times.append(elapsed)
            results.same_work.times.append(bench.by_hand(same))
            results.earlier.times.append(bench.by_hand(earlier))
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
    if row["smoke_sandbox"] == "passed":
        return "released"
    return f"{row['build']}: {row['reason']}" if row["reason"] else row["build"]


def goals(res: Results) -> list[Goal]:
    return [
        Goal(
            f"release with nothing changed (bundled catalog) under {TARGET_S:g} s",
            res.nothing.median,
            "s",
            TARGET_S,
            res.nothing.median < TARGET_S,
            "no image built, nothing published, no sandbox (checked on every run)",
        )
    ]


def as_json(res: Results) -> dict[str, Any]:
    return {
        "conditions": res.conditions.as_json(),
        "templates": res.templates,
        "nothing_changed": res.nothing.as_json(),
        "same_work_by_hand": res.same_work.as_json(),
        "earlier_baseline_by_hand": res.earlier.as_json(),
        "ratio_same_work_over_release": round(res.same_work.median / res.nothing.median, 2),
        "ratio_earlier_baseline_over_release": round(res.earlier.median / res.nothing.median, 2),
        "one_changed": {
            "template": CHANGED,
            "wall_s": [round(t, 3) for t in res.changed_wall],
            "stages_median_s": {
                name: round(statistics.median(times), 3) for name, times in res.stage_times.items()
            },
        },
        "targets": [t.as_json() for t in goals(res)],
    }


def as_table(res: Results) -> str:
    lines = res.conditions.table_head(
        "boxsmith release",
        "bundled catalog, local backend",
        f"{len(res.nothing.times)} rounds",
    )
    lines += ["", "templates (first release):"]
    lines += [f"  {name:<22} {outcome}" for name, outcome in res.templates.items()]

    def ratio(figure: Figure) -> str:
        return f"{figure.median / res.nothing.median:.2f}x the release"

    lines += [
        "",
        figure_head("(a) nothing changed", 44),
        figure_row(res.nothing.label, res.nothing, 44),
        figure_row(res.same_work.label, res.same_work, 44, ratio(res.same_work)),
        figure_row(res.earlier.label, res.earlier, 44, ratio(res.earlier)),
        "  same work: render, check, build --allow-skip, publish <released> (nothing to do)",
        "  earlier baseline: the same plus lint and smoke --target local <released>, which boots",
        "  a sandbox of each: more work than a no-change release does (it boots none)",
        "",
        f"(b) one template changed ({CHANGED}, {len(res.changed_wall)} rounds), median per stage",
    ]
    for name, times in res.stage_times.items():
        lines.append(f"  {name:<10} {statistics.median(times):8.3f} s")
    if res.changed_wall:
        lines.append(f"  {'wall':<10} {statistics.median(res.changed_wall):8.3f} s")
    lines += ["", *verdict_lines(goals(res))]
    return "\n".join(lines)


def _nonced(project: Path, nonce: str) -> None:
    """Each spec sets BOXSMITH_BENCH_NONCE: its first layer (ENV) is new to the engine."""
    for spec in sorted((project / "template_specs").glob("*.yaml")):
        data = yaml.safe_load(spec.read_text())
        data.setdefault("env", {})["BOXSMITH_BENCH_NONCE"] = nonce
        spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def first_release(args: argparse.Namespace, project: Path, src: str | None) -> dict[str, Any]:
    """Stage seconds of one first release in a fresh project (code from `src` when given)."""
    copy_bundled(project)
    _nonced(project, uuid.uuid4().hex)
    extra = {"BOXSMITH_BACKEND_PORT": str(free_port()), **({"PYTHONPATH": src} if src else {})}
    box, env = children(args, project, extra)
    env.pop("BOXSMITH_BACKEND_DIR", None)
    report: dict[str, Any] = {"templates": []}
    try:
        run([box, "-C", str(project), "render"], project, env)
        elapsed, out = run(
            [box, "-C", str(project), "release", "--allow-skip", "--json"], project, env
        )
        report = json.loads(out)
    finally:
        try:
            run([box, "-C", str(project), "backend", "reset", "--yes"], project, env)
        except SetupError as exc:
            sys.stderr.write(f"clean-up: {exc}\n")
        rows = report["templates"]
        remove_images([template_image(project, t["name"], t["version"]) for t in rows])
    stages = {stage["name"]: stage["seconds"] for stage in report["stages"]}
    return {
        "code": src or "this checkout",
        "templates": {t["name"]: _outcome(t) for t in report["templates"]},
        "build_s": round(stages["build"], 1),
        "publish_s": round(stages["publish"], 1),
        "ratio": round(stages["publish"] / stages["build"], 3),
        "wall_s": round(elapsed, 1),
    }


def measure_first(args: argparse.Namespace, project: Path) -> list[dict[str, Any]]:
    runs = [("before", args.before_src)] if args.before_src else []
    results = []
    for label, src in [*runs, ("after", None)]:
        (project / label).mkdir()
        results.append({"run": label, **first_release(args, project / label, src)})
        sys.stderr.write(f"{label}: {results[-1]}\n")
    return results


def first_json(results: list[dict[str, Any]]) -> dict[str, Any]:
    after = results[-1]
    target = f"first release: publish stage at most {FIRST_RATIO:g} x the build stage"
    met = after["ratio"] <= FIRST_RATIO
    return {"runs": results, "targets": [{"target": target, "value": after["ratio"], "met": met}]}


def first_table(results: list[dict[str, Any]]) -> str:
    lines = ["boxsmith release, first release (bundled catalog, cold engine cache per run)", ""]
    lines.append(f"  {'run':<8} {'build s':>8} {'publish s':>10} {'publish/build':>14}  code")
    for r in results:
        row = f"{r['build_s']:8.1f} {r['publish_s']:10.1f} {r['ratio']:14.3f}"
        lines.append(f"  {r['run']:<8} {row}  {r['code']}")
    lines += ["", "templates (after):"]
    lines += [f"  {name:<22} {outcome}" for name, outcome in results[-1]["templates"].items()]
    verdict = "PASS" if results[-1]["ratio"] <= FIRST_RATIO else "FAIL"
    return "\n".join([*lines, "", f"{verdict}: publish/build at most {FIRST_RATIO:g}"])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    parser.add_argument("--first", action="store_true", help="(c): a first release, cold cache")
    parser.add_argument("--before-src", default=None, help="with --first: old code's src/ too")
    parser.add_argument("--repeat", type=at_least(1), default=5, help="rounds of (a) (default 5)")
    parser.add_argument("--changed", type=at_least(0), default=3, help="rounds of (b) (default 3)")
    return parser.parse_args(argv)


def measure_in(args: argparse.Namespace, project: Path) -> Results:
    bench = Bench(args, project)
    start = time.monotonic()
    try:
        return measure(bench)
    finally:
        bench.clean()
        sys.stderr.write(f"benchmark took {time.monotonic() - start:.0f} s\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.first:
        return main_of(args, measure_first, first_json, first_table, name="release-first")
    return main_of(args, measure_in, as_json, as_table, name="release")


if __name__ == "__main__":
    sys.exit(main())
