"""Wall-clock benchmark of a no-change `boxsmith build` and of `boxsmith smoke --local`.

Every figure is one command run in a new process, as a user would run it, timed with
`time.perf_counter` around `subprocess.run`; best and median over the repeats are reported.

(a) A no-change `boxsmith -C <project> build` of `--count` templates (default 10), all built
    before. boxsmith answers it from its build record (.boxsmith/build-record.json: a digest of
    the project plus one request per image on the engine's socket), without looking at any
    build step. Two comparisons, because they answer two questions:
    - what a user would otherwise run: a loop of `docker build -q -f
      generated/<name>/1.0.0/e2b.Dockerfile -t bench-baseline/<name> generated/<name>/1.0.0`
      over the same templates with a warm cache (the docker CLI, one process per template,
      the legacy builder like boxsmith: DOCKER_BUILDKIT=0). This is not the same work: the
      loop sends each context and walks each step's cache, the record skips all of that.
      Ratio = loop / boxsmith on the medians; target: boxsmith at least 10x faster.
    - the same work: `BOXSMITH_NO_CACHE=1 boxsmith build`, which bypasses the record and runs
      boxsmith's full up-to-date check of the same templates against the engine (the parity
      base of each base image, each template's build key against its image's label). Reported
      beside the loop, with its own ratio; no target.
    Every boxsmith run must report all templates `cached` and every docker build must return
    the image id of its warm-up build (a cache hit); the benchmark fails loudly otherwise.
(b) `boxsmith -C <project> smoke --local <first> --report FILE` (two checks, a command and a
    file). Overhead = wall time minus the checks' own `seconds` from the report, split into
    interpreter + import (`python -c "import <smoke command module>"` timed in the same round),
    container start + ready (the suite's `seconds` minus its checks) and the rest (catalog,
    engine connection, teardown, reports, exit); each part is a median over the runs, so the
    parts need not add up to the median overhead. Target: overhead under 1 s. For context, the
    same by hand through the docker CLI: `docker run -d --init` + one `docker exec` per check +
    `docker rm -f`.

Both parts are also split in-process (a child `python -c` calling boxsmith's library the way
the command does, each phase timed; benchmarks/internals.py): where the full no-change check
and a smoke run spend their time. Repeats of the compared commands are interleaved, so load
changes on a shared machine hit all of them.

The project is a fresh temporary folder of `--count` small specs (benchmarks/catalog.py),
rendered and built once before timing, on a private tag `bench-base/<base>:bench` of `--base`
(same image id). Children get a private bytecode cache filled by an untimed warm-up. At the end
the benchmark removes what it made: the containers of its smoke runs (it counts any that
boxsmith left behind), the images `boxsmith/bench-NN:1.0.0`, `bench-baseline/bench-NN`, the
private base and its parity base, unless `--keep` (which keeps the project too).

Verdicts (PASS/FAIL) compare medians with the targets. The script reports and never gates: it
exits 0 whatever the figures, and 2 only when the setup fails (no engine, a command exits
non-zero, a build that should be cached is not). Reports: stdout and benchmarks/out/.

    .venv/bin/python benchmarks/build.py [--count 10] [--repeat 5] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import (
    VERSION,
    parity_images,
    private_base,
    remove_images,
    template_names,
    write_buildable,
)
from common import (
    NO_CACHE,
    Conditions,
    Figure,
    Goal,
    SetupError,
    Watch,
    at_least,
    children,
    figure_head,
    figure_row,
    main_of,
    new_parser,
    run,
    template_image,
    verdict_lines,
)
from internals import BUILD_PHASES, IMPORTS, SMOKE_PHASES

TARGET_RATIO = 10.0  # (a): no-change boxsmith build at least this much faster than the loop
TARGET_COUNT = 10  # the template count the (a) target is stated for
TARGET_SMOKE_OVERHEAD_S = 1.0  # (b): smoke --local wall time beyond the checks' own
BASELINE_REPO = "bench-baseline"
REST = "rest (catalog, engine, teardown, reports, exit)"
RUN_LABEL = "dev.boxsmith.bench-run"  # on the CLI baseline's containers


@dataclass
class Phases:
    """Seconds per named phase over the repeats (in-process breakdowns, smoke parts)."""

    runs: list[dict[str, float]] = field(default_factory=list)
    error: str = ""

    def median(self, name: str) -> float:
        return statistics.median(run[name] for run in self.runs)

    def names(self) -> list[str]:
        return list(self.runs[0]) if self.runs else []

    def as_json(self) -> dict[str, Any]:
        if not self.runs:
            return {"error": self.error or "not measured"}
        return {name: round(self.median(name), 4) for name in self.names()}


@dataclass
class Results:
    count: int
    names: list[str]
    base: str
    base_id: str
    repeat: int
    repeat_baseline: int
    repeat_smoke: int
    conditions: Conditions
    docker: str
    baselines: list[Figure]
    build: Figure  # answered from the build record
    full: Figure  # BOXSMITH_NO_CACHE=1: the full up-to-date check, no record
    loop: Figure
    build_phases: Phases
    build_seconds: list[float]  # boxsmith's own per-template `seconds` (median run, summed)
    smoke: Figure
    smoke_parts: Phases  # per run: checks, overhead, import, start + ready, rest
    smoke_phases: Phases
    cli: Phases  # docker CLI baseline: run -d, exec x2, rm -f, total, overhead
    leftover_containers: int


class Bench:
    """One benchmark run: the project, the environment, and what it made (for the clean-up)."""

    def __init__(self, args: argparse.Namespace, project: Path) -> None:
        self.args = args
        self.project = project
        # DOCKER_BUILDKIT=0: the docker CLI's builder, the legacy one, as boxsmith's
        self.box, self.env = children(args, project, {"DOCKER_BUILDKIT": "0"})
        self.names = template_names(args.count)
        self.private_base = private_base(args.base, "bench")
        self.run_id = uuid.uuid4().hex[:12]
        self.images: list[str] = []  # template and baseline tags, removed at the end
        self.leftovers = 0  # containers found after boxsmith exited (there should be none)
        self.base_id = ""
        self.baseline_ids: dict[str, str] = {}  # warm-up image id per template (cache hits)
        self.last_build_seconds: list[float] = []  # boxsmith's own per-template seconds

    # -- helpers ---------------------------------------------------------------------------

    def boxsmith(self, *args: str) -> list[str]:
        return [self.box, "-C", str(self.project), *args]

    def do(self, command: Sequence[str]) -> tuple[float, str]:
        return run(command, self.project, self.env)

    def folder(self, name: str) -> str:
        return f"generated/{name}/{VERSION}"

    def docker_build(self, name: str) -> list[str]:
        folder = self.folder(name)
        tag = f"{BASELINE_REPO}/{name}"
        return ["docker", "build", "-q", "-f", f"{folder}/e2b.Dockerfile", "-t", tag, folder]

    def build_statuses(self, out: str) -> list[str]:
        try:
            return [b["status"] for b in json.loads(out)["builds"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise SetupError(f"`boxsmith build --json` printed no build list: {out[:500]}") from exc

    # -- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        """Engine check, private base tag, project, render, first build, baseline warm-up."""
        _, base_id = self.do(["docker", "image", "inspect", "--format", "{{.Id}}", self.args.base])
        self.base_id = base_id.strip()
        self.do(["docker", "tag", self.args.base, self.private_base])
        self.images = [template_image(self.project, n, VERSION) for n in self.names]
        self.images += [f"{BASELINE_REPO}/{n}" for n in self.names]
        write_buildable(self.project, self.names, self.private_base)
        self.do(self.boxsmith("render"))
        _, out = self.do(self.boxsmith("build", "--json"))  # first build: untimed
        statuses = self.build_statuses(out)
        if len(statuses) != len(self.names) or any(s not in ("built", "cached") for s in statuses):
            raise SetupError(f"the first `boxsmith build` did not build every template: {statuses}")
        for name in self.names:  # warms the docker cache for the loop
            _, out = self.do(self.docker_build(name))
            self.baseline_ids[name] = out.strip()

    # -- (a) ---------------------------------------------------------------------------------

    def time_build(self, figure: Figure) -> float:
        """One run of `figure` (a no-change `boxsmith build --json`); all must be cached."""
        elapsed, out = run(figure.command, self.project, self.env, figure.extra_env)
        statuses = self.build_statuses(out)
        if statuses != ["cached"] * len(self.names):
            raise SetupError(
                f"a no-change `boxsmith build` did not report {len(self.names)} cached: "
                f"{statuses} (did something rebuild the parity base or change the images?)"
            )
        if figure.extra_env:  # the full check: boxsmith's own seconds per template
            self.last_build_seconds = [b["seconds"] for b in json.loads(out)["builds"]]
        return elapsed

    def time_loop(self) -> float:
        start = time.perf_counter()
        ids = {name: self.do(self.docker_build(name))[1].strip() for name in self.names}
        elapsed = time.perf_counter() - start
        missed = [n for n in self.names if ids[n] != self.baseline_ids[n]]
        if missed:
            raise SetupError(f"docker build missed its warm cache for {', '.join(missed)}")
        return elapsed

    def build_phases(self) -> dict[str, float]:
        _, out = self.do([sys.executable, "-c", BUILD_PHASES, str(self.project)])
        data = json.loads(out)
        if data["statuses"] != ["cached"] * len(self.names):
            raise SetupError(f"in-process no-change build was not all cached: {data['statuses']}")
        return {k: float(v) for k, v in data["phases"].items()}

    # -- (b) ---------------------------------------------------------------------------------

    def time_smoke(self, name: str) -> tuple[float, dict[str, float]]:
        """Wall time of one `smoke --local` and its parts (import is filled in later)."""
        report = self.project / "smoke-report.json"
        report.unlink(missing_ok=True)
        elapsed, _ = self.do(self.boxsmith("smoke", "--local", name, "--report", str(report)))
        self.count_leftovers(f"dev.boxsmith.template={name}:{VERSION}")
        data = json.loads(report.read_text(encoding="utf-8"))
        (suite,) = data["suites"]
        if suite["status"] != "passed":
            raise SetupError(f"smoke of {name} did not pass: {json.dumps(suite)[:1500]}")
        checks = sum(float(c["seconds"]) for c in suite["checks"])
        return elapsed, {
            "checks": checks,
            "overhead": elapsed - checks,
            "start + ready": float(suite["seconds"]) - checks,
            "suite": float(suite["seconds"]),
        }

    def smoke_phases(self, name: str) -> dict[str, float]:
        _, out = self.do([sys.executable, "-c", SMOKE_PHASES, str(self.project), name])
        self.count_leftovers(f"dev.boxsmith.template={name}:{VERSION}")
        data = json.loads(out)
        if not data["ready"] or any(s != "passed" for s in data["statuses"]):
            raise SetupError(f"in-process smoke of {name} did not pass: {data}")
        return {k: float(v) for k, v in data["phases"].items()}

    def cli_smoke(self, name: str) -> dict[str, float]:
        """`docker run -d` + one `docker exec` per check + `docker rm -f`, as a user would."""
        image = template_image(self.project, name, VERSION)
        as_user = ["-u", "user", "-w", "/home/user"]
        start = time.perf_counter()
        label = f"{RUN_LABEL}={self.run_id}"
        t_run, out = self.do(
            ["docker", "run", "-d", "--init", "--label", label, image, "sleep", "infinity"]
        )
        container = out.strip()
        try:
            t_cat, _ = self.do(["docker", "exec", *as_user, container, "cat", "/opt/n.txt"])
            t_file, _ = self.do(
                ["docker", "exec", *as_user, container, "test", "-e", "/opt/run.txt"]
            )
        finally:
            t_rm, _ = self.do(["docker", "rm", "-f", container])
        total = time.perf_counter() - start
        return {
            "docker run -d": t_run,
            "docker exec (2 checks)": t_cat + t_file,
            "docker rm -f": t_rm,
            "total": total,
            "overhead": total - t_cat - t_file,
        }

    # -- clean-up ----------------------------------------------------------------------------

    def containers(self, label: str) -> list[str]:
        _, out = self.do(["docker", "ps", "-aq", "--filter", f"label={label}"])
        return out.split()

    def count_leftovers(self, label: str) -> None:
        """Containers boxsmith left behind (there should be none); removed, and counted."""
        left = self.containers(label)
        self.leftovers += len(left)
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)

    def clean(self) -> None:
        """Remove this run's containers and images; what cannot be removed is only reported."""
        labels = [f"{RUN_LABEL}={self.run_id}"]
        labels += [f"dev.boxsmith.template={n}:{VERSION}" for n in self.names]
        for label in labels:
            try:
                self.count_leftovers(label)
            except SetupError as exc:
                sys.stderr.write(f"clean-up: {exc}\n")
        # the templates, then the parity bases made on the private base, then the private base
        remove_images([*self.images, *parity_images(self.private_base), self.private_base])


