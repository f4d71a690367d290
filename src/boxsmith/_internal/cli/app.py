"""The `boxsmith` command line: parse, dispatch to `boxsmith._internal.cli`, map errors to exit
codes."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from boxsmith import __version__
from boxsmith.config import Settings, load_settings
from boxsmith.errors import (
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    BoxsmithError,
    UsageError,
)

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that exits with boxsmith's usage code (2) and a fix line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n  fix: see `{self.prog} --help`\n")
        raise SystemExit(EXIT_USAGE)


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


def _local_validation(sub: argparse._SubParsersAction[_Parser]) -> None:
    """images, build and smoke: the stages that need a Docker engine."""
    p = sub.add_parser("images", help="base images for local builds")
    images = p.add_subparsers(dest="images_command", required=True, parser_class=_Parser)
    q = images.add_parser(
        "ensure", help="pull the base images the specs use, or make local stand-ins"
    )
    q.add_argument("refs", nargs="*", metavar="IMAGE", help="images (default: every base image)")
    q.add_argument(
        "--pull-timeout", type=int, default=20, metavar="S", help="seconds per pull attempt"
    )
    q.add_argument("--json", action="store_true", help="machine output on stdout")

    _build_options(
        sub.add_parser("build", help="build each rendered template on the Docker engine")
    )

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
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds to wait for ready_cmd (default: 600, as E2B)",
    )
    p.add_argument("--junit", default=None, metavar="FILE", help="JUnit XML report file")
    p.add_argument("--report", default=None, metavar="FILE", help="JSON report file")
    p.add_argument("--json", action="store_true", help="machine output on stdout")


def _delivery(sub: argparse._SubParsersAction[_Parser]) -> None:
    """publish, promote, rollback and backend: publishing and the local backend."""
    p = sub.add_parser("publish", help="build each rendered version on E2B (or the local backend)")
    _selection(p)
    p.add_argument("--target", choices=("local", "e2b"), default="local", help="where (local)")
    p.add_argument(
        "-j", "--jobs", type=int, default=4, metavar="N", help="builds at once (default: 4)"
    )
    p.add_argument("--json", action="store_true", help="machine output on stdout")

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
    p.add_argument(
        "--allow-skip",
        action="store_true",
        help="report templates that cannot build on this machine as skipped, not failed",
    )
    p.add_argument("--json", action="store_true", help="machine output on stdout")

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
            q.add_argument("--json", action="store_true", help="machine output on stdout")
        if action == "reset":
            q.add_argument("-y", "--yes", action="store_true", help="do not ask first")


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-C", "--root", default=None, help="project root (default: .)")
    parser.add_argument("--specs", default=None, help="spec folder (default: template_specs)")
    parser.add_argument("--generated", default=None, help="output folder (default: generated)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="when another run holds this project's lock, exit 3 instead of waiting "
        "(also BOXSMITH_NO_WAIT=1)",
    )


def _build_options(p: argparse.ArgumentParser) -> None:
    _selection(p)
    p.add_argument(
        "-j", "--jobs", type=int, default=2, metavar="N", help="builds at once (default: 2)"
    )
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    p.add_argument(
        "--allow-skip",
        action="store_true",
        help="report templates that cannot build on this machine as skipped, not failed",
    )
    p.add_argument("--json", action="store_true", help="machine output on stdout")


class _NotForUs(Exception):
    """The quick parser does not understand these arguments; the full one decides."""


class _QuickParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _NotForUs(message)


def _unchanged_build(argv: Sequence[str], out: TextIO, err: TextIO) -> int | None:
    """Answer a no-change `boxsmith build` from the build record before the full parser is even
    built (it costs more than the answer); None when the full run must decide."""
    if "build" not in argv or {"-h", "--help", "--force", "--version"} & set(argv):
        return None
    parser = _QuickParser(prog="boxsmith", add_help=False)
    _global_options(parser)
    commands = parser.add_subparsers(dest="command", parser_class=_QuickParser)
    _build_options(commands.add_parser("build", add_help=False))
    try:
        args = parser.parse_args(argv)
    except _NotForUs:
        return None
    if args.command != "build" or args.jobs < 1 or args.debug:
        return None
    from boxsmith._internal.build import record as buildrecord

    settings = _settings(args)
    return buildrecord.answer(
        settings, args.names, args.label, args.allow_skip, out=out, err=err, as_json=args.json
    )


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.root,
        specs_dir=args.specs,
        generated_dir=args.generated,
        no_wait=True if args.no_wait else None,  # unset: BOXSMITH_NO_WAIT decides
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="boxsmith", description="E2B sandbox templates as code.")
    parser.add_argument("--version", action="version", version=f"boxsmith {__version__}")
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check every spec; all errors at once")
    _selection(p)
    p.add_argument("--json", action="store_true", help="machine output on stdout")

    p = sub.add_parser("render", help="render specs into generated/<name>/<version>/")
    _selection(p)
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would change")
    p.add_argument("-q", "--quiet", action="store_true", help="hide identical files")
    p.add_argument("--json", action="store_true", help="machine output on stdout")

    p = sub.add_parser("check", help="exit 1 when generated/ does not match the specs")
    _selection(p)
    p.add_argument("--json", action="store_true", help="machine output on stdout")

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
        help="write the report to FILE (relative to the project root)",
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

    _local_validation(sub)

    _delivery(sub)

    p = sub.add_parser("schema", help="write the JSON Schema for spec files")
    p.add_argument("-o", "--output", default=None, help="file to write (default: configured)")
    p.add_argument("--stdout", action="store_true", help="print instead of writing")

    p = sub.add_parser("list", help="templates, versions and status from the index")
    p.add_argument("names", nargs="*", metavar="NAME", help="names or globs (default: all)")
    p.add_argument("--json", action="store_true", help="machine output on stdout")
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
    return parser


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = _settings(args)
    if args.command == "validate":
        from boxsmith._internal.cli import validate

        return validate.run(settings, args.names, args.label, out=out, err=err, as_json=args.json)
    if args.command == "render":
        from boxsmith._internal.cli import render

        return render.run(
            settings,
            args.names,
            args.label,
            out=out,
            err=err,
            dry_run=args.dry_run,
            as_json=args.json,
            quiet=args.quiet,
        )
    if args.command == "check":
        from boxsmith._internal.cli import check

        return check.run(settings, args.names, args.label, out=out, err=err, as_json=args.json)
    if args.command == "lint":
        from boxsmith._internal.cli import lint

        return lint.run(
            settings,
            args.names,
            args.label,
            out=out,
            err=err,
            fmt="json" if args.json else args.fmt,
            threshold=args.failure_threshold,
            output=args.output,
            ignore=args.ignore,
            default_ignore=not args.no_default_ignore,
        )
    if args.command == "images":
        from boxsmith._internal.cli import images

        return images.run(
            settings,
            args.refs,
            out=out,
            err=err,
            mirrors=settings.mirrors,
            pull_timeout=args.pull_timeout,
            as_json=args.json,
        )
    if args.command == "build":
        if args.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {args.jobs}", "use --jobs 2")
        if not args.force:
            from boxsmith._internal.build import record as buildrecord

            code = buildrecord.answer(
                settings,
                args.names,
                args.label,
                args.allow_skip,
                out=out,
                err=err,
                as_json=args.json,
            )
            if code is not None:
                return code
        from boxsmith._internal.cli import build

        return build.run(
            settings,
            args.names,
            args.label,
            out=out,
            err=err,
            jobs=args.jobs,
            force=args.force,
            allow_skip=args.allow_skip,
            as_json=args.json,
        )
    if args.command == "smoke":
        from boxsmith._internal.cli import smoke

        if not args.local and args.target is None:
            raise UsageError(
                "smoke needs a target: --local (a container of the built image) or "
                "--target local|e2b (a sandbox of the published version)",
                "run `boxsmith smoke --local`, or `boxsmith smoke --target local` after publish",
            )
        if args.ready_timeout <= 0:
            raise UsageError("--ready-timeout must be positive", "use --ready-timeout 600")
        return smoke.run(
            settings,
            args.names,
            args.label,
            out=out,
            err=err,
            ready_timeout=args.ready_timeout,
            junit=args.junit,
            json_report=args.report,
            as_json=args.json,
            target=args.target,
            channel=args.channel,
            promote=not args.no_promote,
            jobs=args.jobs,
        )
    if args.command == "publish":
        from boxsmith._internal.cli import publish

        if args.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {args.jobs}", "use --jobs 4")
        return publish.run(
            settings,
            args.names,
            args.label,
            out=out,
            err=err,
            target=args.target,
            jobs=args.jobs,
            as_json=args.json,
        )
    if args.command == "release":
        from boxsmith._internal.cli import release

        return release.run(
            settings,
            args.names,
            args.label,
            out=out,
            err=err,
            target=args.target,
            channel=args.channel,
            jobs=args.jobs,
            build_jobs=args.build_jobs,
            build=not args.no_build,
            allow_skip=args.allow_skip,
            as_json=args.json,
        )
    if args.command in ("promote", "rollback"):
        from boxsmith._internal.cli import promote

        return promote.run(
            settings,
            args.names,
            args.label,
            action=args.command,
            target=args.target,
            channel=args.channel,
            version=getattr(args, "version", None),
            out=out,
            err=err,
        )
    if args.command == "backend":
        from boxsmith._internal.backend.server import data_dir
        from boxsmith._internal.cli import backend

        return backend.run(
            settings,
            args.backend_command,
            data_dir(settings.root, args.data_dir),
            out=out,
            err=err,
            port=getattr(args, "port", None),
            host=getattr(args, "host", "127.0.0.1"),
            detach=getattr(args, "detach", False),
            as_json=getattr(args, "json", False),
            yes=getattr(args, "yes", False),
        )
    if args.command == "schema":
        from boxsmith._internal.cli import schema

        return schema.run(settings, args.output, out=out, err=err, to_stdout=args.stdout)
    from boxsmith._internal.cli import list as list_command

    return list_command.run(
        settings,
        args.names,
        out=out,
        err=err,
        as_json=args.json,
        changed_since_ref=args.changed_since,
        shards=args.shards,
    )


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the CLI; returns the exit code (see README, "Exit codes")."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        quick = _unchanged_build(list(sys.argv[1:] if argv is None else argv), out, err)
    except BoxsmithError:
        quick = None  # the full run reports it, with the full parser's context
    if quick is not None:
        return quick
    args = build_parser().parse_args(argv)
    if args.debug:
        import logging  # only here: the CLI's start-up time is part of every command's

        logging.basicConfig(level=logging.DEBUG, stream=err, format="debug: %(name)s: %(message)s")
    try:
        return _dispatch(args, out, err)
    except BoxsmithError as exc:
        err.write(exc.format() + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write(
            "interrupted; cleaned up (no partial files, local builds cancelled, containers"
            " removed; a build already sent to a target runs on there, and the next publish"
            " waits for it)\n"
        )
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug in boxsmith, not the user's mistake
        if isinstance(exc, OSError) and exc.filename is not None:  # but a disk's answer is not
            err.write(
                f"error: {exc.filename}: {exc.strerror or exc}\n"
                "  fix: check that path's permissions (`ls -ld`, `lsattr -d`), file system and "
                "free space, then run again\n"
            )
            return EXIT_INFRA
        if args.debug:
            import traceback

            traceback.print_exc(file=err)
        err.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  fix: rerun with --debug and report the traceback\n"
        )
        return EXIT_INFRA


def entry() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _interrupt)  # a cancelled CI job cleans up like Ctrl-C
    sys.exit(main())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
