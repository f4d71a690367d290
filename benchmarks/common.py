"""What the benchmarks share: timed fresh-process runs, their figures, targets and reports.

Every script in benchmarks/ imports it as `common` (a script run as `python benchmarks/X.py` has
its own folder on sys.path). The reports are made here: a table on stdout (or JSON with
`--json`), and both saved under benchmarks/out/ (gitignored) with the time of the run in their
names, so a later run does not overwrite an earlier one.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from boxsmith._internal.build.rendered import image_ref
from boxsmith.config import project_id

__all__ = [
    "NO_CACHE",
    "OUT_DIR",
    "TIMEOUT_S",
    "Conditions",
    "Figure",
    "Goal",
    "SetupError",
    "Watch",
    "at_least",
    "child_env",
    "children",
    "figure_head",
    "figure_row",
    "find_boxsmith",
    "free_port",
    "main_of",
    "new_parser",
    "run",
    "template_image",
    "verdict_lines",
]

R = TypeVar("R")
NO_CACHE = {"BOXSMITH_NO_CACHE": "1"}  # turns off boxsmith's check stamp and build record
TIMEOUT_S = 1800  # any single command; a hung engine fails the setup instead of the machine
OUT_DIR = Path(__file__).resolve().parent / "out"


class SetupError(Exception):
    """The benchmark could not run (as opposed to a slow figure, which is only reported)."""


def shown(command: Sequence[str], extra_env: Mapping[str, str] | None = None) -> str:
    """A command as a shell line, led by the variables it adds to the environment."""
    prefix = "".join(f"{k}={v} " for k, v in (extra_env or {}).items())
    return prefix + shlex.join(command)


@dataclass
class Figure:
    """Wall times of one measured command (or loop of commands) over the repeats; `extra_env`
    is added to the environment the command runs in."""

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
        return {
            "command": shown(self.command, self.extra_env),
            "best_s": round(self.best, 4),
            "median_s": round(self.median, 4),
            "runs_s": [round(t, 4) for t in self.times],
        }

    def timed(self, cwd: Path, env: Mapping[str, str]) -> float:
        """Wall seconds of one run of the command in `env` plus `extra_env` (not recorded)."""
        elapsed, _ = run(self.command, cwd, env, self.extra_env)
        return elapsed


def template_image(root: Path, name: str, version: str) -> str:
    """The tag `boxsmith build` gives version `version` of template `name` in the project at
    `root` (its own namespace: `boxsmith/<project id>/<name>:<version>`)."""
    return image_ref(project_id(root), name, version)


def child_env(pycache: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every measured process; `pycache` gives it a private bytecode cache,
    `extra` is set on top (a benchmark's own settings)."""
    env = dict(os.environ)
    for key in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", *NO_CACHE):
        env.pop(key, None)  # no annotations or job summary; boxsmith's defaults
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(extra or {})
    return env


def run(
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
) -> tuple[float, str]:
    """(wall seconds, stdout) of one fresh-process run in `env` plus `extra_env`; SetupError
    when it cannot start, exits non-zero or runs longer than TIMEOUT_S."""
    line = shown(command, extra_env)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            list(command),
            cwd=cwd,
            env={**env, **(extra_env or {})},
            capture_output=True,
            check=False,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"`{line}` ran longer than {TIMEOUT_S} s") from exc
    except OSError as exc:
        raise SetupError(f"`{line}`: {exc}") from exc
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace")[-3000:]
        raise SetupError(f"`{line}` exited {done.returncode}:\n{tail}")
    return elapsed, done.stdout.decode(errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_boxsmith(explicit: str | None) -> str:
    """The console script to measure: `explicit`, else the one beside this python, else PATH's."""
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "boxsmith"
    if beside.is_file():
        return str(beside)
    found = shutil.which("boxsmith")
    if not found:
        raise SetupError("no `boxsmith` console script; run with the venv's python or --boxsmith")
    return found


def children(
    args: argparse.Namespace, project: Path, extra: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """The console script the measured processes run (`args.boxsmith`, else the venv's) and
    their environment: a private bytecode cache in `project` unless `args.inherit_env`, `extra`
    on top."""
    pycache = None if args.inherit_env else project / "pycache"
    return find_boxsmith(args.boxsmith), child_env(pycache, extra)


def boxsmith_package(env: Mapping[str, str], python: str) -> Path:
    """The folder `python` in `env` imports boxsmith from."""
    try:
        _, out = run([python, "-c", "import boxsmith; print(boxsmith.__file__)"], Path(), env)
    except SetupError as exc:
        raise SetupError(f"cannot import boxsmith: {exc}") from exc
    return Path(out.strip()).parent


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


# ------------------------------------------------------------------------ watching the run


@dataclass
class Conditions:
    """Which boxsmith a run measured and under what load: the head of every report."""

    source: str  # where the measured boxsmith was imported from, @commit[+dirty]
    source_changed: bool  # boxsmith's code changed while the benchmark ran
    load: tuple[float, float]  # 1-minute load average before and after

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_changed_during_run": self.source_changed,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": {"before": self.load[0], "after": self.load[1]},
        }

    def table_head(
        self, title: str, setting: str, repeats: str, *, each: str = "each a fresh process"
    ) -> list[str]:
        """The first lines of a table: `title`, the machine, its load and `setting` (what else
        shapes the figures), the boxsmith measured, `repeats` and what `each` repeat is; a
        warning if its code changed."""
        lines = [
            f"{title}: python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load {self.load[0]:.2f} -> {self.load[1]:.2f}, {setting}",
            f"boxsmith from {self.source}; {repeats}, {each}",
        ]
        if self.source_changed:
            lines.append(
                "WARNING: boxsmith's code changed during the run; the figures mix versions"
            )
        return lines


class Watch:
    """The boxsmith that `python` in `env` imports (the measured processes') and the load, from
    construction until `conditions()`."""

    def __init__(self, env: Mapping[str, str], python: str = sys.executable) -> None:
        self.package = boxsmith_package(env, python)
        self.digest = source_digest(self.package)
        self.load = os.getloadavg()[0]

    def changed(self) -> bool:
        return source_digest(self.package) != self.digest

    @contextmanager
    def noting_edits(self) -> Iterator[None]:
        """Re-raise a SetupError of the block with a note when boxsmith's code changed since
        construction: the failure may come from an edit made during the run."""
        try:
            yield
        except SetupError as exc:
            if self.changed():
                raise SetupError(
                    f"{exc}\n(boxsmith's code in {self.package} changed during the run)"
                ) from exc
            raise

    def conditions(self) -> Conditions:
        return Conditions(
            source=source_state(self.package),
            source_changed=self.changed(),
            load=(self.load, os.getloadavg()[0]),
        )


# ---------------------------------------------------------------------------------- reports


@dataclass
class Goal:
    """A stated performance target and how the run did: `value` (the `stat` of the figures, in
    `unit`: "s", "x" for a ratio, else what is counted) against `limit`."""

    name: str
    value: float
    unit: str
    limit: float
    passed: bool
    note: str = ""
    stat: str = "median"

    def text(self) -> str:
        if self.unit == "x":
            return f"{self.value:.2f}x ({self.stat}s)"
        if self.unit == "s":
            return f"{self.stat} {self.value:.3f} s"
        return f"{self.value:g} {self.unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "unit": self.unit,
            "stat": self.stat,
            "limit": self.limit,
            "pass": self.passed,
            "note": self.note,
        }