def baseline_figures(bench: Bench) -> list[Figure]:
    """Start-up and import floors of the measured commands, and one docker CLI round trip."""
    py = sys.executable
    build_module, smoke_module = IMPORTS["build command"], IMPORTS["smoke command"]
    return [
        Figure("python -c pass", [py, "-c", "pass"]),
        Figure(f'python -c "import {build_module}"', [py, "-c", f"import {build_module}"]),
        Figure(f'python -c "import {smoke_module}"', [py, "-c", f"import {smoke_module}"]),
        Figure("boxsmith --version", [bench.box, "--version"]),
        Figure("docker version (CLI + one API call)", ["docker", "version"]),
    ]


def breakdown(phases: Phases, once: Callable[[], dict[str, float]], record: bool) -> None:
    """One in-process split; a failure is kept as the reason, not raised (the split is extra)."""
    if phases.error:
        return
    try:
        one = once()
    except (SetupError, ValueError, KeyError) as exc:
        phases.error = str(exc).strip().splitlines()[-1][:300]
        phases.runs.clear()
        return
    if record:
        phases.runs.append(one)


@dataclass
class Timed:
    """What `measure` times: the figures of (a) and (b) and the in-process splits."""

    baselines: list[Figure]
    build: Figure
    full: Figure
    loop: Figure
    smoke: Figure
    build_phases: Phases = field(default_factory=Phases)
    smoke_phases: Phases = field(default_factory=Phases)
    smoke_parts: Phases = field(default_factory=Phases)
    cli: Phases = field(default_factory=Phases)
    build_seconds: list[list[float]] = field(default_factory=list)


