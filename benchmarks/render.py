"""Wall-clock benchmark of boxsmith's spec -> generated/ pipeline, each command in a fresh process.

What it measures (every figure is one `boxsmith` console-script run in a new process, timed with
`time.perf_counter` around `subprocess.run`; best and median of `--repeat` runs are reported):

(a) A synthetic project of `--count` specs (default 500), generated in a fresh temporary folder:
    a few abstract bases (two levels deep, and specs extending two bases at once), `vars` used
    through `{{ vars.x }}` in many string fields, `files:` entries and `copy` steps with small
    files written next to the specs, steps of every kind (run, copy, env, workdir, user), every
    `ready_cmd` helper and smoke checks of every kind. Timed per repeat: `validate`, `render` into
    an empty generated/ (deleted before each repeat, so it is always a first render) and a
    no-change `check`; the report shows each stage, their sum and the sum per spec. That check
    may answer from boxsmith's verification stamp (.boxsmith/, left by `render`), so the same
    check with BOXSMITH_NO_CACHE=1, a full re-render in memory, is shown too, and so is
    `render --dry-run` on the clean folder (a first render minus the writes); neither is summed.
    Target: the sum under 2 s for 500 specs.
(b) A no-change `boxsmith check` of the bundled catalog (the repository root, already rendered),
    as it runs there (with the stamp an earlier check left) and with BOXSMITH_NO_CACHE=1 (as on a
    fresh clone, e.g. in CI). Target: under 0.3 s; both are judged.
(c) Baselines the other figures are expressed against: `python -c pass` (interpreter start-up),
    `python -c "import boxsmith._internal.cli.app"` (start-up plus the CLI's own imports),
    `python -c "import boxsmith._internal.render.pipeline"` (start-up plus every module a full
    validate, render or
    check loads: pydantic, Jinja, PyYAML, ...) and `boxsmith --version` (console script, imports
    and argparse). For reference only, not a fresh process: writing the files `render` wrote
    (same paths and bytes) with a plain mkdir + write loop, the file-system floor of a first
    render on this machine.

Child processes get a private bytecode cache (PYTHONPYCACHEPREFIX in the temporary folder, with
PYTHONDONTWRITEBYTECODE unset) that the untimed warm-up pass fills, so the figures are those of an
installed boxsmith whatever the caller's environment, and no bytecode lands in the repository
(the only write there is boxsmith's own stamp, .boxsmith/, which `check` keeps up to date, and it
is gitignored). `--inherit-env` measures with the caller's environment unchanged instead (and
`--warmup 0` puts bytecode compilation into the first repeat).

The header names the boxsmith measured (the folder it is imported from, its commit and whether the
checkout has uncommitted changes) and the load average before and after: on a shared machine the
figures move with the load, so compare runs made under similar load, and prefer `best`. The
render figure also depends on the file system the synthetic project is on (`--tmp-dir`); the
"fs floor" row shows what creating those files costs there without boxsmith.
To measure another checkout, put its src first on PYTHONPATH and point `--catalog` at it.

Verdicts (PASS/FAIL) compare the median with the target. The script reports and never gates: it
exits 0 whatever the figures, and non-zero only when the setup fails (the synthetic specs do not
validate, a command exits non-zero, the bundled catalog has drift, boxsmith is not installed).

    .venv/bin/python benchmarks/render.py [--count 500] [--repeat 3] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from common import (
    NO_CACHE,
    Conditions,
    Figure,
    Watch,
    children,
    main_of,
    new_parser,
    verdict_lines,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_SYNTHETIC_S = 2.0  # (a): validate + render + check of 500 specs
TARGET_SYNTHETIC_COUNT = 500  # the spec count the (a) target is stated for
TARGET_CATALOG_CHECK_S = 0.3  # (b): no-change check of the bundled catalog
TEAM_ID = "5b0b7c4e-3f0a-4c1e-9d5e-6a7f8b9c0d1e"
SCHEMA_LINE = "# yaml-language-server: $schema=../boxsmith.schema.json\n"


# --------------------------------------------------------------------------- synthetic project

BASES: dict[str, dict[str, Any]] = {
    # Level 1: the root every other base builds on.
    "root": {
        "name": "bench-root",
        "abstract": True,
        "team_id": TEAM_ID,
        "resources": {"cpu_count": 2, "memory_mb": 1024},
        "labels": {"suite": "bench"},
        "vars": {"owner": "boxsmith-bench", "greeting": "hello"},
        "env": {"BENCH_OWNER": "{{ vars.owner }}"},
        "smoke": [{"name": "runs as user", "command": "id -un", "stdout": "^user$"}],
    },
    # Level 2: runtime bases extending the root.
    "python": {
        "name": "bench-python",
        "abstract": True,
        "extends": ["bench-root"],
        "vars": {"python": "3.11"},
        "base_image": "python:{{ vars.python }}-slim",
        "labels": {"runtime": "python"},
        "env": {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        "system_packages": ["curl"],
        "smoke": [
            {
                "name": "python version",
                "command": "python3 --version",
                "stdout": "^Python {{ vars.python | replace('.', '\\\\.') }}\\.",
            }
        ],
    },
    "node": {
        "name": "bench-node",
        "abstract": True,
        "extends": ["bench-root"],
        "vars": {"node_major": "20", "port": 3000},
        "base_image": "node:{{ vars.node_major }}-slim",
        "labels": {"runtime": "node"},
        "ready_cmd": {"wait_for_url": "http://localhost:{{ vars.port }}"},
        "smoke": [
            {
                "name": "node runs",
                "command": "node --version",
                "stdout": "^v{{ vars.node_major }}\\.",
            },
            {"name": "dev server listens", "port": "{{ vars.port }}", "timeout": 10, "retries": 5},
        ],
    },
    "debian": {
        "name": "bench-debian",
        "abstract": True,
        "extends": "bench-root",
        "base_image": "debian:bookworm-slim",
        "labels": {"runtime": "shell"},
        "steps": [{"run": "mkdir -p /opt/bench"}],
    },
    # A mixin with no base of its own, combined with a runtime base (two bases in `extends`).
    "tools": {
        "name": "bench-tools",
        "abstract": True,
        "system_packages": ["git", "jq"],
        "env": {"BENCH_TOOLS": "1"},
        "files": [{"src": "tools/motd.txt", "dest": "/etc/motd"}],
        "smoke": [{"name": "motd in place", "file": "/etc/motd", "contains": "bench"}],
    },
}

# Which bases each spec extends, cycling over the specs.
EXTENDS: list[str | list[str]] = [
    ["bench-python"],  # two levels deep
    ["bench-node"],  # two levels deep, inherits ready_cmd
    ["bench-python", "bench-tools"],  # two bases
    ["bench-debian", "bench-tools"],  # two bases
    "bench-root",  # one level, string form
]


def _ready_cmd(i: int) -> Any:
    """Cycle over every ready_cmd form; None keeps the inherited one (node specs)."""
    forms: list[Any] = [
        {"wait_for_port": "{{ vars.port }}"},
        {"wait_for_url": "http://localhost:{{ vars.port }}/health"},
        {"wait_for_url": {"url": "http://localhost:{{ vars.port }}/", "status": 204}},
        {"wait_for_file": "/tmp/{{ vars.app }}.ready"},
        {"wait_for_process": "{{ vars.app }}"},
        {"wait_for_timeout": 5000},
        "test -S /tmp/{{ vars.app }}.sock",
        None,
    ]
    return forms[i % len(forms)]


def _spec(i: int, folder: str) -> dict[str, Any]:
    """One concrete spec; every string field of interest goes through {{ vars.x }}."""
    name = f"bench-{i:04d}"
    kind = i % len(EXTENDS)
    spec: dict[str, Any] = {
        "name": name,
        "version": f"1.{i % 7}.{i % 3}",
        "extends": EXTENDS[kind],
        "description": (
            f"Synthetic template number {i} ({{{{ vars.app }}}} on port {{{{ vars.port }}}}), "
            "owned by {{ vars.owner }}; generated by benchmarks/render.py."
        ),
        "vars": {"app": f"app{i}", "port": 8000 + i % 50000, "tier": ("web", "worker")[i % 2]},
    }
    if kind == 4:  # the root base has no image
        spec["vars"]["debian"] = "bookworm"
        spec["base_image"] = "debian:{{ vars.debian }}-slim"
    if i % 3 == 0:
        spec["resources"] = {"cpu_count": 4, "memory_mb": 2048}
    spec["labels"] = {"tier": "{{ vars.tier }}", "shard": folder}
    spec["env"] = {"APP_NAME": "{{ vars.app }}", "APP_PORT": "{{ vars.port }}", "DEBUG": i % 2 == 0}
    if i % 4 == 0:
        spec["system_packages"] = ["curl", "procps"]
    spec["files"] = [
        {"src": f"{name}/start.sh", "dest": "/usr/local/bin/start-{{ vars.app }}", "mode": "0755"}
    ]
    spec["steps"] = [
        {"run": "echo {{ vars.greeting }} from {{ vars.app }} > /tmp/greeting"},
        {"env": {"STAGE": "build", "APP_HOME": "/opt/{{ vars.app }}"}},
        {"workdir": "/opt/{{ vars.app }}"},
        {"user": "root"},
        {"run": ["mkdir -p /opt/{{ vars.app }}/data", "chown -R user:user /opt/{{ vars.app }}"]},
        {
            "copy": {
                "src": f"{name}/app.txt",
                "dest": "/opt/{{ vars.app }}/app.txt",
                "owner": "user:user",
            }
        },
        {"user": "user"},
        {"run": {"cmd": "ls -la /opt/{{ vars.app }} > /tmp/listing", "user": "root"}},
    ]
    spec["start_cmd"] = "/usr/local/bin/start-{{ vars.app }} --port {{ vars.port }}"
    ready = _ready_cmd(i)
    if ready is not None or kind != 1:
        spec["ready_cmd"] = ready if ready is not None else {"wait_for_port": "{{ vars.port }}"}
    spec["smoke"] = [
        {"name": "greeting", "command": "cat /tmp/greeting", "stdout": "from {{ vars.app }}$"},
        {"name": "app file", "file": "/opt/{{ vars.app }}/app.txt", "contains": "{{ vars.app }}"},
        {"name": "app port", "port": "{{ vars.port }}", "timeout": 5, "retries": 3},
        {"name": "app http", "http": "http://localhost:{{ vars.port }}/", "status": 200},
        {"name": "app process", "process": "start-{{ vars.app }}", "retries": 2, "interval": 1},
    ]
    if i % 10 == 0:  # replaces the root base's check of the same name in place
        spec["smoke"].append({"name": "runs as user", "command": "whoami", "stdout": "^user$"})
    return spec


def _dump(data: dict[str, Any]) -> str:
    return SCHEMA_LINE + yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


def write_project(root: Path, count: int) -> int:
    """Write `count` concrete specs (plus the bases and their files) under root; return the
    number of spec files written."""
    specs = root / "template_specs"
    bases = specs / "bases"
    (bases / "tools").mkdir(parents=True)
    (bases / "tools" / "motd.txt").write_text("Welcome to a boxsmith bench sandbox.\n")
    for key, data in BASES.items():
        (bases / f"{key}.yaml").write_text(_dump(data), encoding="utf-8")
    for i in range(count):
        folder = f"g{i // 100:02d}"
        name = f"bench-{i:04d}"
        payload = specs / folder / name
        payload.mkdir(parents=True)
        start = payload / "start.sh"
        start.write_text(f'#!/bin/sh\n# start {name}\nexec sleep infinity "$@"\n')
        start.chmod(0o755)
        (payload / "app.txt").write_text(f"app{i}: synthetic payload for {name}\n")
        (specs / folder / f"{name}.yaml").write_text(_dump(_spec(i, folder)), encoding="utf-8")
    return count + len(BASES)


# --------------------------------------------------------------------------------- measuring


def fs_floor(generated: Path, scratch: Path) -> float:
    """Seconds to write the files of `generated` again under `scratch` with plain mkdir + write
    (in-process): what any first render costs on this file system, before boxsmith's own work."""
    files = [
        (p.relative_to(generated), p.read_bytes()) for p in generated.rglob("*") if p.is_file()
    ]
    shutil.rmtree(scratch, ignore_errors=True)
    start = time.perf_counter()
    for rel, content in files:
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    elapsed = time.perf_counter() - start
    shutil.rmtree(scratch)
    return elapsed