def verdict_lines(goals: Sequence[Goal]) -> list[str]:
    """The table's verdicts: PASS or FAIL, each goal's name and value, its note."""
    lines = ["targets"]
    for t in goals:
        lines.append(f"  {'PASS' if t.passed else 'FAIL'}  {t.name}: {t.text()}")
        if t.note:
            lines.append(f"        {t.note}")
    return lines


def figure_row(label: str, figure: Figure, width: int = 48, extra: str = "") -> str:
    """One table row: `label` padded to `width`, best and median in seconds, then `extra`."""
    return f"  {label:{width}} {figure.best:7.3f}s {figure.median:7.3f}s  {extra}".rstrip()


def figure_head(title: str, width: int = 48, extra: str = "") -> str:
    """The head of a block of figure_row rows."""
    return f"{title:{width + 2}} {'best':>8} {'median':>8}  {extra}".rstrip()


def save_report(name: str, report: Mapping[str, Any], table: str, out: Path) -> list[Path]:
    """Write the report as `<name>-<time>.json` and `.txt` under `out`; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".txt")]
    paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(table + "\n", encoding="utf-8")
    return paths


# ------------------------------------------------------------------------------ command line


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def new_parser(doc: str | None, *, base_image: bool = False) -> argparse.ArgumentParser:
    """A benchmark's parser, described by its module `doc` (shown whole by --help), with the
    options every benchmark has: --warmup, --json, --boxsmith, --inherit-env, --keep,
    --tmp-dir and --out; and --base with `base_image` (the benchmarks that build)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--warmup", type=at_least(0), default=1, help="untimed passes first (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.add_argument("--boxsmith", default=None, help="console script (default: venv's)")
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="run children in this environment as is (no private bytecode cache)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder and what the run made"
    )
    parser.add_argument(
        "--tmp-dir", type=Path, default=None, help="where the folder goes (default: system temp)"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT_DIR, help="where the reports go (default: %(default)s)"
    )
    if base_image:
        parser.add_argument(
            "--base",
            default="debian:bookworm-slim",
            help="local base image the benchmark's templates start from (default: %(default)s)",
        )
    return parser


def main_of(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace, Path], R],
    as_json: Callable[[R], dict[str, Any]],
    as_table: Callable[[R], str],
    *,
    name: str,
) -> int:
    """`measure(args, project)` in a fresh temporary folder `project` under `args.tmp_dir`
    (removed afterwards unless `args.keep`); print the results as JSON (`args.json`) or a table
    and save both under `args.out` as `<name>-<time>.*`. The exit code: 0 whatever the figures,
    2 when the setup fails."""
    project = Path(tempfile.mkdtemp(prefix=f"boxsmith-bench-{name}-", dir=args.tmp_dir))
    try:
        results = measure(args, project)
    except SetupError as exc:
        sys.stderr.write(f"benchmark setup failed: {exc}\n")
        return 2
    finally:
        if args.keep:
            sys.stderr.write(f"kept (--keep): {project}\n")
        else:
            shutil.rmtree(project, ignore_errors=True)
    report, table = as_json(results), as_table(results)
    print(json.dumps(report, indent=2) if args.json else table)
    saved = save_report(name, report, table, args.out)
    sys.stderr.write(f"saved: {', '.join(str(p) for p in saved)}\n")
    return 0
