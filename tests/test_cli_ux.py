"""The command line's frame, the same for every command: `-q` / `-v` before or after the
command name, a `--help` that ends with an example and the exit codes, and a reader of stdout
that stops early (`boxsmith list | head -1`) ending the command quietly."""

from __future__ import annotations

import argparse
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxsmith._internal.cli.app import main
from boxsmith._internal.cli.parser import build_parser
from boxsmith._internal.progress import Progress, Stderr, Verbosity
from boxsmith.errors import (
    EXIT_FINDINGS,
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STDOUT_CLOSED,
    EXIT_USAGE,
)
from tests.helpers import MINIMAL, cli, write_tree

EXIT_CODES = (EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_STDOUT_CLOSED)
PIPE_BUFFER = 64 * 1024  # Linux's default pipe capacity
STAMPED = re.compile(r"\[ *\d+\.\d\ds\] ")


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every subcommand's path (`("build",)`, `("backend", "serve")`), nested ones too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def _help(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([*args, "--help"])
    assert exit.value.code == 0
    return capsys.readouterr().out


def _example(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The words of the example line in `boxsmith <path> --help`."""
    lines = _help(list(path), capsys).splitlines()
    return shlex.split(lines[lines.index("example:") + 1], comments=True)


def _has_exit_codes(text: str) -> bool:
    return all(re.search(rf"^ +{code} +\w", text, re.MULTILINE) for code in EXIT_CODES)


# -- --help ----------------------------------------------------------------------------------


def test_every_command_is_covered() -> None:
    assert {p[0] for p in COMMANDS} >= {"validate", "build", "release", "backend", "list"}
    assert ("backend", "serve") in COMMANDS
    assert ("images", "ensure") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_an_example_that_parses_and_the_exit_codes(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    words = _example(path, capsys)
    assert words[: 1 + len(path)] == ["boxsmith", *path]
    args = build_parser().parse_args(words[1:])
    assert args.command == path[0]
    assert all(name in vars(args).values() for name in path[1:])  # images_command, ...
    assert _has_exit_codes(_help(list(path), capsys))


def test_the_top_level_help_shows_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help([], capsys)
    assert _has_exit_codes(text)
    assert "-q, --quiet" in text
    assert "-v, --verbose" in text


# -- -q and -v on the command line -------------------------------------------------------------


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("flag", ["-q", "--verbose"])
def test_quiet_and_verbose_go_before_or_after_the_command(
    path: tuple[str, ...], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words = _example(path, capsys)[1:]
    dest = "quiet" if flag in ("-q", "--quiet") else "verbose"
    other = "verbose" if dest == "quiet" else "quiet"
    for argv in ([flag, *words], [*words, flag], [*words[: len(path)], flag, *words[len(path) :]]):
        args = build_parser().parse_args(argv)
        assert getattr(args, dest) is True, argv
        assert getattr(args, other) is False, argv


@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "-v", "check"],
        ["check", "-q", "--verbose"],
        ["-q", "check", "-v"],
        ["--verbose", "backend", "serve", "--quiet"],
        ["backend", "-v", "serve", "-q"],
    ],
)
def test_quiet_and_verbose_together_are_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(argv)
    assert exit.value.code == EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err


# -- what -q and -v do -------------------------------------------------------------------------


def test_quiet_success_keeps_stdout_and_says_nothing_on_stderr(minimal_project: Path) -> None:
    for args, says in (
        (["validate"], "1 template(s) valid"),
        (["validate", "--json"], ""),
        (["render"], "1 template(s) rendered"),
        (["check"], "ok: generated/ matches the specs"),
        (["list"], ""),
    ):
        quiet = cli(minimal_project, "-q", *args)
        loud = cli(minimal_project, *args)
        assert (quiet.code, loud.code) == (EXIT_OK, EXIT_OK), args
        assert quiet.err == "", args
        assert says in loud.err, args
        if args != ["render"]:  # the first render creates, the second finds identical files
            assert quiet.out == loud.out, args
        assert cli(minimal_project, *args, "--quiet").err == "", args


def test_quiet_render_lists_only_the_files_that_change(minimal_project: Path) -> None:
    assert cli(minimal_project, "render").code == EXIT_OK
    assert "identical" in cli(minimal_project, "render").out
    quiet = cli(minimal_project, "render", "-q")
    assert (quiet.code, quiet.out, quiet.err) == (EXIT_OK, "", "")


def test_quiet_success_keeps_the_warnings(minimal_project: Path) -> None:
    assert cli(minimal_project, "render").code == EXIT_OK
    (minimal_project / "generated/app/1.0.0/extra.txt").write_text("mine\n")
    quiet = cli(minimal_project, "-q", "render")
    assert quiet.code == EXIT_OK
    assert quiet.err == (
        "warning: generated/app/1.0.0/extra.txt: not written by boxsmith (not in index.json): "
        "left in place; remove it by hand\n"
    )
    assert "template(s) rendered" in cli(minimal_project, "render").err


@pytest.mark.parametrize("broken", ["spec", "drift"])
def test_quiet_failure_tells_the_whole_story(minimal_project: Path, broken: str) -> None:
    assert cli(minimal_project, "render").code == EXIT_OK
    if broken == "spec":
        write_tree(minimal_project, {"template_specs/bad.yaml": "name: bad\n"})
        args, code = ["validate"], EXIT_USAGE
    else:
        with (minimal_project / "generated/app/1.0.0/e2b.toml").open("a") as toml:
            toml.write("# edited\n")
        args, code = ["check"], EXIT_FINDINGS
    loud = cli(minimal_project, *args)
    quiet = cli(minimal_project, *args, "-q")
    assert (loud.code, quiet.code) == (code, code)
    assert quiet.err == loud.err
    assert "error" in quiet.err or "drift:" in quiet.err


def test_verbose_names_the_project_root_and_times_every_line(minimal_project: Path) -> None:
    assert cli(minimal_project, "render").code == EXIT_OK
    run = cli(minimal_project, "-v", "check")
    assert run.code == EXIT_OK
    lines = run.err.splitlines()
    assert all(STAMPED.match(line) for line in lines), run.err
    assert f"project root {minimal_project} (-C)" in lines[0]
    assert lines[-1].endswith("boxsmith check: exit 0")


def test_verbose_says_where_the_root_was_found(
    minimal_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    here = minimal_project / "template_specs"
    monkeypatch.chdir(here)
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", "--verbose"], out=out, err=err) == EXIT_OK
    root = minimal_project.resolve()
    found = f"project root {root} (found from {here.resolve()}: it holds template_specs/)"
    assert found in err.getvalue()
    # no project above: said so, not "found"
    elsewhere = tmp_path_factory.mktemp("no-project")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("BOXSMITH_SPECS_DIR", str(minimal_project / "template_specs"))
    err = io.StringIO()
    main(["validate", "--verbose"], out=io.StringIO(), err=err)
    assert "(no project found from here up: the current folder)" in err.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _progress_lines(stream: io.StringIO, level: Verbosity) -> list[str]:
    err = Stderr(stream, level)
    with Progress(err, "build") as progress:
        progress.add("app:1.0.0")
        progress.update("app:1.0.0", "step 1/2 RUN make")
        progress.update("app:1.0.0", "base image", quiet=True)
        progress.finish("app:1.0.0", "built")
    err.finish(failed=True)
    return [STAMPED.sub("", line) for line in stream.getvalue().splitlines()]


def test_progress_follows_the_verbosity() -> None:
    step, base, done = (
        "build app:1.0.0: step 1/2 RUN make",
        "build app:1.0.0: base image",
        "build app:1.0.0: built",
    )
    assert _progress_lines(io.StringIO(), Verbosity.QUIET) == [done]
    assert _progress_lines(io.StringIO(), Verbosity.NORMAL) == [step, done]
    assert _progress_lines(io.StringIO(), Verbosity.VERBOSE) == [step, base, done]
    # a terminal: the live display at normal verbosity, plain lines at -v
    assert _progress_lines(_Terminal(), Verbosity.VERBOSE) == [step, base, done]
    assert step not in _progress_lines(_Terminal(), Verbosity.NORMAL)


def test_a_stderr_nobody_reads_is_no_error() -> None:
    read, write = os.pipe()
    os.close(read)
    with io.TextIOWrapper(io.FileIO(write, "w"), write_through=True) as stream:
        err = Stderr(stream)
        err.write("build app:1.0.0: built\n")
        err.flush()
        assert err.broken


# -- a closed stdout -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered project whose `list` and `validate --json` print well over a pipe's buffer."""
    root = tmp_path_factory.mktemp("many")
    names = [f"{'long-name-' * 11}{i:03d}" for i in range(600)]
    write_tree(root, {f"template_specs/{n}.yaml": MINIMAL.format(name=n) for n in names})
    assert cli(root, "render").code == EXIT_OK
    return root


@pytest.mark.parametrize(
    "args", [("list",), ("validate", "--json"), ("-q", "list"), ("-v", "list")], ids=" ".join
)
def test_a_reader_that_stops_early_ends_the_command_quietly(
    many_templates: Path, args: tuple[str, ...]
) -> None:
    whole = cli(many_templates, *args).out.encode()
    assert len(whole) > 2 * PIPE_BUFFER  # the writer must meet the closed pipe
    with subprocess.Popen(
        [sys.executable, "-m", "boxsmith", "-C", str(many_templates), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.read(10) == whole[:10]
        process.stdout.close()  # as `head -c 10` does
        err = process.stderr.read().decode()
        assert process.wait() == EXIT_STDOUT_CLOSED
    if "-v" in args:  # the root, then the exit code; nothing about the pipe
        assert [STAMPED.sub("", line).split(";")[0] for line in err.splitlines()] == [
            f"boxsmith {_version()}: list",
            f"boxsmith list: exit {EXIT_STDOUT_CLOSED}",
        ]
    else:
        assert err == ""


def _version() -> str:
    from boxsmith import __version__

    return __version__


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_goes_before_or_after_the_command_and_through_the_verbosity(
    minimal_project: Path, where: str
) -> None:
    """--debug is accepted where -v and -q are, and its log lines go through the same stderr:
    stamped with -v, held with -q until the end."""
    flags = ["--debug", "-v"]
    args = [*flags, "validate"] if where == "before" else ["validate", *flags]
    done = subprocess.run(  # no -C: finding the root is what logs
        [sys.executable, "-m", "boxsmith", *args],
        cwd=minimal_project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    debug = [line for line in done.stderr.splitlines() if "debug: boxsmith." in line]
    assert debug, done.stderr
    assert all(STAMPED.match(line) for line in debug), debug
