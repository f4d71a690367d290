"""The argument parser of `boxsmith`: the global options and one `_add_<command>` per subcommand.

Only the shape of the command line lives here. The checks of option values (`--jobs` at least 1,
a positive `--ready-timeout`) live in each command's `run()` (`cli.options`), so the invoke
tasks, which call `run()` directly, refuse the same values with the same message.
"""

from __future__ import annotations

import argparse
import sys
from typing import TypeAlias

from boxsmith import __version__
from boxsmith.errors import EXIT_USAGE

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that exits with boxsmith's usage code (2) and a fix line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n  fix: see `{self.prog} --help`\n")
        raise SystemExit(EXIT_USAGE)


_Sub: TypeAlias = "argparse._SubParsersAction[_Parser]"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand (in the order `--help` lists them)."""
    parser = _Parser(prog="boxsmith", description="E2B sandbox templates as code.")
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
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="when another run holds this project's lock, exit 3 instead of waiting "
        "(also BOXSMITH_NO_WAIT=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
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
    ):
        add(sub)
    return parser


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="template names or globs (default: all)"
    )
    parser.add_argument(
        "-l",
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only templates with this label (repeatable)",
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine output on stdout")


def _allow_skip(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-skip",
        action="store_true",
        help="report templates that cannot build on this machine as skipped, not failed",
    )


def _add_validate(sub: _Sub) -> None:
    p = sub.add_parser("validate", help="check every spec; all errors at once")
    _selection(p)
    _json(p)


def _add_render(sub: _Sub) -> None:
    p = sub.add_parser("render", help="render specs into generated/<name>/<version>/")
    _selection(p)
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would change")
    p.add_argument("-q", "--quiet", action="store_true", help="hide identical files")
    _json(p)


def _add_check(sub: _Sub) -> None:
    p = sub.add_parser("check", help="exit 1 when generated/ does not match the specs")
    _selection(p)
    _json(p)


def _add_lint(sub: _Sub) -> None:
    p = sub.add_parser("lint", help="hadolint and E2B rules on each template's Dockerfile")
    _selection(p)
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
    p = sub.add_parser("images", help="base images for local builds")
    images = p.add_subparsers(dest="images_command", required=True, parser_class=_Parser)
    q = images.add_parser(
        "ensure", help="pull the base images the specs use, or make local stand-ins"
    )
    q.add_argument("refs", nargs="*", metavar="IMAGE", help="images (default: every base image)")
    q.add_argument(
        "--pull-timeout", type=int, default=20, metavar="S", help="seconds per pull attempt"
    )
    _json(q)


def _add_build(sub: _Sub) -> None:
    p = sub.add_parser("build", help="build each rendered template on the Docker engine")
    _selection(p)
    p.add_argument(
        "-j", "--jobs", type=int, default=2, metavar="N", help="builds at once (default: 2)"
    )
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    _allow_skip(p)
    _json(p)


def _add_smoke(sub: _Sub) -> None:
    p = sub.add_parser("smoke", help="run each template's smoke checks (container or sandbox)")
    _selection(p)
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
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=4,
        metavar="N",
        help="sandboxes at once (--target; default: 4)",
    )
    _ready_timeout(p, "each container")
    p.add_argument("--junit", default=None, metavar="FILE", help="JUnit XML report file")
    p.add_argument("--report", default=None, metavar="FILE", help="JSON report file")
    _json(p)


def _add_publish(sub: _Sub) -> None:
    p = sub.add_parser("publish", help="build each rendered version on E2B (or the local backend)")
    _selection(p)
    p.add_argument("--target", choices=("local", "e2b"), default="local", help="where (local)")
    p.add_argument(
        "-j", "--jobs", type=int, default=4, metavar="N", help="builds at once (default: 4)"
    )
    _json(p)


def _add_release(sub: _Sub) -> None:
    p = sub.add_parser(
        "release",
        help="render, check, lint, build, publish, smoke and promote the templates that changed",
    )
    _selection(p)
    p.add_argument("--target", choices=("local", "e2b"), default="local", help="where (local)")
    p.add_argument("--channel", default="stable", help="tag moved on a pass (default: stable)")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=4,
        metavar="N",
        help="publishes and sandboxes at once (default: 4)",
    )
    p.add_argument(
        "--build-jobs", type=int, default=2, metavar="N", help="local builds at once (default: 2)"
    )
    p.add_argument(
        "--no-build",
        action="store_true",
        help="leave out the proof build on the local engine (the target builds anyway)",
    )
    _ready_timeout(p, "the container smoke")
    _allow_skip(p)
    _json(p)


def _add_channels(sub: _Sub) -> None:
    """promote and rollback: move a channel tag."""
    for action, text in (
        ("promote", "point a channel tag (default stable) at a published version"),
        ("rollback", "point a channel tag back at the previous published version"),
    ):
        p = sub.add_parser(action, help=text)
        _selection(p)
        p.add_argument("--target", choices=("local", "e2b"), default="local", help="where")
        p.add_argument("--channel", default="stable", help="the channel tag (default: stable)")
        if action == "promote":
            p.add_argument("--version", default=None, help="version (default: the spec's)")


def _add_backend(sub: _Sub) -> None:
    p = sub.add_parser("backend", help="the local E2B-compatible backend")
    actions = p.add_subparsers(dest="backend_command", required=True, parser_class=_Parser)
    q = actions.add_parser("serve", help="serve on 127.0.0.1 (foreground, or --detach)")
    q.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: 49990; with --detach, a free one when 49990 is taken)",
    )
    q.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1 only)")
    q.add_argument("--data-dir", default=None, help="state folder (default: .boxsmith/backend)")
    q.add_argument("--detach", action="store_true", help="run in the background")
    for action, text in (
        ("env", "print the export lines for a running backend"),
        ("status", "whether a backend runs and answers (exit 3 when not)"),
        ("stop", "stop the running backend"),
        ("reset", "stop it, remove its containers and images, and clear its data folder"),
    ):
        q = actions.add_parser(action, help=text)
        q.add_argument("--data-dir", default=None, help="state folder (default: .boxsmith/backend)")
        if action == "status":
            _json(q)
        if action == "reset":
            q.add_argument("-y", "--yes", action="store_true", help="do not ask first")


def _add_schema(sub: _Sub) -> None:
    p = sub.add_parser("schema", help="write the JSON Schema for spec files")
    p.add_argument("-o", "--output", default=None, help="file to write (default: configured)")
    p.add_argument("--stdout", action="store_true", help="print instead of writing")


def _add_list(sub: _Sub) -> None:
    p = sub.add_parser("list", help="templates, versions and status from the index")
    p.add_argument("names", nargs="*", metavar="NAME", help="names or globs (default: all)")
    _json(p)
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
    )
    _selection(p)
    _json(p)


def _ready_timeout(p: argparse.ArgumentParser, what: str) -> None:
    # docker/boot.DEFAULT_READY_TIMEOUT, written out: importing it would load the Docker SDK for
    # every command (tests/test_cli.py checks they agree)
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help=f"seconds {what} waits for ready_cmd (default: 600, as E2B)",
    )