def one_round(bench: Bench, timed: Timed, i: int, record: bool) -> None:
    """Round `i`: every figure whose repeats are not done yet, in turn, so that load changes
    on a shared machine hit all of them; `record` False: an untimed warm-up round."""
    args, first = bench.args, bench.names[0]

    def keep(figure: Figure, elapsed: float) -> None:
        if record:
            figure.times.append(elapsed)

    n_build, n_loop, n_smoke = (
        (args.repeat, args.repeat_baseline, args.repeat_smoke) if record else (1, 1, 1)
    )
    for figure in timed.baselines:
        keep(figure, figure.timed(bench.project, bench.env))
    if i < n_build:
        keep(timed.build, bench.time_build(timed.build))
        keep(timed.full, bench.time_build(timed.full))
        if record:
            timed.build_seconds.append(bench.last_build_seconds)
        breakdown(timed.build_phases, bench.build_phases, record)
    if i < n_loop:
        keep(timed.loop, bench.time_loop())
    if i < n_smoke:
        elapsed, parts = bench.time_smoke(first)
        one_cli = bench.cli_smoke(first)
        keep(timed.smoke, elapsed)
        if record:
            timed.smoke_parts.runs.append(parts)
            timed.cli.runs.append(one_cli)
        breakdown(timed.smoke_phases, lambda: bench.smoke_phases(first), record)


