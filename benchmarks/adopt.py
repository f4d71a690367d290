"""Adopting boxsmith: from `pip install` to a passing `release` in a new repository, and what
each install costs on disk.

Setup (untimed): a wheel of this checkout (`pip wheel --no-deps`), so every install below is
what `pip install boxsmith[...]` from an index would give, with the dependencies from PyPI
(through pip's cache, which the first install fills: the figures are for a machine that has
installed Python packages before, as a CI runner with a pip cache has).

(a) Install size: for the base install and for `[all]`, a fresh venv, `pip install
    <wheel>[extra]`, then the packages in it (`pip list`, pip itself left out) and what it
    added on disk (the venv's bytes beyond a bare venv's: installed programs such as hadolint
    too). The baseline is `[all]`; the ratio says how much less the base install
    (validate, render, check, list, schema: what a render-only CI job needs) brings.
(b) Adoption: `--rounds` rounds of the whole way in, each in a fresh folder: a fresh venv and
    `pip install <wheel>[all]`, `boxsmith init repo`, `boxsmith -C repo release` (to a local
    backend of the round's own, on a free port, its data in the repository), then `backend
    reset --yes`. The engine starts cold for this run: the starter's base image
    (debian:bookworm-slim) is given a run-unique id first (`FROM debian:bookworm-slim` plus a
    label with the run's id, tagged `boxsmith-bench/base:<run>`), and each round's starter spec
    names that tag, so no parity base, build cache or image of any earlier run or other project
    matches: the first round builds the parity layer and the starter from scratch (apt
    downloads included; pulling the base image is the registry's time, not boxsmith's). Later
    rounds are warm: what the engine kept from the round before. Each step is timed on its own,
    and the total. The run removes its base tag, its parity bases and its images at the end.

With `--keep` the folders stay and no backend is reset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import at_least, child_env, free_port, main_of, new_parser, run

from boxsmith.config import project_id

REPO = Path(__file__).resolve().parents[1]
STARTER_BASE = "debian:bookworm-slim"
PARITY_LABEL = "dev.boxsmith.parity-of"


@dataclass
class Install:
    extra: str
    seconds: float
    packages: int
    megabytes: float


@dataclass
class Round:
    cold: bool
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.steps.values())


@dataclass
class Results:
    installs: list[Install] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)


def _wheel(folder: Path) -> Path:
    """A wheel of this checkout, without its dependencies (they come from the index)."""
    out = folder / "wheel"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        folder, child_env(None))  # fmt: skip
    (wheel,) = out.glob("boxsmith-*.whl")
    return wheel


def _venv(folder: Path, wheel: Path, extra: str) -> tuple[Path, float]:
    """A fresh venv at `folder` with `wheel[extra]` installed; its python and the install's
    seconds (the venv's own creation not counted)."""
    run([sys.executable, "-m", "venv", str(folder)], folder.parent, child_env(None))
    python = folder / "bin" / "python"
    spec = f"{wheel}[{extra}]" if extra else str(wheel)
    seconds, _ = run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
        folder.parent,
        child_env(None),
    )
    return python, seconds


def _install(folder: Path, wheel: Path, extra: str) -> Install:
    python, seconds = _venv(folder, wheel, extra)
    _, listed = run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        folder,
        child_env(None),
    )
    packages = [p["name"] for p in json.loads(listed) if p["name"].lower() != "pip"]
    bare = folder.with_name(folder.name + "-bare")  # what the venv has before the install
    run([sys.executable, "-m", "venv", str(bare)], folder.parent, child_env(None))
    return Install(extra or "base", seconds, len(packages), (_size(folder) - _size(bare)) / 1e6)


def _size(folder: Path) -> int:
    """Bytes of the files under `folder` (the installed programs too, such as hadolint)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _private_base(folder: Path, run_id: str) -> str:
    """The starter's base image under a run-unique id (module doc): its tag."""
    tag = f"boxsmith-bench/base:{run_id}"
    dockerfile = f"FROM {STARTER_BASE}\nLABEL dev.boxsmith.bench-run={run_id}\n"
    (folder / "Dockerfile").write_text(dockerfile)
    run(["docker", "build", "-q", "-t", tag, str(folder)], folder, child_env(None))
    return tag