@dataclass
class Results:
    count: int
    spec_files: int
    rendered_files: int
    repeat: int
    bytecode: str
    conditions: Conditions
    baselines: list[Figure]
    floor: Figure
    stages: list[Figure]  # validate, render, check: the summed pipeline
    total: Figure
    full_check: Figure  # check of the same project with boxsmith's stamp turned off
    dry_run: Figure  # a first render without the writes
    catalog: Figure
    catalog_cold: Figure
    catalog_root: Path
    catalog_templates: int


def measure(args: argparse.Namespace, project: Path) -> Results:
    """Write the synthetic project into `project` and time the pipeline on it and the catalog."""
    write_project(project, args.count)
    box, env = children(args, project)
    watch = Watch(env)
    py = sys.executable
    root = ["-C", str(project)]
    baselines = [
        Figure("python -c pass", [py, "-c", "pass"]),
        Figure(
            'python -c "import boxsmith._internal.cli.app"',
            [py, "-c", "import boxsmith._internal.cli.app"],
        ),
        Figure(
            'python -c "import boxsmith._internal.render.pipeline"',
            [py, "-c", "import boxsmith._internal.render.pipeline"],
        ),
        Figure("boxsmith --version", [box, "--version"]),
    ]
    floor = Figure("fs floor: same files, mkdir+write", ["(in-process, not a fresh process)"])
    stages = [
        Figure("validate", [box, *root, "validate"]),
        Figure("render (first, clean generated/)", [box, *root, "render"]),
        Figure("check (no change)", [box, *root, "check"]),
    ]
    total = Figure("sum validate + render + check", ["(sum of the three stages)"])
    full_check = Figure("check, BOXSMITH_NO_CACHE=1", [box, *root, "check"], NO_CACHE)
    dry_run = Figure("render --dry-run (no writes)", [box, *root, "render", "--dry-run"])
    catalog_root = ["-C", str(args.catalog)]
    catalog = Figure("check (no change)", [box, *catalog_root, "check"])
    catalog_cold = Figure("check, BOXSMITH_NO_CACHE=1", [box, *catalog_root, "check"], NO_CACHE)
    generated = project / "generated"

    def one_pass(record: bool) -> None:
        def clock(figure: Figure, cwd: Path) -> float:
            elapsed = figure.timed(cwd, env)
            if record:
                figure.times.append(elapsed)
            return elapsed

        for figure in baselines:
            clock(figure, project)
        # A first render every time: no output and no state left by the previous repeat.
        shutil.rmtree(generated, ignore_errors=True)
        shutil.rmtree(project / ".boxsmith", ignore_errors=True)
        clock(dry_run, project)  # on the clean folder: all of a first render but the writes
        pipeline = sum(clock(figure, project) for figure in stages)
        clock(full_check, project)
        elapsed = fs_floor(generated, project / "fs-floor")
        if record:
            total.times.append(pipeline)
            floor.times.append(elapsed)
        clock(catalog, args.catalog)
        clock(catalog_cold, args.catalog)

    with watch.noting_edits():
        for _ in range(args.warmup):  # untimed: fills the bytecode cache, warms the page cache
            one_pass(record=False)
        for _ in range(args.repeat):
            one_pass(record=True)

    index = json.loads((args.catalog / "generated" / "index.json").read_text(encoding="utf-8"))
    return Results(
        count=args.count,
        spec_files=len(list((project / "template_specs").rglob("*.yaml"))),
        rendered_files=sum(1 for p in generated.rglob("*") if p.is_file()),
        repeat=args.repeat,
        bytecode="caller's environment" if args.inherit_env else "private cache (warmed)",
        conditions=watch.conditions(),
        baselines=baselines,
        floor=floor,
        stages=stages,
        total=total,
        full_check=full_check,
        dry_run=dry_run,
        catalog=catalog,
        catalog_cold=catalog_cold,
        catalog_root=args.catalog,
        catalog_templates=sum(len(v) for v in index.get("templates", {}).values()),
    )


