"""The `boxsmith` command: parse the arguments (`cli.parser`), call the command's `run()` through
the table `COMMANDS`, and turn its end into an exit code (`cli.outcome`).

Set up once here for every command: stderr at the verbosity `-q` / `-v` ask for
(`progress.Stderr`), and stdout whose reader may go away (`boxsmith list | head -1`): the command
stops, nothing is printed about it, and the exit code is `EXIT_STDOUT_CLOSED`.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from boxsmith import __version__
from boxsmith._internal.cli.outcome import run_command
from boxsmith._internal.cli.parser import build_parser
from boxsmith._internal.progress import Stderr, Verbosity
from boxsmith.config import Settings, load_settings, root_marker
from boxsmith.errors import EXIT_INFRA, EXIT_OK, EXIT_STDOUT_CLOSED

__all__ = ["COMMANDS", "build_parser", "entry", "main"]

Command = Callable[[Settings, argparse.Namespace, TextIO, TextIO], int]
"""Call one command's `run()` with the parsed arguments; its exit code."""

# Each function below imports its command module when it runs, on purpose: a command module loads
# its stage (pydantic, Jinja, the Docker or e2b SDK: 0.1 to 0.4 s each), and a command should pay
# only for its own (a no-change `boxsmith check` or `build` answers in well under 0.1 s).


