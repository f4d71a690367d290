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
    `python -c "import boxsmith.cli"` (start-up plus the CLI's own imports),
    `python -c "import boxsmith.pipeline"` (start-up plus every module a full validate, render or
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
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_SYNTHETIC_S = 2.0  # (a): validate + render + check of 500 specs
TARGET_SYNTHETIC_COUNT = 500  # the spec count the (a) target is stated for
TARGET_CATALOG_CHECK_S = 0.3  # (b): no-change check of the bundled catalog
TEAM_ID = "5b0b7c4e-3f0a-4c1e-9d5e-6a7f8b9c0d1e"
SCHEMA_LINE = "# yaml-language-server: $schema=../boxsmith.schema.json\n"


class SetupError(Exception):
    """The benchmark could not run (as opposed to a slow figure, which is only reported)."""


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

NO_CACHE = {"BOXSMITH_NO_CACHE": "1"}  # boxsmith's switch for its verification stamp


@dataclass
class Figure:
    """Wall times of one measured command over the repeats."""

    label: str
    command: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def as_json(self) -> dict[str, Any]:
        env = " ".join(f"{k}={v}" for k, v in self.extra_env.items())
        return {
            "command": (env + " " if env else "") + shlex.join(self.command),
            "best_s": round(self.best, 4),
            "median_s": round(self.median, 4),
            "runs_s": [round(t, 4) for t in self.times],
        }


def child_env(pycache: Path | None) -> dict[str, str]:
    """The environment of every measured process; `pycache` gives it a private bytecode cache."""
    env = dict(os.environ)
    for key in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", *NO_CACHE):
        env.pop(key, None)  # no annotations or job summary; boxsmith's defaults
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def timed(figure: Figure, cwd: Path, env: dict[str, str]) -> float:
    """Wall time of one fresh-process run; SetupError when it exits non-zero."""
    start = time.perf_counter()
    done = subprocess.run(
        figure.command, cwd=cwd, env={**env, **figure.extra_env}, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace")[-3000:]
        raise SetupError(f"`{figure.as_json()['command']}` exited {done.returncode}:\n{tail}")
    return elapsed


def find_boxsmith(explicit: str | None) -> str:
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "boxsmith"
    if beside.is_file():
        return str(beside)
    found = shutil.which("boxsmith")
    if not found:
        raise SetupError("no `boxsmith` console script; run with the venv's python or --boxsmith")
    return found


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


def boxsmith_package(env: dict[str, str]) -> Path:
    """The folder the measured processes import boxsmith from."""
    found = subprocess.run(
        [sys.executable, "-c", "import boxsmith; print(boxsmith.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise SetupError(f"cannot import boxsmith: {found.stderr.strip()}")
    return Path(found.stdout.strip()).parent


def source_digest(package: Path) -> str:
    """Digest of boxsmith's code and templates, to notice an edit during the run."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".j2"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def source_state(package: Path) -> str:
    """`<package>@<short commit>[+dirty]` when the package is in a git checkout ("+dirty": the
    package folder has uncommitted changes, which were measured too), else the package folder."""
    try:
        head = _git(package, "rev-parse", "--short", "HEAD")
        dirty = _git(package, "status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return str(package)
    return f"{package}@{head}{'+dirty' if dirty else ''}"


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass
class Results:
    count: int
    spec_files: int
    rendered_files: int
    repeat: int
    bytecode: str
    load: tuple[float, float]  # 1-minute load average before and after
    source: str  # where the measured boxsmith was imported from, @commit[+dirty]
    source_changed: bool  # boxsmith's code changed while the benchmark ran
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
    box = find_boxsmith(args.boxsmith)
    env = child_env(None if args.inherit_env else project / "pycache")
    package = boxsmith_package(env)
    source_before = source_digest(package)
    py = sys.executable
    root = ["-C", str(project)]
    baselines = [
        Figure("python -c pass", [py, "-c", "pass"]),
        Figure('python -c "import boxsmith.cli"', [py, "-c", "import boxsmith.cli"]),
        Figure('python -c "import boxsmith.pipeline"', [py, "-c", "import boxsmith.pipeline"]),
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
    load_before = os.getloadavg()[0]

    def one_pass(record: bool) -> None:
        def run(figure: Figure, cwd: Path) -> float:
            elapsed = timed(figure, cwd, env)
            if record:
                figure.times.append(elapsed)
            return elapsed

        for figure in baselines:
            run(figure, project)
        # A first render every time: no output and no state left by the previous repeat.
        shutil.rmtree(generated, ignore_errors=True)
        shutil.rmtree(project / ".boxsmith", ignore_errors=True)
        run(dry_run, project)  # on the clean folder: all of a first render but the writes
        pipeline = sum(run(figure, project) for figure in stages)
        run(full_check, project)
        elapsed = fs_floor(generated, project / "fs-floor")
        if record:
            total.times.append(pipeline)
            floor.times.append(elapsed)
        run(catalog, args.catalog)
        run(catalog_cold, args.catalog)

    try:
        for _ in range(args.warmup):  # untimed: fills the bytecode cache, warms the page cache
            one_pass(record=False)
        for _ in range(args.repeat):
            one_pass(record=True)
    except SetupError as exc:
        if source_digest(package) != source_before:
            raise SetupError(
                f"{exc}\n(boxsmith's code in {package} changed during the run)"
            ) from exc
        raise

    index = json.loads((args.catalog / "generated" / "index.json").read_text(encoding="utf-8"))
    return Results(
        count=args.count,
        spec_files=len(list((project / "template_specs").rglob("*.yaml"))),
        rendered_files=sum(1 for p in generated.rglob("*") if p.is_file()),
        repeat=args.repeat,
        bytecode="caller's environment" if args.inherit_env else "private cache (warmed)",
        load=(load_before, os.getloadavg()[0]),
        source=source_state(package),
        source_changed=source_digest(package) != source_before,
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
        "source": res.source,
        "source_changed_during_run": res.source_changed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": {"before": res.load[0], "after": res.load[1]},
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

    lines = [
        f"boxsmith render benchmark: python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {res.load[0]:.2f} -> {res.load[1]:.2f}, bytecode: {res.bytecode}",
        f"boxsmith from {res.source}; {res.repeat} timed repeat(s), each a fresh process",
    ]
    if res.source_changed:
        lines.append("WARNING: boxsmith's code changed during the run; the figures mix versions")
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
        "interpreter start-up, +cli% start-up + `import boxsmith.cli`, +full% start-up + `import",
        "boxsmith.pipeline` (every module a full validate/render/check loads); - where the",
        "figure is below that baseline (the process does not load all of it).",
        "",
        "targets (judged on the median)",
    ]
    for t in targets(res):
        verdict = "PASS" if t["pass"] else "FAIL"
        lines.append(f"  {verdict}  {t['name']}: median {t['median_s']:.3f} s")
        if t["note"]:
            lines.append(f"        {t['note']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="synthetic specs (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first (default 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON object, not a table")
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
    parser.add_argument("--boxsmith", default=None, help="console script (default: venv's)")
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="run children in this environment as is (no private bytecode cache)",
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--count and --repeat must be at least 1, --warmup at least 0")
    args.catalog = args.catalog.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    project = Path(tempfile.mkdtemp(prefix="boxsmith-bench-", dir=args.tmp_dir))
    try:
        write_project(project, args.count)
        results = measure(args, project)
    except SetupError as exc:
        sys.stderr.write(f"benchmark setup failed: {exc}\n")
        return 2
    finally:
        if args.keep:
            sys.stderr.write(f"synthetic project kept in {project}\n")
        else:
            shutil.rmtree(project, ignore_errors=True)
    if args.json:
        print(json.dumps(as_json(results), indent=2))
    else:
        print(as_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