# ---------------------------------------------------------------------------------- reporting


def _target(name: str, figure: Figure, limit: float, note: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "limit_s": limit,
        "median_s": round(figure.median, 4),
        "best_s": round(figure.best, 4),
        "pass": figure.median < limit,
        "note": note,
    }


def targets(res: Results) -> list[dict[str, Any]]:
    note = ""
    if res.count != TARGET_SYNTHETIC_COUNT:
        note = f"target is stated for {TARGET_SYNTHETIC_COUNT} specs; this run used {res.count}"
    limit_b = f"< {TARGET_CATALOG_CHECK_S:g} s"
    return [
        _target(
            f"(a) validate+render+check of {res.count} specs < {TARGET_SYNTHETIC_S:g} s",
            res.total,
            TARGET_SYNTHETIC_S,
            note,
        ),
        _target(
            f"(b) no-change check of the bundled catalog {limit_b}",
            res.catalog,
            TARGET_CATALOG_CHECK_S,
            "boxsmith's stamp from an earlier check in place, as on a developer machine",
        ),
        _target(
            f"(b) the same without the stamp (BOXSMITH_NO_CACHE=1) {limit_b}",
            res.catalog_cold,
            TARGET_CATALOG_CHECK_S,
            "as on a fresh clone, e.g. in CI",
        ),
    ]