def _validate(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import validate  # lazy: see the note above

    return validate.run(settings, args.names, args.label, out=out, err=err, as_json=args.json)


def _render(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import render  # lazy: see the note above

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


def _check(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import check  # lazy: see the note above

    return check.run(settings, args.names, args.label, out=out, err=err, as_json=args.json)


def _lint(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import lint  # lazy: see the note above

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


def _images(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import images  # lazy: see the note above

    return images.run(
        settings,
        args.refs,
        out=out,
        err=err,
        mirrors=settings.mirrors,
        pull_timeout=args.pull_timeout,
        as_json=args.json,
    )


def _build(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import build  # lazy: see the note above

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


def _smoke(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import smoke  # lazy: see the note above

    smoke.require_target(args.local, args.target)  # the CLI asks for one; the task means local

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


def _publish(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import publish  # lazy: see the note above

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


def _release(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import release  # lazy: see the note above

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
        ready_timeout=args.ready_timeout,
        as_json=args.json,
    )


def _channel(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """promote and rollback."""
    from boxsmith._internal.cli import promote  # lazy: see the note above

    return promote.run(
        settings,
        args.names,
        args.label,
        action=args.command,
        target=args.target,
        channel=args.channel,
        version=getattr(args, "version", None),  # promote only
        out=out,
        err=err,
    )


def _backend(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.backend.datadir import data_dir  # lazy: see the note above
    from boxsmith._internal.cli import backend

    return backend.run(
        settings,
        args.backend_command,
        data_dir(settings.root, args.data_dir),
        out=out,
        err=err,
        port=getattr(args, "port", None),  # the options of one action or another
        host=getattr(args, "host", "127.0.0.1"),
        detach=getattr(args, "detach", False),
        as_json=getattr(args, "json", False),
        yes=getattr(args, "yes", False),
    )


def _init(_: Settings | None, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """init makes a project in DIR (relative to where it runs, or -C's folder); it reads no
    settings: the project found from here, if any, is not the one it writes."""
    from boxsmith._internal.cli import init  # lazy: see the note above

    here = Path(args.root).resolve() if args.root else Path.cwd()
    return init.run(here / args.directory, out=out, err=err, force=args.force)


def _schema(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import schema  # lazy: see the note above

    return schema.run(settings, args.output, out=out, err=err, to_stdout=args.stdout)


def _list(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import list as list_command  # lazy: see the note above

    return list_command.run(
        settings,
        args.names,
        out=out,
        err=err,
        as_json=args.json,
        changed_since_ref=args.changed_since,
        shards=args.shards,
    )


def _status(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import status  # lazy: see the note above

    return status.run(settings, args.names, args.label, out=out, err=err, as_json=args.json)


def _report(settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from boxsmith._internal.cli import report  # lazy: see the note above

    return report.run(settings, args.output, out=out, err=err, as_json=args.json)


COMMANDS: Mapping[str, Command] = {
    "init": _init,  # reads no settings (`_run`)
    "validate": _validate,
    "render": _render,
    "check": _check,
    "lint": _lint,
    "images": _images,
    "build": _build,
    "smoke": _smoke,
    "publish": _publish,
    "release": _release,
    "promote": _channel,
    "rollback": _channel,
    "backend": _backend,
    "schema": _schema,
    "list": _list,
    "status": _status,
    "report": _report,
}
"""Subcommand name -> the function that calls its `run()`."""


# Flags that name a file or folder: a relative one is relative to where the command runs (the
# current folder, or -C's), as git's and ruff's are, wherever the project root was found.
_PATH_FLAGS = ("specs", "generated", "output", "junit", "report", "data_dir")


def _settings(args: argparse.Namespace) -> Settings:
    here = Path(args.root).resolve() if args.root else Path.cwd()
    for dest in _PATH_FLAGS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            setattr(args, dest, str(here / value))
    return load_settings(
        args.root,
        specs_dir=args.specs,
        generated_dir=args.generated,
        no_wait=True if args.no_wait else None,  # unset: BOXSMITH_NO_WAIT decides
    )


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the CLI; returns the exit code (see README, "Exit codes")."""
    stdout = _Stdout(out or sys.stdout)
    args = build_parser().parse_args(argv)
    stderr = Stderr(err or sys.stderr, _verbosity(args))
    if args.debug:
        logging.basicConfig(  # through stderr: held by -q, stamped by -v, as every line
            level=logging.DEBUG, stream=stderr, format="debug: %(name)s: %(message)s"
        )
    command = COMMANDS[args.command]
    code = EXIT_INFRA  # unless run_command returns: something it does not catch went through
    try:
        code = run_command(lambda: _run(command, args, stdout, stderr), stderr, debug=args.debug)
    finally:
        if stderr.verbosity is Verbosity.VERBOSE:
            stderr.write(f"boxsmith {args.command}: exit {code}\n")
        stderr.finish(failed=code not in (EXIT_OK, EXIT_STDOUT_CLOSED))
        for stream, gone in ((stdout.stream, stdout.gone), (stderr.stream, stderr.broken)):
            if gone:
                _discard(stream)
    return code


def _verbosity(args: argparse.Namespace) -> Verbosity:
    if args.quiet:
        return Verbosity.QUIET
    return Verbosity.VERBOSE if args.verbose else Verbosity.NORMAL


def _run(command: Command, args: argparse.Namespace, out: _Stdout, err: Stderr) -> int:
    """Call `command`; EXIT_STDOUT_CLOSED when the reader of stdout went away (before the
    command ended; after, its own code stands: a failure is not hidden behind a closed pipe)."""
    if command is _init:  # it makes a project: the one around it, if any, is not read
        return _init(None, args, out, err)
    settings = _settings(args)
    if err.verbosity is Verbosity.VERBOSE:
        found = "-C" if args.root else _how_found(settings.root)
        err.write(
            f"boxsmith {__version__}: {args.command}; project root {settings.root} ({found}); "
            f"specs {settings.display(settings.specs_dir)}/, generated "
            f"{settings.display(settings.generated_dir)}/\n"
        )
    code = EXIT_STDOUT_CLOSED
    try:
        code = command(settings, args, out, err)
        out.flush()  # now, while it can still be told from a failure
    except BrokenPipeError:
        if not out.gone:
            raise
        return code if code != EXIT_OK else EXIT_STDOUT_CLOSED
    return code


def _how_found(root: Path) -> str:
    """How the root of a run without -C was found, for -v."""
    here = Path.cwd().resolve()
    if root == here and not root_marker(root):
        return "no project found from here up: the current folder"
    return f"found from {here}: it holds {root_marker(root)}"


class _Stdout(io.TextIOBase, TextIO):
    """stdout that remembers when its reader went away (`gone`; the BrokenPipeError goes on)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.gone = False

    def write(self, text: str, /) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self.gone = True
            raise

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.gone = True
            raise

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()


def _discard(stream: TextIO) -> None:
    """Point `stream`'s file at /dev/null, so that what it still buffers is dropped when the
    interpreter flushes it at exit, not reported as "Exception ignored ... BrokenPipeError"
    (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file (a StringIO): nothing is flushed at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
