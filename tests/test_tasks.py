"""The invoke tasks exit with boxsmith's exit codes (README, "Exit codes"), through invoke."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from boxsmith._internal.cli.outcome import run_command
from boxsmith._internal.extras import MODULES
from boxsmith._internal.lock import hold
from boxsmith.config import load_settings
from tests.helpers import MINIMAL, cli, write_tree
from tests.test_cli import raising

ROOT = Path(__file__).resolve().parents[1]


def _invoke(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """invoke with this repository's tasks.py, run in `project`."""
    return _run_invoke(project, "--search-root", str(ROOT), *args, env=env)


def _run_invoke(
    here: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """invoke run in `here`, finding a tasks.py as it does (there or above) unless told."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def listed_tasks(listing: str) -> set[str]:
    """The task names in `invoke --list` output (a long help wraps onto indented lines)."""
    return {line.split()[0] for line in listing.splitlines()[2:] if line[2:3].strip()}


def test_every_stage_and_release_is_a_task(project: Path) -> None:
    listed = _invoke(project, "--list")
    assert listed.returncode == 0, listed.stderr
    names = listed_tasks(listed.stdout)
    stages = {"validate", "render", "check", "lint", "images", "build", "smoke", "publish"}
    assert stages | {"promote", "rollback", "release", "main", "status", "test", "qa"} <= names


STAGES = {
    "validate", "render", "check", "lint", "images", "build", "smoke", "publish", "promote",
    "rollback", "release", "main", "status", "report", "schema", "list",
}  # fmt: skip


def test_the_package_ships_the_stages_as_one_collection() -> None:
    """`boxsmith.tasks` is what any project's tasks.py imports: boxsmith's stages only (this
    repository adds its own to a copy, leaving the shipped one as it is)."""
    import tasks as repository_tasks
    from invoke.collection import Collection

    from boxsmith import tasks

    assert isinstance(tasks.namespace, Collection)
    assert tasks.ns is tasks.namespace
    assert set(tasks.namespace.task_names) == STAGES
    assert set(repository_tasks.ns.task_names) == STAGES | {"test", "qa", "bench"}
    assert set(tasks.namespace.task_names) == STAGES  # the repository's copy left it alone


def test_a_two_line_tasks_py_runs_the_stages(project: Path) -> None:
    """A project's tasks.py that imports the Collection: invoke lists and runs boxsmith's stages
    from the project's folder and below."""
    write_tree(
        project,
        {
            "tasks.py": "from boxsmith.tasks import namespace as namespace\n",
            "template_specs/app.yaml": MINIMAL.format(name="app"),
            "docs/.keep": "",
        },
    )
    listed = _run_invoke(project, "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed_tasks(listed.stdout) == STAGES
    rendered = _run_invoke(project / "docs", "render")
    assert rendered.returncode == 0, rendered.stderr
    assert (project / "generated/app/1.0.0/e2b.toml").is_file()


def test_importing_the_tasks_without_invoke_names_invoke() -> None:
    """Without the `tasks` extra the import fails on `invoke` itself, the name the CLI turns
    into its pip hint. The interpreter sees the standard library and boxsmith's source only
    (-I -S: no site-packages), so invoke is as missing as in an install without the extra."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r})\n"
        "try:\n"
        "    import boxsmith.tasks\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name)\n"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "invoke\n", "")


@pytest.mark.parametrize("task", ["images", "main", "smoke", "release"])
def test_a_task_whose_extra_is_missing_names_it(project: Path, task: str) -> None:
    """Without the Docker SDK (the `build` extra; here: `docker` made unimportable, as in an
    install without it), a task that needs it exits 2 with the pip hint that brings it, as its
    command does: the command module is imported inside the step, never a traceback."""
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    code = (
        "import sys\n"
        "sys.modules['docker'] = None\n"
        "from invoke.main import program\n"
        "program.run(['invoke', *sys.argv[1:]])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "--search-root", str(ROOT), task],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    hint = re.search(r"^  fix: pip install 'boxsmith\[([a-z0-9,]+)\]' ", run.stderr, re.M)
    assert hint, run.stderr
    assert "docker" in set().union(*(MODULES[extra] for extra in hint[1].split(",")))
    assert "Traceback" not in run.stderr
    assert not (project / "generated").exists()  # asked before any work


def test_tasks_find_the_project_root_from_a_sub_folder(project: Path) -> None:
    """The tasks resolve the project as the CLI does; `status` exits 1 on drift, as `check`."""
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app"), "docs/.keep": ""})
    assert _invoke(project / "docs", "render").returncode == 0
    assert (project / "generated/app/1.0.0/e2b.toml").is_file()
    status = _invoke(project / "docs", "status", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)["templates"]
    assert (row["name"], row["generated"]["status"]) == ("app", "rendered")
    (project / "generated/app/1.0.0/e2b.toml").write_text("x\n")
    drift = _invoke(project / "docs", "status")
    assert drift.returncode == 1, drift.stderr
    assert "app:1.0.0: generated/ drift (generated/app/1.0.0/e2b.toml)" in drift.stdout


def test_tasks_exit_with_boxsmith_codes(project: Path) -> None:
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    assert _invoke(project, "render").returncode == 0
    (project / "generated/app/1.0.0/e2b.Dockerfile").write_text("FROM scratch\n")
    drift = _invoke(project, "check")
    assert drift.returncode == 1, drift.stderr
    assert "drift" in drift.stderr

    write_tree(project, {"template_specs/bad.yaml": "name: bad\n"})
    spec_error = _invoke(project, "release")
    assert spec_error.returncode == 2, spec_error.stderr
    assert "template_specs/bad.yaml" in spec_error.stderr
    assert "Traceback" not in spec_error.stderr

    usage = _invoke(project, "release", "--jobs", "0")
    assert usage.returncode == 2
    assert "--jobs must be at least 1, got 0" in usage.stderr


def test_tasks_take_the_project_lock_as_the_commands_do(project: Path) -> None:
    """The tasks call the same commands, which hold the project lock themselves."""
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    with hold(load_settings(project), "test-holder"):
        refused = _invoke(project, "render", env={"BOXSMITH_NO_WAIT": "1"})
    assert refused.returncode == 3, refused.stderr
    assert f"pid {os.getpid()} (test-holder)" in refused.stderr
    assert not (project / "generated").exists()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "boxsmith", "render"],
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "render"],
    ],
    ids=["cli", "task"],
)
def test_sigterm_interrupts_the_cli_and_the_tasks_alike(project: Path, command: list[str]) -> None:
    """A cancelled CI job (SIGTERM) ends a command as Ctrl-C does: cleaned up, exit 130."""
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    with hold(load_settings(project), "test-holder"):
        run = subprocess.Popen(
            command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert run.stderr is not None
        while "waiting for" not in (line := run.stderr.readline()):  # it blocks after this line
            assert line, "the run never waited for the lock"
        run.send_signal(signal.SIGTERM)
        _, rest = run.communicate(timeout=120)
    assert run.returncode == 130, rest
    assert rest.startswith("interrupted; cleaned up"), rest
    assert not (project / "generated").exists()


def test_tasks_and_the_cli_refuse_the_same_option_values_alike(project: Path) -> None:
    """The checks live in each command's run(), which the CLI and the tasks both call."""
    write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    jobs, seconds = "must be at least 1, got 0", "must be a positive number of seconds, got 0"
    for task, command, message in (
        (["build", "--jobs", "0"], ["build", "-j", "0"], f"--jobs {jobs}"),
        (["publish", "--jobs", "0"], ["publish", "-j", "0"], f"--jobs {jobs}"),
        (
            ["release", "--build-jobs", "0"],
            ["release", "--build-jobs", "0"],
            f"--build-jobs {jobs}",
        ),
        (
            ["smoke", "--ready-timeout", "0"],
            ["smoke", "--local", "--ready-timeout", "0"],
            f"--ready-timeout {seconds}",
        ),
        (["smoke", "--jobs", "0"], ["smoke", "--target", "local", "-j", "0"], f"--jobs {jobs}"),
    ):
        by_task = _invoke(project, *task)
        by_cli = cli(project, *command)
        assert by_task.returncode == by_cli.code == 2, (task, by_task.stderr, by_cli.err)
        assert by_task.stderr == by_cli.err, task
        assert by_cli.err.startswith(f"error: {message}\n  fix: use e.g. "), by_cli.err


def test_tasks_map_errors_to_the_cli_texts(capsys: pytest.CaptureFixture[str]) -> None:
    from boxsmith import tasks

    for exc in (
        KeyboardInterrupt(),
        PermissionError(13, "Permission denied", "/data/x"),
        ValueError("boom"),
    ):
        by_cli = io.StringIO()
        code = run_command(raising(exc), by_cli)
        assert tasks._run(raising(exc)) == code
        assert capsys.readouterr().err == by_cli.getvalue()
