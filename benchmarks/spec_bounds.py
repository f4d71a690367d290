"""Time and peak memory of `boxsmith validate` on hostile specs, against a valid spec.

What it measures: for each shape below, one fresh `boxsmith -C <project> validate` process per
repeat (`--repeat`, default 5, after `--warmup` untimed ones), timed with `time.perf_counter`
around the process, and its peak resident memory from `os.wait4` (`ru_maxrss`). Every project
holds exactly one spec, so each run does the same work up to the point where the spec is read:
start-up, imports, settings, reading and composing one file.

- baseline: a valid spec of the same shape as the others (name, version, base image, one env
  value); validate exits 0. Every other figure is reported against it.
- yaml-billion-laughs: nine levels of nine aliases (9**9 values if expanded).
- yaml-merge-bomb: merge keys whose merged mappings merge others (10**8 keys if expanded).
- yaml-file-too-large: a 1 MiB + 1 byte spec file.
- jinja-power, jinja-repetition, jinja-join, jinja-range, jinja-nested-loops,
  jinja-macro-recursion: `{{ }}` expressions that would take minutes of CPU or gigabytes.
- jinja-list-of-strings: `['x'*100000]*100000` (each step within the per-value limit, 10 GB
  in all).
- vars-doubling: eight vars, each twice the one before (128 000 characters at the end).
- vars-alias-list: a list var of 999 aliases to one 900 KB string, used as `{{ vars.b }}`.
- inject-workdir-newline: `workdir: "/home/user\\nRUN touch /tmp/x"` (a located error).

Each hostile shape must end with exit 2 (a located error); any other exit code, or a run longer
than `--timeout` seconds (default 20: the old code took minutes on several shapes), is reported
as a failure of that shape. Targets: every shape's median within 2 s (what the bad-spec corpus
asserts), and its peak memory within 1.5 times the baseline's ("flat memory"). The script
reports and never gates: it exits 0 whatever the figures, 2 when the setup fails.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

HEAD = 'name: app\nversion: "1.0.0"\ndescription: bench\nbase_image: debian:bookworm-slim\n'
LAUGHS = "vars:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def _merge_bomb(levels: int = 8) -> str:
    node = "&m0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}"
    for i in range(1, levels):
        node = f"&m{i} {{<<: [{node}, {', '.join([f'*m{i - 1}'] * 9)}]}}"
    return f"vars:\n  bomb: {{<<: [{node}]}}\n"


_DOUBLED = "".join(
    f"  {b}: '{{{{ vars.{a} }}}}{{{{ vars.{a} }}}}'\n"
    for a, b in zip("abcdefg", "bcdefgh", strict=True)
)

SHAPES: dict[str, str] = {
    "baseline": "env:\n  X: '{{ 6 * 7 }}'\n",
    "yaml-billion-laughs": LAUGHS,
    "yaml-merge-bomb": _merge_bomb(),
    "yaml-file-too-large": "labels:\n  big: " + "x" * (1 << 20) + "\n",
    "jinja-power": "env:\n  X: '{{ 9 ** 99999999 }}'\n",
    "jinja-repetition": "env:\n  X: \"{{ 'x' * 10**9 }}\"\n",
    "jinja-join": "env:\n  X: \"{{ range(99999) | join('x' * 9999) }}\"\n",
    "jinja-range": "env:\n  X: '{{ range(10**9) | list }}'\n",
    "jinja-nested-loops": (
        "env:\n  X: '{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}"
        "{% endfor %}'\n"
    ),
    "jinja-macro-recursion": (
        "env:\n  X: '{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}'\n"
    ),
    "jinja-list-of-strings": "env:\n  X: \"{{ ['x' * 100000] * 100000 }}\"\n",
    "vars-alias-list": (
        "vars:\n  s: &s " + "x" * 900_000 + "\n  b: [" + ", ".join(["*s"] * 999) + "]\n"
        "env:\n  X: '{{ vars.b }}'\n"
    ),
    "vars-doubling": f"vars:\n  a: '{'x' * 1000}'\n{_DOUBLED}env:\n  X: '{{{{ vars.h }}}}'\n",
    "inject-workdir-newline": 'workdir: "/home/user\\nRUN touch /tmp/x"\n',
}


def one_run(command: list[str], env: dict[str, str], timeout: float) -> tuple[float, int, int]:
    """(wall seconds, exit code, peak RSS in KiB) of one process; exit -9 when it timed out."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            elapsed = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            return elapsed, proc.returncode, int(usage.ru_maxrss)
        if time.perf_counter() > deadline:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            return time.perf_counter() - start, -9, int(usage.ru_maxrss)
        time.sleep(0.005)  # polling a child we time; the resolution is far below the figures