def _shares(figure: Figure, processes: int, base: list[Figure]) -> dict[str, Any]:
    """How much of a figure (median) is interpreter start-up, start-up plus the CLI's imports,
    and start-up plus every module a full command loads (baselines, once per process)."""
    start_up, cli, full = (f.median * processes for f in base[:3])
    return {
        "processes": processes,
        "x_startup": round(figure.median / base[0].median, 1),
        "startup_s": round(start_up, 4),
        "startup_share": round(start_up / figure.median, 4),
        "startup_cli_import_s": round(cli, 4),
        "startup_cli_import_share": round(cli / figure.median, 4),
        "startup_full_import_s": round(full, 4),
        "startup_full_import_share": round(full / figure.median, 4),
        "beyond_full_import_s": round(figure.median - full, 4),
    }


def _per_spec(figure: Figure, count: int) -> dict[str, float]:
    return {
        "per_spec_ms_best": round(1000 * figure.best / count, 3),
        "per_spec_ms_median": round(1000 * figure.median / count, 3),
    }


def as_json(res: Results) -> dict[str, Any]:
    def entry(figure: Figure, processes: int = 1, count: int | None = None) -> dict[str, Any]:
        per = _per_spec(figure, count) if count else {}
        return {**figure.as_json(), **per, **_shares(figure, processes, res.baselines)}

    return {
        **res.conditions.as_json(),
        "bytecode": res.bytecode,
        "repeat": res.repeat,
        "baselines": {f.label: f.as_json() for f in res.baselines},
        "fs_floor": {**res.floor.as_json(), **_per_spec(res.floor, res.count)},
        "synthetic": {
            "specs": res.count,
            "spec_files": res.spec_files,
            "rendered_files": res.rendered_files,
            "stages": {f.label: entry(f, 1, res.count) for f in res.stages},
            "total": entry(res.total, len(res.stages), res.count),
            "full_check": entry(res.full_check, 1, res.count),
            "render_dry_run": entry(res.dry_run, 1, res.count),
        },
        "catalog_check": {
            "root": str(res.catalog_root),
            "templates": res.catalog_templates,
            **entry(res.catalog),
            "no_cache": entry(res.catalog_cold),
        },
        "targets": targets(res),
    }


