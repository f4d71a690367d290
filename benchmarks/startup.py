"""Before and after issue 12's removal of start-up tricks: the same no-change commands on two
installs of boxsmith, interleaved in one run.

Issue 12 removed code that traded clarity for start-up milliseconds: the cyclic garbage
collector switched off for every command, a second argparse parser that only existed to be
faster, and a hand-rolled `Value` class in place of dataclasses. This measures what that costs a
user, on the commands people run many times a day, where start-up is most of the time.

The two installs (each its own venv, the same versions of every dependency):
- before: the code before the restructure, commit da77197 (`--before`, default
  benchmarks/out/before/.venv/bin/boxsmith: benchmarks/out/ is gitignored), set up from the
  repository's root with
      git worktree add benchmarks/out/before da77197
      cd benchmarks/out
      python -m venv before/.venv
      ../../.venv/bin/pip freeze --exclude-editable > constraints.txt
      before/.venv/bin/pip install -c constraints.txt -e before
- after: the current code (`--boxsmith`, default this venv's `boxsmith`). On a checkout that
  others edit during the run, measure a snapshot instead: a worktree of its HEAD with a venv
  made as above, given as `--boxsmith <worktree>/.venv/bin/boxsmith`.

The commands, each a fresh process timed with `time.perf_counter` around `subprocess.run`:
`boxsmith --version` (start-up alone) and, on each catalog, `check` (no change: answered from
the verification stamp), `check` with BOXSMITH_NO_CACHE=1 (the full check: every spec
validated and rendered in memory, where a garbage collector has work to do), `build` (no
change), `validate` and `list --json`. The catalogs:
- bundled: a copy of this repository's catalog. Its `build` is `build --allow-skip`, as the
  main job runs it: three of its templates cannot build here, so no build record is written and
  every run is boxsmith's full up-to-date check against the engine. An install from before
  per-project image names tags the checkout's images (`boxsmith/<name>:<version>`, shared by
  both sides), so this row is measured only when both installs compute the same build keys
  (the same parity layer; the generated catalogs' builds tell): otherwise each install would
  rebuild them, and the row is left out with that reason.
- generated: `--count` small buildable specs (default 500, benchmarks/catalog.py), named
  `startup-b-NNN` for the before install and `startup-a-NNN` for the after one (each its own
  images, so different build keys cannot make one side rebuild the other's), built once before
  timing on a private tag `bench-base/<base>:startup` of `--base`; its `build` is answered from
  the build record.

Same work on both sides: each install has its own copy of each catalog (the stamp and the
record carry a digest of boxsmith's own code, so in a shared folder each install would void
the other's and every no-change command would become a full one); before timing, both installs
must find generated/ up to date, report the same build statuses and list the same templates.
Each round runs every command on both installs back to back, the before install first in even
rounds and the after install first in odd ones, so load changes and order effects hit both
sides. Reported: best and median per side, and after - before on the medians, in ms.

At the end the benchmark removes the images it built (the templates, the parity bases on the
private base, the private base), unless `--keep`. It reports and never gates: exit 0 whatever
the figures, 2 when the setup fails. Reports: stdout and benchmarks/out/.

    .venv/bin/python benchmarks/startup.py [--count 500] [--repeat 10] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import (
    VERSION,
    copy_bundled,
    parity_images,
    private_base,
    remove_images,
    template_names,
    write_buildable,
)
from common import (
    NO_CACHE,
    OUT_DIR,
    Conditions,
    Figure,
    SetupError,
    Watch,
    at_least,
    children,
    main_of,
    new_parser,
    run,
    template_image,
)

SIDES = ("before", "after")
BEFORE = OUT_DIR / "before" / ".venv" / "bin" / "boxsmith"
# label -> (arguments, environment added); the bundled catalog's build adds --allow-skip
COMMANDS: dict[str, tuple[list[str], dict[str, str]]] = {
    "check": (["check"], {}),
    "check (full, NO_CACHE=1)": (["check"], NO_CACHE),
    "build (no change)": (["build"], {}),
    "validate": (["validate"], {}),
    "list --json": (["list", "--json"], {}),
}


@dataclass
class Pair:
    """One command on both installs: a Figure per side."""

    catalog: str
    label: str
    figures: dict[str, Figure]

    def diff_ms(self) -> float:
        return 1000 * (self.figures["after"].median - self.figures["before"].median)

    def as_json(self) -> dict[str, Any]:
        before, after = self.figures["before"], self.figures["after"]
        return {
            "catalog": self.catalog,
            "command": self.label,
            "before": before.as_json(),
            "after": after.as_json(),
            "after_minus_before_median_ms": round(self.diff_ms(), 1),
            "after_minus_before_best_ms": round(1000 * (after.best - before.best), 1),
            "after_over_before_median": round(after.median / before.median, 3),
        }


@dataclass
class Results:
    conditions: dict[str, Conditions]  # by side
    count: int
    repeat: int
    keys_agree: bool  # the bundled catalog's build was measured
    pairs: list[Pair] = field(default_factory=list)


class Bench:
    """The two installs, a copy of each catalog per install, and the images built."""

    def __init__(self, args: argparse.Namespace, project: Path) -> None:
        self.args, self.project = args, project
        after, self.env = children(args, project)
        self.box = {"before": str(args.before), "after": after}
        # names of equal length, so that the two sides' catalogs differ in nothing else
        self.names = {side: template_names(args.count, f"startup-{side[0]}") for side in SIDES}
        self.private_base = private_base(args.base, "startup")
        self.keys_agree = False  # the installs compute the same build keys (parity layer)

    def root(self, catalog: str, side: str) -> Path:
        return self.project / f"{catalog}-{side}"

    def command(self, catalog: str, side: str, args: Sequence[str]) -> list[str]:
        return [self.box[side], "-C", str(self.root(catalog, side)), *args]

    def do(self, command: Sequence[str]) -> str:
        return run(command, self.project, self.env)[1]

    def setup(self) -> None:
        """Both catalogs for both installs, the generated ones built (their own images each);
        the same answers from both installs."""
        self.do(["docker", "tag", self.args.base, self.private_base])
        parities = {}
        for side in SIDES:
            copy_bundled(self.root("bundled", side))
            write_buildable(self.root("generated", side), self.names[side], self.private_base)
            self.do(self.command("generated", side, ["render", "--quiet"]))
            built = json.loads(
                self.do(self.command("generated", side, ["build", "--json", "-j", "4"]))
            )
            parities[side] = {str(b.get("parity_base", "")) for b in built["builds"]}
        self.keys_agree = parities["before"] == parities["after"]
        self.same_answers("generated")
        if self.keys_agree:
            self.same_answers("bundled")

    def same_answers(self, catalog: str) -> None:
        """SetupError unless both installs find generated/ up to date and give the same build
        statuses and template list (this also writes each copy's stamp and record)."""
        allow = ["--allow-skip"] if catalog == "bundled" else []
        answers = {}
        for side in SIDES:
            own = f"startup-{side[0]}-"  # the generated names' side prefix, left out
            self.do(self.command(catalog, side, ["check"]))
            built = json.loads(self.do(self.command(catalog, side, ["build", "--json", *allow])))
            listed = json.loads(self.do(self.command(catalog, side, ["list", "--json"])))
            answers[side] = (
                [(b["name"].removeprefix(own), b["status"]) for b in built["builds"]],
                [t["name"].removeprefix(own) for t in listed["templates"]],
            )
        if answers["before"] != answers["after"]:
            raise SetupError(f"the installs disagree on the {catalog} catalog: {answers}")
        statuses = {status for _, status in answers["after"][0]}
        if not statuses <= {"cached", "skipped"}:
            raise SetupError(f"a no-change build of the {catalog} catalog did work: {statuses}")

    def pairs(self) -> list[Pair]:
        """What is timed: `--version`, then every command on each catalog. The bundled
        catalog's build only when both installs compute the same build keys: its images are
        the checkout's, and an install with other keys would rebuild them."""
        pairs = [
            Pair(
                "-",
                "--version",
                {side: Figure(side, [self.box[side], "--version"]) for side in SIDES},
            )
        ]
        for catalog in ("bundled", "generated"):
            for label, (args, extra) in COMMANDS.items():
                build = args[0] == "build"
                if catalog == "bundled" and build and not self.keys_agree:
                    continue
                skip = ["--allow-skip"] if catalog == "bundled" and build else []
                figures = {
                    side: Figure(side, self.command(catalog, side, [*args, *skip]), dict(extra))
                    for side in SIDES
                }
                pairs.append(Pair(catalog, label, figures))
        return pairs

    def clean(self) -> None:
        """Remove the images the run made: the templates, the parity bases, the private base."""
        if self.args.keep:
            sys.stderr.write(f"kept (--keep): the images on {self.private_base}\n")
            return
        for side in SIDES:
            root = self.root("generated", side)
            templates = [  # the tag of either install: per project, or engine-wide before it
                tag
                for n in self.names[side]
                for tag in (template_image(root, n, VERSION), f"boxsmith/{n}:{VERSION}")
            ]
            for start in range(0, len(templates), 100):  # one `docker rmi` per hundred
                subprocess.run(
                    ["docker", "rmi", *templates[start : start + 100]],
                    capture_output=True,
                    check=False,
                )
        remove_images([*parity_images(self.private_base), self.private_base])


def measure_in(args: argparse.Namespace, project: Path) -> Results:
    bench = Bench(args, project)
    watches = {
        side: Watch(bench.env, str(Path(bench.box[side]).parent / "python")) for side in SIDES
    }
    try:
        with watches["after"].noting_edits():
            bench.setup()
            pairs = bench.pairs()
            for i in range(args.warmup + args.repeat):
                for pair in pairs:
                    order = SIDES if i % 2 == 0 else SIDES[::-1]
                    for side in order:
                        figure = pair.figures[side]
                        elapsed = figure.timed(project, bench.env)
                        if i >= args.warmup:
                            figure.times.append(elapsed)
    finally:
        bench.clean()
    conditions = {side: watch.conditions() for side, watch in watches.items()}
    return Results(conditions, args.count, args.repeat, bench.keys_agree, pairs)


def as_json(res: Results) -> dict[str, Any]:
    return {
        "conditions": {side: c.as_json() for side, c in res.conditions.items()},
        "generated_specs": res.count,
        "rounds": res.repeat,
        "build_keys_agree": res.keys_agree,
        "commands": [p.as_json() for p in res.pairs],
    }


def as_table(res: Results) -> str:
    before = res.conditions["before"]
    lines = res.conditions["after"].table_head(
        "boxsmith start-up, before and after issue 12",
        f"generated catalog of {res.count} specs",
        f"{res.repeat} rounds, the two installs interleaved",
    )
    lines.append(f"before: boxsmith from {before.source}")
    if before.source_changed:
        lines.append("WARNING: the before install's code changed during the run")
    lines += [
        "",
        f"  {'catalog':9} {'command':26} {'before':>8} {'after':>8} {'after-before':>13} "
        f"{'ratio':>6}   {'best before/after':>17}",
    ]
    for pair in res.pairs:
        b, a = pair.figures["before"], pair.figures["after"]
        lines.append(
            f"  {pair.catalog:9} {pair.label:26} {b.median:7.3f}s {a.median:7.3f}s "
            f"{pair.diff_ms():+10.1f} ms {a.median / b.median:5.2f}x   "
            f"{b.best:7.3f}s/{a.best:.3f}s"
        )
    if not res.keys_agree:
        lines += [
            "  (bundled build not measured: the installs' parity layers differ, so their build",
            "  keys do: each would rebuild the checkout's images)",
        ]
    lines += [
        "",
        "medians over the rounds; after-before > 0: the current code is slower.",
        "before: commit da77197 (gc off for every command, a quick parser, the Value class);",
        "after: the code the after install imports (see the head).",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__, base_image=True)
    parser.add_argument(
        "--before",
        type=Path,
        default=BEFORE,
        help="console script of the code before (default: %(default)s)",
    )
    parser.add_argument(
        "--count", type=at_least(1), default=500, help="generated specs (default 500)"
    )
    parser.add_argument("--repeat", type=at_least(1), default=10, help="timed rounds (default 10)")
    args = parser.parse_args(argv)
    if not args.before.is_file():
        parser.error(f"no console script {args.before}: set it up as the description says")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return main_of(parse_args(argv), measure_in, as_json, as_table, name="startup")


if __name__ == "__main__":
    sys.exit(main())