def measure(args: Any, root: Path) -> dict[str, Any]:
    """Every shape's times, exit codes and peak memory, interleaved over the repeats."""
    script, env = common.children(args, root)
    watch = common.Watch(env)
    projects = {}
    for name, body in SHAPES.items():
        project = root / name
        (project / "template_specs").mkdir(parents=True)
        (project / "template_specs/app.yaml").write_text(HEAD + body, encoding="utf-8")
        projects[name] = [script, "-C", str(project), "validate"]
    results: dict[str, dict[str, list[Any]]] = {
        name: {"times": [], "codes": [], "rss_kib": []} for name in SHAPES
    }
    for index in range(args.warmup + args.repeat):
        for name, command in projects.items():  # interleaved: load changes hit every shape
            elapsed, code, rss = one_run(command, env, args.timeout)
            if index >= args.warmup:
                results[name]["times"].append(elapsed)
                results[name]["codes"].append(code)
                results[name]["rss_kib"].append(rss)
    if set(results["baseline"]["codes"]) != {0}:
        raise common.SetupError("the baseline spec did not validate (exit 0)")
    return {"conditions": watch.conditions(), "shapes": results}


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per shape: median and best time, peak memory, against the baseline, verdict."""
    shapes = result["shapes"]
    base_time = statistics.median(shapes["baseline"]["times"])
    base_rss = max(shapes["baseline"]["rss_kib"])
    rows = []
    for name, data in shapes.items():
        median = statistics.median(data["times"])
        rss = max(data["rss_kib"])
        expected = 0 if name == "baseline" else 2
        rows.append(
            {
                "shape": name,
                "median_s": round(median, 3),
                "best_s": round(min(data["times"]), 3),
                "vs_baseline": round(median / base_time, 2),
                "peak_rss_mib": round(rss / 1024, 1),
                "rss_vs_baseline": round(rss / base_rss, 2),
                "exit_codes": sorted(set(data["codes"])),
                "pass": set(data["codes"]) == {expected}
                and median <= 2.0
                and rss <= 1.5 * base_rss,
            }
        )
    return rows


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "conditions": result["conditions"].as_json(),
        "shapes": result["shapes"],
        "summary": summary(result),
    }


def as_table(result: dict[str, Any]) -> str:
    repeats = len(result["shapes"]["baseline"]["times"])
    lines = result["conditions"].table_head(
        "boxsmith validate on hostile specs", "one spec per project", f"{repeats} repeats"
    )
    lines += [
        f"{'shape':<24} {'median s':>9} {'best s':>8} {'x base':>7} {'peak MiB':>9} "
        f"{'x base':>7}  exit  verdict"
    ]
    for row in summary(result):
        lines.append(
            f"{row['shape']:<24} {row['median_s']:>9.3f} {row['best_s']:>8.3f} "
            f"{row['vs_baseline']:>7.2f} {row['peak_rss_mib']:>9.1f} {row['rss_vs_baseline']:>7.2f}"
            f"  {','.join(map(str, row['exit_codes'])):<4}  {'PASS' if row['pass'] else 'FAIL'}"
        )
    lines.append(
        "targets: exit 2 with a located error, median within 2 s, peak memory within 1.5 x the "
        "baseline's"
    )
    return "\n".join(lines)


def main() -> int:
    parser = common.new_parser(__doc__)
    parser.add_argument(
        "--repeat", type=common.at_least(1), default=5, help="timed runs per shape (default 5)"
    )
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per run (20)")
    args = parser.parse_args()
    return common.main_of(args, measure, as_json, as_table, name="spec_bounds")


if __name__ == "__main__":
    sys.exit(main())