def as_table(res: Results) -> str:
    start_up = res.baselines[0].median
    head = (
        f"{'best':>8} {'median':>8} {'per spec':>9} {'x start':>8} {'start%':>7} {'+cli%':>6} "
        f"{'+full%':>6}"
    )

    def pct(share: float, width: int) -> str:
        return f"{100 * share:{width - 1}.1f}%" if share <= 1 else f"{'-':>{width}}"

    def row(f: Figure, processes: int = 1, count: int | None = None) -> str:
        s = _shares(f, processes, res.baselines)
        per = f"{1000 * f.median / count:7.2f}ms" if count else ""
        return (
            f"  {f.label:36} {f.best:7.3f}s {f.median:7.3f}s {per:>9} {s['x_startup']:7.1f}x "
            f"{pct(s['startup_share'], 7)} {pct(s['startup_cli_import_share'], 6)} "
            f"{pct(s['startup_full_import_share'], 6)}"
        )

    lines = res.conditions.table_head(
        "boxsmith render benchmark", f"bytecode: {res.bytecode}", f"{res.repeat} timed repeat(s)"
    )
    lines += ["", f"{'(c) baselines':38} {'best':>8} {'median':>8} {'':>9} {'x start':>8}"]
    for f in res.baselines:
        lines.append(
            f"  {f.label:36} {f.best:7.3f}s {f.median:7.3f}s {'':>9} {f.median / start_up:7.1f}x"
        )
    lines += [
        f"  {res.floor.label:36} {res.floor.best:7.3f}s {res.floor.median:7.3f}s "
        f"{1000 * res.floor.median / res.count:7.2f}ms   (in-process reference)",
        "",
        f"{'(a) ' + str(res.count) + ' synthetic specs':38} {head}",
        *(row(f, 1, res.count) for f in res.stages),
        row(res.total, len(res.stages), res.count),
        row(res.full_check, 1, res.count) + "  (not summed)",
        row(res.dry_run, 1, res.count) + "  (not summed)",
        f"  ({res.spec_files} spec files incl. {res.spec_files - res.count} abstract bases; "
        f"{res.rendered_files} files in generated/)",
        "",
        f"{'(b) bundled catalog':38} {head}",
        row(res.catalog),
        row(res.catalog_cold),
        f"  ({res.catalog_templates} templates in {res.catalog_root}/generated/index.json)",
        "",
        "x start: median / `python -c pass`. Shares of the median, once per process: start% is",
        "interpreter start-up, +cli% start-up + `import boxsmith._internal.cli.app`,",
        "+full% start-up + `import boxsmith._internal.render.pipeline` (every module a full",
        "validate/render/check loads); - where the",
        "figure is below that baseline (the process does not load all of it).",
        "",
        *verdict_lines(targets(res), lambda t: f"median {t['median_s']:.3f} s"),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    parser.add_argument("--count", type=int, default=500, help="synthetic specs (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic project folder")
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="where the synthetic project goes (default: the system temp folder)",
    )
    parser.add_argument(
        "--catalog", type=Path, default=REPO_ROOT, help="project for (b) (default: repo root)"
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--count and --repeat must be at least 1, --warmup at least 0")
    args.catalog = args.catalog.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return main_of(parse_args(argv), measure, as_json, as_table, prefix="boxsmith-bench-")


if __name__ == "__main__":
    sys.exit(main())
