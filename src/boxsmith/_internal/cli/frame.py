"""What every `boxsmith` subcommand's parser shares (`cli.parser` declares the commands).

- `Parser`: argparse that exits with boxsmith's usage code (2) and a fix line.
- `Commands` (`subcommands()`): each subcommand gets `-v/--verbose` and `-q/--quiet`, accepted
  before or after its name (`boxsmith -q build`, `boxsmith build -q`), never both; its `help`
  as its description; and an epilog with one example (required) and `EXIT_CODES`.
- the options several subcommands share: `selection()` (names and labels), `json_flag()`,
  `jobs()`, `allow_skip()`, `ready_timeout()`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from boxsmith._internal.docker.conventions import DEFAULT_READY_TIMEOUT
from boxsmith.errors import EXIT_USAGE

__all__ = [
    "EXIT_CODES",
    "Commands",
    "Parser",
    "allow_skip",
    "jobs",
    "json_flag",
    "ready_timeout",
    "selection",
    "subcommands",
    "verbosity_options",
]

EXIT_CODES = """\
exit codes:
  0    ok
  1    findings, drift or failed checks
  2    spec or usage error
  3    build, engine, backend or publish failure
  130  interrupted (Ctrl-C or SIGTERM), after cleaning up
  141  stdout closed before the output ended (`| head`)
"""
"""The exit codes every `--help` ends with (README, "Exit codes")."""


class Parser(argparse.ArgumentParser):
    """argparse that exits with boxsmith's usage code (2) and a fix line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n  fix: see `{self.prog} --help`\n")
        raise SystemExit(EXIT_USAGE)


if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[Parser]
else:  # not subscriptable at run time
    _SubParsers = argparse._SubParsersAction


class Commands(_SubParsers):
    """The subcommands of a parser, each in the frame the module doc describes."""

    def add_parser(self, name: str, *, example: str = "", **kwargs: Any) -> Parser:
        """Subcommand `name`. `example`: a command line that starts with `boxsmith <command>`
        (a `# comment` after it may say what it does)."""
        if not example:
            raise ValueError(f"subcommand {name!r}: give it an example for its --help")
        kwargs.setdefault("description", kwargs.get("help"))
        parser = super().add_parser(
            name,
            epilog=f"example:\n  {example}\n\n{EXIT_CODES}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        verbosity_options(parser, default=argparse.SUPPRESS)  # unset: the global one's stays
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        # `boxsmith -q build -v`: each parser's group sees only its own options
        if getattr(namespace, "quiet", False) and getattr(namespace, "verbose", False):
            parser.error("argument -q/--quiet: not allowed with argument -v/--verbose")


def subcommands(parser: argparse.ArgumentParser, dest: str) -> Commands:
    """The subcommands of `parser` (one is required), the chosen name stored in `dest`."""
    return cast(
        Commands,
        parser.add_subparsers(dest=dest, required=True, parser_class=Parser, action=Commands),
    )


def verbosity_options(parser: argparse.ArgumentParser, default: object = False) -> None:
    """`-v/--verbose` and `-q/--quiet` (`boxsmith._internal.progress`, "verbosity"), and
    `--debug`."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="boxsmith's internal log on stderr, and the traceback of an internal error",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="more on stderr: every progress step (plain lines), the project root, the seconds "
        "since the start on each line",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="on stderr only warnings and errors; when the command fails, what it said (no "
        "progress); results on stdout (render -q also leaves out identical files)",
    )


# -- options several subcommands share ---------------------------------------------------


def selection(parser: argparse.ArgumentParser) -> None:
    """Template names or globs, and `-l KEY=VALUE`."""
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


def json_flag(parser: argparse.ArgumentParser) -> None:
    """`--json`."""
    parser.add_argument("--json", action="store_true", help="machine output on stdout")


def allow_skip(parser: argparse.ArgumentParser) -> None:
    """`--allow-skip`."""
    parser.add_argument(
        "--allow-skip",
        action="store_true",
        help="report templates that cannot build on this machine as skipped, not failed",
    )


def ready_timeout(p: argparse.ArgumentParser, what: str) -> None:
    """`--ready-timeout` for `what`."""
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT,
        metavar="S",
        help=f"seconds {what} waits for ready_cmd (default: {DEFAULT_READY_TIMEOUT:g}, as E2B)",
    )


def jobs(p: argparse.ArgumentParser, default: int, what: str) -> None:
    """`-j/--jobs N`; `what` says what runs side by side."""
    p.add_argument(
        "-j", "--jobs", type=int, default=default, metavar="N", help=f"{what} (default: {default})"
    )
