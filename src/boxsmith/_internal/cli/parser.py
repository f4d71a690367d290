"""The argument parser of `boxsmith`: the global options and one `_add_<command>` per subcommand.

Each subcommand comes with `-v/--verbose`, `-q/--quiet` and a `--help` that ends with its
`example=` and the exit codes (`cli.frame`).

Only the shape of the command line lives here. The checks of option values (`--jobs` at least 1,
a positive `--ready-timeout`) live in each command's `run()` (`cli.options`), so the invoke
tasks, which call `run()` directly, refuse the same values with the same message.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

from boxsmith import __version__
from boxsmith._internal.cli.frame import (
    EXIT_CODES,
    Commands,
    Parser,
    allow_skip,
    jobs,
    json_flag,
    ready_timeout,
    selection,
    subcommands,
    verbosity_options,
)

__all__ = ["build_parser"]


_Sub: TypeAlias = Commands


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand (in the order `--help` lists them)."""
    parser = Parser(
        prog="boxsmith",
        description="E2B sandbox templates as code.",
        epilog=f"`boxsmith <command> --help`: its options and an example.\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"boxsmith {__version__}")
    parser.add_argument(
        "-C",
        "--root",
        default=None,
        help="project root (default: the nearest folder from here up with template_specs/ or "
        "a pyproject.toml with [tool.boxsmith], else .)",
    )
    parser.add_argument("--specs", default=None, help="spec folder (default: template_specs)")
    parser.add_argument("--generated", default=None, help="output folder (default: generated)")
    verbosity_options(parser)
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="when another run holds this project's lock, exit 3 instead of waiting "
        "(also BOXSMITH_NO_WAIT=1)",
    )
    sub = subcommands(parser, "command")
    for add in (
        _add_init,
        _add_validate,
        _add_render,
        _add_check,
        _add_lint,
        _add_images,
        _add_build,
        _add_smoke,
        _add_publish,
        _add_release,
        _add_channels,
        _add_backend,
        _add_schema,
        _add_list,
        _add_status,
        _add_report,
    ):
        add(sub)
    return parser


def _add_validate(sub: _Sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check every spec; all errors at once",
        example="boxsmith validate --json  # every spec's errors, for a script",
    )
    selection(p)
    json_flag(p)


def _add_render(sub: _Sub) -> None:
    p = sub.add_parser(
        "render",
        help="render specs into generated/<name>/<version>/ (with -q: only the files that "
        "change are listed)",
        example="boxsmith render --dry-run 'python-*'  # what would change, with diffs",
    )
    selection(p)
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would change")
    json_flag(p)


def _add_check(sub: _Sub) -> None:
    p = sub.add_parser(
        "check",
        help="exit 1 when generated/ does not match the specs",
        example="boxsmith check  # the drift gate CI runs",
    )
    selection(p)
    json_flag(p)


def _add_lint(sub: _Sub) -> None:
    p = sub.add_parser(
        "lint",
        help="hadolint and E2B rules on each template's Dockerfile",
        example="boxsmith lint --format sarif -o lint.sarif  # for GitHub code scanning",
    )
    selection(p)
    p.add_argument(
        "-f",
        "--format",
        dest="fmt",
        choices=("text", "json", "sarif"),
        default="text",
        help="report format (default: text)",
    )
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument(
        "-t",
        "--failure-threshold",
        choices=("error", "warning", "info", "style"),
        default="warning",
        help="exit 1 on findings at or above this level (default: warning)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="write the report to FILE",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODE",
        help="ignore this rule for every template (repeatable)",
    )
    p.add_argument(
        "--no-default-ignore",
        action="store_true",
        help="also report DL3008, DL3013, DL3016, DL3064, DL3066",
    )


def _add_images(sub: _Sub) -> None:
    p = sub.add_parser(
        "images",
        help="base images for local builds",
        example="boxsmith images ensure  # every base image the specs use",
    )
    q = subcommands(p, "images_command").add_parser(
        "ensure",
        help="pull the base images the specs use, or make local stand-ins",
        example="boxsmith images ensure debian:bookworm-slim --pull-timeout 60",
    )
    q.add_argument("refs", nargs="*", metavar="IMAGE", help="images (default: every base image)")
    q.add_argument(
        "--pull-timeout", type=int, default=20, metavar="S", help="seconds per pull attempt"
    )
    json_flag(q)


def _add_build(sub: _Sub) -> None:
    p = sub.add_parser(
        "build",
        help="build each rendered template on the Docker engine",
        example="boxsmith build -j 4 'python-*'  # the python templates, 4 builds at once",
    )
    selection(p)
    jobs(p, 2, "builds at once")
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    allow_skip(p)
    json_flag(p)


def _add_smoke(sub: _Sub) -> None:
    p = sub.add_parser(
        "smoke",
        help="run each template's smoke checks (container or sandbox)",
        example="boxsmith smoke --local --junit smoke.xml  # in containers of the local builds",
    )
    selection(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--local",
        action="store_true",
        help="in a local container of the built image (boxsmith build)",
    )
    where.add_argument(
        "--target",
        choices=("local", "e2b"),
        default=None,
        help="in a sandbox of the published version: the local backend or E2B cloud",
    )
    p.add_argument(
        "--channel",
        default="stable",
        help="tag moved to a version whose checks pass (--target; default: stable)",
    )
    p.add_argument("--no-promote", action="store_true", help="do not move the channel tag")
    jobs(p, 4, "sandboxes at once, with --target")
    ready_timeout(p, "each container")
    p.add_argument("--junit", default=None, metavar="FILE", help="JUnit XML report file")
    p.add_argument("--report", default=None, metavar="FILE", help="JSON report file")
    json_flag(p)