def _remove(base: str) -> None:
    """The run's parity bases, then its base tag (the rounds removed their own images)."""
    _remove_images(f"{PARITY_LABEL}={base}")
    subprocess.run(["docker", "rmi", base], capture_output=True, check=False)


def _remove_images(label: str) -> None:
    """`docker rmi` of the images labelled `label` (one refused while in use stays)."""
    found = subprocess.run(
        ["docker", "images", "-q", "--filter", f"label={label}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if found:
        subprocess.run(["docker", "rmi", *sorted(set(found))], capture_output=True, check=False)


def _round(folder: Path, wheel: Path, base: str, cold: bool, keep: bool) -> Round:
    folder.mkdir()
    result = Round(cold)
    python, result.steps["pip install [all]"] = _venv(folder / "venv", wheel, "all")
    boxsmith = str(python.parent / "boxsmith")
    env = child_env(None, {"BOXSMITH_BACKEND_PORT": str(free_port())})
    result.steps["boxsmith init"], _ = run([boxsmith, "init", "repo"], folder, env)
    repo = folder / "repo"
    (spec,) = (repo / "template_specs").glob("*.yaml")  # the starter, on the run's base
    spec.write_text(spec.read_text().replace(f"base_image: {STARTER_BASE}", f"base_image: {base}"))
    run([boxsmith, "-C", str(repo), "render"], folder, env)
    try:
        result.steps["boxsmith release"], _ = run(
            [boxsmith, "-C", str(repo), "release"], folder, env
        )
    finally:
        if not keep:  # the backend's images and containers, then the round's proof build
            run([boxsmith, "-C", str(repo), "backend", "reset", "--yes"], folder, env)
            _remove_images(f"dev.boxsmith.project={project_id(repo)}")
    return result


def measure(args: argparse.Namespace, project: Path) -> Results:
    results = Results()
    wheel = _wheel(project)
    for extra in ("", "all"):
        results.installs.append(_install(project / f"install-{extra or 'base'}", wheel, extra))
    base = _private_base(project, uuid.uuid4().hex[:12])
    try:
        for n in range(args.rounds):
            results.rounds.append(_round(project / f"round-{n}", wheel, base, n == 0, args.keep))
    finally:
        if not args.keep:
            _remove(base)
    return results


def as_json(results: Results) -> dict[str, Any]:
    return {
        "installs": [vars(i) for i in results.installs],
        "rounds": [{"cold": r.cold, "steps": r.steps, "total": r.total} for r in results.rounds],
    }


def as_table(results: Results) -> str:
    lines = ["(a) install size (pip cache warm)", f"  {'install':10} {'packages':>9} {'MB':>8}"]
    for i in results.installs:
        lines.append(f"  {i.extra:10} {i.packages:9d} {i.megabytes:8.1f}  ({i.seconds:.1f}s)")
    base, full = results.installs
    lines.append(
        f"  base / [all]: {base.packages}/{full.packages} packages "
        f"({base.packages / full.packages:.0%}), {base.megabytes:.1f}/{full.megabytes:.1f} MB "
        f"({base.megabytes / full.megabytes:.0%})"
    )
    lines += ["", "(b) pip install -> init -> passing release, seconds"]
    for n, r in enumerate(results.rounds):
        steps = ", ".join(f"{name} {sec:.1f}" for name, sec in r.steps.items())
        lines.append(f"  round {n} ({'cold' if r.cold else 'warm'}): {r.total:6.1f}  [{steps}]")
    return "\n".join(lines)


def main() -> int:
    parser = new_parser(__doc__)
    parser.add_argument(
        "--rounds", type=at_least(1), default=2, help="adoption rounds, the first cold (2)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    code = main_of(args, measure, as_json, as_table, name="adopt")
    sys.stderr.write(f"benchmark took {time.perf_counter() - start:.0f}s\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