def measure(bench: Bench) -> Results:
    args = bench.args
    watch = Watch(bench.env)
    _, docker = bench.do(
        ["docker", "version", "--format", "engine {{.Server.Version}}, CLI {{.Client.Version}}"]
    )
    bench.setup()
    first = bench.names[0]
    command = bench.boxsmith("build", "--json")
    timed = Timed(
        baselines=baseline_figures(bench),
        build=Figure(f"boxsmith build ({args.count} cached, record)", command),
        full=Figure(f"boxsmith build ({args.count} cached, full check)", command, NO_CACHE),
        loop=Figure(
            f"loop of {args.count} docker build -q (warm cache)", bench.docker_build("<name>")
        ),
        smoke=Figure(
            f"boxsmith smoke --local {first}",
            bench.boxsmith("smoke", "--local", first, "--report", "FILE"),
        ),
    )
    rounds = max(args.repeat, args.repeat_baseline, args.repeat_smoke)
    with watch.noting_edits():
        for _ in range(args.warmup):  # untimed: fills the bytecode cache, warms the page cache
            one_round(bench, timed, 0, record=False)
        for i in range(rounds):
            one_round(bench, timed, i, record=True)

    # Import as measured by its baseline in the same round (paired: the load moves); the rest
    # is what the report does not account for.
    imports = timed.baselines[2].times
    for parts, wall, imported in zip(
        timed.smoke_parts.runs, timed.smoke.times, imports, strict=False
    ):
        parts["interpreter + import"] = imported
        parts[REST] = wall - parts["suite"] - imported
    full = timed.full.times
    middle = sorted(range(len(full)), key=full.__getitem__)[len(full) // 2]
    return Results(
        count=args.count,
        names=bench.names,
        base=args.base,
        base_id=bench.base_id,
        repeat=args.repeat,
        repeat_baseline=args.repeat_baseline,
        repeat_smoke=args.repeat_smoke,
        conditions=watch.conditions(),
        docker=docker.strip(),
        baselines=timed.baselines,
        build=timed.build,
        full=timed.full,
        loop=timed.loop,
        build_phases=timed.build_phases,
        build_seconds=timed.build_seconds[middle],
        smoke=timed.smoke,
        smoke_parts=timed.smoke_parts,
        smoke_phases=timed.smoke_phases,
        cli=timed.cli,
        leftover_containers=bench.leftovers,
    )


# ---------------------------------------------------------------------------------- reporting


def goals(res: Results) -> list[Goal]:
    ratio = res.loop.median / res.build.median
    overhead = res.smoke_parts.median("overhead")
    note = f"needs boxsmith build <= {res.loop.median / TARGET_RATIO:.3f} s on this machine"
    if res.count != TARGET_COUNT:
        note = f"target is stated for {TARGET_COUNT} templates; this run used {res.count}"
    return [
        Goal(
            f"(a) no-change build (record) at least {TARGET_RATIO:g}x faster than the docker loop",
            ratio,
            "x",
            TARGET_RATIO,
            ratio >= TARGET_RATIO,
            note + "; not the same work: the full check's ratio is in the table",
        ),
        Goal(
            f"(b) smoke --local overhead under {TARGET_SMOKE_OVERHEAD_S:g} s",
            overhead,
            "s",
            TARGET_SMOKE_OVERHEAD_S,
            overhead < TARGET_SMOKE_OVERHEAD_S,
            "wall time minus the checks' own seconds from the report",
        ),
    ]


def as_json(res: Results) -> dict[str, Any]:
    def per_template(figure: Figure) -> dict[str, Any]:
        return {**figure.as_json(), "per_template_s": round(figure.median / res.count, 4)}

    return {
        **res.conditions.as_json(),
        "docker": res.docker,
        "templates": res.names,
        "base_image": {"ref": res.base, "id": res.base_id},
        "repeat": {
            "boxsmith_build": res.repeat,
            "docker_loop": res.repeat_baseline,
            "smoke": res.repeat_smoke,
        },
        "baselines": {f.label: f.as_json() for f in res.baselines},
        "build": {
            "boxsmith_record": per_template(res.build),
            "boxsmith_full_check": {
                **per_template(res.full),
                "own_seconds_per_template": res.build_seconds,
            },
            "docker_loop": per_template(res.loop),
            "ratio_loop_over_record_median": round(res.loop.median / res.build.median, 2),
            "ratio_loop_over_record_best": round(res.loop.best / res.build.best, 2),
            "ratio_loop_over_full_check_median": round(res.loop.median / res.full.median, 2),
            "ratio_loop_over_full_check_best": round(res.loop.best / res.full.best, 2),
            "in_process_phases_full_check_s": res.build_phases.as_json(),
        },
        "smoke": {
            "boxsmith": res.smoke.as_json(),
            "parts_median_s": res.smoke_parts.as_json(),
            "in_process_phases_s": res.smoke_phases.as_json(),
            "docker_cli_baseline_median_s": res.cli.as_json(),
            "containers_left_behind": res.leftover_containers,
        },
        "targets": [t.as_json() for t in goals(res)],
    }


def _phase_rows(phases: Phases) -> list[str]:
    if not phases.runs:
        return [f"    (not measured: {phases.error or 'no runs'})"]
    return [f"    {name:46} {'':8} {phases.median(name):7.3f}s" for name in phases.names()]


def _build_lines(res: Results) -> list[str]:
    def ratio(label: str, slow: Figure, fast: Figure) -> str:
        return (
            f"  {label:48} {slow.best / fast.best:7.1f}x {slow.median / fast.median:7.1f}x"
            "  (best / best, median / median)"
        )

    def per(figure: Figure) -> str:
        return f"{figure.median / res.count:.3f}s"

    own = res.build_seconds
    return [
        figure_head(f"(a) no-change build of {res.count} templates", extra="per template"),
        figure_row(res.build.label, res.build, extra=per(res.build)),
        figure_row(res.full.label, res.full, extra=per(res.full)),
        figure_row(res.loop.label, res.loop, extra=per(res.loop)),
        ratio("ratio loop / boxsmith (record)", res.loop, res.build),
        ratio("ratio loop / boxsmith (full check, same work)", res.loop, res.full),
        "  record: `boxsmith build` as a user runs it, answered from .boxsmith/build-record.json",
        "  (project digest + one engine request per image): not the work the docker loop does.",
        "  full check: BOXSMITH_NO_CACHE=1, no record; each template's parity base and build key",
        "  against the engine, as the loop checks each step's cache: the like-for-like row.",
        f"  boxsmith's own per-template seconds in the full check (2 at a time): "
        f"sum {sum(own):.2f}s, max {max(own):.2f}s",
        "  in-process split of the full check (median):",
        *_phase_rows(res.build_phases),
    ]


def _smoke_lines(res: Results) -> list[str]:
    parts = res.smoke_parts

    def part(label: str, name: str) -> str:
        return f"  {label:48} {'':8} {parts.median(name):7.3f}s"

    return [
        figure_head(f"(b) smoke --local {res.names[0]} (2 checks)"),
        figure_row(res.smoke.label, res.smoke),
        part("checks' own seconds (report)", "checks"),
        part("overhead = wall - checks", "overhead"),
        part("  interpreter + import (same round)", "interpreter + import"),
        part("  start + ready (suite - checks, report)", "start + ready"),
        part("  rest: catalog, engine, teardown, reports, exit", REST),
        "  in-process split of a smoke run (median):",
        *_phase_rows(res.smoke_phases),
        "  docker CLI baseline: run -d --init, exec x2, rm -f (median):",
        *_phase_rows(res.cli),
        f"  containers left behind by boxsmith: {res.leftover_containers}",
    ]


def as_table(res: Results) -> str:
    lines = res.conditions.table_head(
        "boxsmith build/smoke benchmark",
        f"docker {res.docker}",
        f"{res.count} templates on a private tag of {res.base} ({res.base_id[:19]}); repeats: "
        f"build {res.repeat}, loop {res.repeat_baseline}, smoke {res.repeat_smoke}",
    )
    lines += ["", figure_head("baselines")]
    lines += [figure_row(f.label, f) for f in res.baselines]
    lines += ["", *_build_lines(res), "", *_smoke_lines(res), "", *verdict_lines(goals(res))]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__, base_image=True)
    parser.add_argument("--count", type=at_least(1), default=10, help="templates (default 10)")
    parser.add_argument(
        "--repeat",
        type=at_least(1),
        default=5,
        help="timed runs of each boxsmith build (default 5)",
    )
    parser.add_argument(
        "--repeat-baseline", type=at_least(1), default=3, help="timed docker loops (default 3)"
    )
    parser.add_argument(
        "--repeat-smoke", type=at_least(1), default=5, help="timed smoke runs (default 5)"
    )
    return parser.parse_args(argv)


def measure_in(args: argparse.Namespace, project: Path) -> Results:
    """Measure with a project in `project`; then remove what the run made unless --keep."""
    bench = Bench(args, project)
    try:
        return measure(bench)
    finally:
        if not args.keep:
            bench.clean()


def main(argv: Sequence[str] | None = None) -> int:
    return main_of(parse_args(argv), measure_in, as_json, as_table, name="build")


if __name__ == "__main__":
    sys.exit(main())