def _add_publish(sub: _Sub) -> None:
    p = sub.add_parser(
        "publish",
        help="build each rendered version on E2B (or the local backend)",
        example="boxsmith publish --target e2b -l team=data  # the data team's templates",
    )
    selection(p)
    p.add_argument("--target", choices=("local", "e2b"), default="local", help="where (local)")
    jobs(p, 4, "builds at once")
    json_flag(p)


def _add_release(sub: _Sub) -> None:
    p = sub.add_parser(
        "release",
        help="render, check, lint, build, publish, smoke and promote the templates that changed",
        example="boxsmith release --target e2b  # what changed, to E2B cloud, moving stable",
    )
    selection(p)
    p.add_argument("--target", choices=("local", "e2b"), default="local", help="where (local)")
    p.add_argument("--channel", default="stable", help="tag moved on a pass (default: stable)")
    jobs(p, 4, "publishes and sandboxes at once")
    p.add_argument(
        "--build-jobs", type=int, default=2, metavar="N", help="local builds at once (default: 2)"
    )
    p.add_argument(
        "--no-build",
        action="store_true",
        help="leave out the proof build on the local engine (the target builds anyway)",
    )
    ready_timeout(p, "the container smoke")
    allow_skip(p)
    json_flag(p)


def _add_channels(sub: _Sub) -> None:
    """promote and rollback: move a channel tag."""
    for action, text, example in (
        (
            "promote",
            "point a channel tag (default stable) at a published version",
            "boxsmith promote python-dev --version 1.2.0 --channel beta",
        ),
        (
            "rollback",
            "point a channel tag back at the previous published version",
            "boxsmith rollback python-dev --target e2b  # stable back to the version before",
        ),
    ):
        p = sub.add_parser(action, help=text, example=example)
        selection(p)
        p.add_argument("--target", choices=("local", "e2b"), default="local", help="where")
        p.add_argument("--channel", default="stable", help="the channel tag (default: stable)")
        if action == "promote":
            p.add_argument("--version", default=None, help="version (default: the spec's)")


def _add_backend(sub: _Sub) -> None:
    p = sub.add_parser(
        "backend",
        help="the local E2B-compatible backend",
        example="boxsmith backend serve --detach  # in the background; `backend stop` ends it",
    )
    actions = subcommands(p, "backend_command")
    q = actions.add_parser(
        "serve",
        help="serve on 127.0.0.1 (foreground, or --detach)",
        example="boxsmith backend serve --port 49990  # in the foreground until Ctrl-C",
    )
    q.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: 49990; with --detach, a free one when 49990 is taken)",
    )
    q.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1 only)")
    q.add_argument("--data-dir", default=None, help="state folder (default: .boxsmith/backend)")
    q.add_argument("--detach", action="store_true", help="run in the background")
    for action, text, example in (
        (
            "env",
            "print the export lines for a running backend",
            'boxsmith backend env  # eval "$(boxsmith backend env)" points the e2b SDK at it',
        ),
        (
            "status",
            "whether a backend runs and answers (exit 3 when not)",
            "boxsmith backend status --json",
        ),
        ("stop", "stop the running backend", "boxsmith backend stop"),
        (
            "reset",
            "stop it, remove its containers and images, and clear its data folder",
            "boxsmith backend reset --yes  # without asking",
        ),
    ):
        q = actions.add_parser(action, help=text, example=example)
        q.add_argument("--data-dir", default=None, help="state folder (default: .boxsmith/backend)")
        if action == "status":
            json_flag(q)
        if action == "reset":
            q.add_argument("-y", "--yes", action="store_true", help="do not ask first")


def _add_init(sub: _Sub) -> None:
    p = sub.add_parser(
        "init",
        help="scaffold a project: a starter spec, generated/, tasks.py, workflows",
        example="boxsmith init my-templates  # then: cd my-templates && boxsmith release",
    )
    p.add_argument("directory", nargs="?", default=".", metavar="DIR", help="where (default: here)")
    p.add_argument("--force", action="store_true", help="overwrite files that differ")


def _add_schema(sub: _Sub) -> None:
    p = sub.add_parser(
        "schema",
        help="write the JSON Schema for spec files",
        example="boxsmith schema --stdout  # print it instead of writing the file",
    )
    p.add_argument("-o", "--output", default=None, help="file to write (default: configured)")
    p.add_argument("--stdout", action="store_true", help="print instead of writing")


def _add_list(sub: _Sub) -> None:
    p = sub.add_parser(
        "list",
        help="templates, versions and status from the index",
        example="boxsmith list --changed-since origin/main --json  # a CI matrix",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="names or globs (default: all)")
    json_flag(p)
    p.add_argument(
        "--changed-since",
        default=None,
        metavar="GIT_REF",
        help="only templates whose generated files differ from this git ref (CI matrices)",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="N",
        help="with --json: also split the names into at most N balanced groups (CI matrices "
        "stay under GitHub's 256 jobs however many templates change)",
    )


def _add_status(sub: _Sub) -> None:
    p = sub.add_parser(
        "status",
        help="per template: generated/, the local build, publishes, channels and the last smoke "
        "results (reads only; exit 1 when generated/ does not match the specs)",
        example="boxsmith status python-dev  # one template, every stage",
    )
    selection(p)
    json_flag(p)


def _add_report(sub: _Sub) -> None:
    p = sub.add_parser(
        "report",
        help="write the catalog site (static HTML: every template, its status, versions, "
        "charts, smoke results, lint, spec) and print the path of its index.html",
        example="boxsmith report --out site  # the folder GitHub Pages publishes",
    )
    p.add_argument(
        "--out",
        dest="output",
        default=None,
        metavar="DIR",
        help="folder to write (default: .boxsmith/report; replaced whole, if boxsmith wrote it)",
    )
    json_flag(p)
