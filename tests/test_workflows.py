"""The GitHub workflows: valid against the GitHub workflow schema (check-jsonschema's vendored
copy, offline), calling only commands boxsmith has, and usable by any repository.

`boxsmith init` writes the scaffold's workflows (src/boxsmith/_internal/scaffold/workflows) with
boxsmith pinned and the project's folders filled in: they install boxsmith from PyPI and call
no script of this repository. This repository's ci.yml, templates.yml and publish.yml are the
scaffold's files installing from the checkout; tests.yml (the test suite and the main job) and
pages.yml (the main job, then the catalog site on GitHub Pages) are its own.
"""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from boxsmith import __version__
from boxsmith._internal import extras
from boxsmith._internal.cli import init
from boxsmith._internal.cli.app import build_parser

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCAFFOLD = sorted((ROOT / "src/boxsmith/_internal/scaffold/workflows").glob("*.yml"))
EVERY = REPOSITORY + SCAFFOLD
SHARED = ("ci.yml", "templates.yml", "publish.yml")
# `pip install 'boxsmith[lint,build]'` in the scaffold, `pip install -e '.[lint,build]'` here
INSTALL = re.compile(r"pip install '?boxsmith(\[[a-z0-9,-]+\])?'?")


def _id(path: Path) -> str:
    return f"{'scaffold' if 'scaffold' in path.parts else 'repository'}/{path.name}"


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _from_checkout(scaffold: str) -> str:
    """The scaffold's text with each install from PyPI made an install of this checkout."""
    return INSTALL.sub(
        lambda m: f"pip install -e '.{m.group(1)}'" if m.group(1) else "pip install -e .",
        scaffold,
    )


def test_the_workflows_are_found() -> None:
    assert [p.name for p in SCAFFOLD] == sorted(SHARED)
    assert [p.name for p in REPOSITORY] == sorted([*SHARED, "tests.yml", "pages.yml"])


@pytest.mark.parametrize("workflow", EVERY, ids=_id)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    _assert_valid(workflow)


def _assert_valid(workflow: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(workflow),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", EVERY, ids=_id)
def test_workflow_calls_only_existing_commands(workflow: Path) -> None:
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    loaded = _load(workflow)
    runs = [step.get("run", "") for step in _steps(loaded)]
    used = {
        command
        for run in runs
        for line in run.splitlines()
        if "pip install" not in line
        for command in re.findall(r"(?:^|[\s;&|(])boxsmith ([a-z][\w-]*)", line)
    }
    if workflow.name != "tests.yml":  # that one runs the repository's scripts
        assert used, "a workflow that never calls boxsmith"
    assert used <= commands, used - commands
    for step in _steps(loaded):
        assert "${{" not in step.get("run", ""), (
            f"{workflow.name}: pass expressions through env:, never into a shell line"
        )


@pytest.mark.parametrize("workflow", SCAFFOLD, ids=_id)
def test_each_job_installs_the_extras_its_commands_need(workflow: Path) -> None:
    """A job that runs `boxsmith X` installs the extras `X` needs (`extras.COMMANDS`; without
    them it would exit 2 asking for them, in CI, after the merge)."""
    _assert_installs_what_it_runs(workflow)


def _assert_installs_what_it_runs(workflow: Path) -> None:
    for name, job in _load(workflow)["jobs"].items():
        runs = "\n".join(step.get("run", "") for step in job.get("steps", []))
        installed = {
            extra
            for found in re.findall(r"pip install '?boxsmith(?:\[([a-z0-9,]+)\])?", runs)
            for extra in found.split(",")
            if extra
        }
        if "pip install" not in runs:
            continue
        for line in runs.splitlines():
            for command, rest in re.findall(r"(?:^|[\s;&|(])boxsmith ([a-z][\w-]*)(.*)", line):
                needed = _needs(command, rest.split())
                assert needed <= installed, f"{workflow.name} {name}: {line.strip()} needs {needed}"


def _needs(command: str, args: list[str]) -> set[str]:
    """The extras `boxsmith <command> <args>` asks for (cli/*.py's up-front checks)."""
    target = args[args.index("--target") + 1] if "--target" in args else "local"
    if command == "smoke":
        return {"build"} if "--local" in args else {extras.TARGET_EXTRAS[target]}
    if command == "release":
        proof = set() if "--no-build" in args else {"build"}
        return {"lint", "e2b", extras.TARGET_EXTRAS[target], *proof}
    if command in ("publish", "promote", "rollback"):
        return {"e2b", extras.TARGET_EXTRAS[target]}
    return set(extras.COMMANDS.get(command, ()))


@pytest.mark.parametrize("workflow", SCAFFOLD, ids=_id)
def test_the_scaffold_needs_nothing_of_this_repository(workflow: Path) -> None:
    """What `boxsmith init` writes installs boxsmith from PyPI and runs it from PATH."""
    text = workflow.read_text()
    assert "scripts/" not in text
    assert ".venv" not in text
    assert "-e ." not in text
    assert INSTALL.search(text), "no `pip install boxsmith` in a workflow that runs it"


WRITTEN = [f"{where}/{name}" for where in ("top", "sub-folder") for name in SHARED]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The workflows `boxsmith init` writes: for a project at the top of a new folder, and for
    one in a sub-folder (with a space) of a git repository, its specs_dir and generated_dir
    set, keyed `<where>/<name>`."""
    top = tmp_path_factory.mktemp("top")
    repository = tmp_path_factory.mktemp("repository")
    (repository / ".git").mkdir()  # what init looks for; no git needed
    project = repository / "apps/my templates"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.boxsmith]\nspecs_dir = "specs"\ngenerated_dir = "out"\n'
    )
    for folder in (top, project):
        out, err = io.StringIO(), io.StringIO()
        assert init.run(folder, out=out, err=err) == 0, err.getvalue()
    return {
        f"{where}/{name}": base / ".github/workflows" / f"boxsmith-{name}"
        for where, base in (("top", top), ("sub-folder", repository))
        for name in SHARED
    }


@pytest.mark.parametrize("key", WRITTEN)
def test_the_workflows_init_writes_are_valid(written: dict[str, Path], key: str) -> None:
    """Valid for GitHub, each job installing the extras its commands need, boxsmith pinned."""
    workflow = written[key]
    _assert_valid(workflow)
    _assert_installs_what_it_runs(workflow)
    installs = re.findall(r"pip install .*", workflow.read_text())
    pinned = {f"boxsmith=={__version__}", f"'boxsmith[lint,build]=={__version__}'"}
    pinned.add(f"'boxsmith[lint,e2b]=={__version__}'")
    assert installs
    assert {line.removeprefix("pip install ") for line in installs} <= pinned


@pytest.mark.parametrize("name", SHARED)
def test_the_repository_runs_the_scaffold_workflows(name: str) -> None:
    """One source: this repository's workflow is the scaffold's, installing from the checkout."""
    scaffold = (ROOT / "src/boxsmith/_internal/scaffold/workflows" / name).read_text()
    repository = (ROOT / ".github/workflows" / name).read_text()
    assert _from_checkout(scaffold) != scaffold
    assert repository == _from_checkout(scaffold)


@pytest.mark.parametrize("workflow", EVERY, ids=_id)
def test_permissions_are_granted_per_job_and_minimal(workflow: Path) -> None:
    loaded = _load(workflow)
    assert loaded["permissions"] == {}, "nothing for the workflow as a whole"
    for name, job in loaded["jobs"].items():
        assert "permissions" in job, f"{workflow.name}: job {name} says what it may do"
        granted = job["permissions"]
        writes = {scope for scope, level in granted.items() if level == "write"}
        if (workflow.name, name) == ("publish.yml", "records"):
            assert writes == {"contents", "pull-requests"}
        elif (workflow.name, name) == ("pages.yml", "deploy"):
            assert granted == {"pages": "write", "id-token": "write"}  # what deploy-pages needs
        else:
            assert writes == set(), f"{workflow.name}: job {name} writes {writes}"


@pytest.mark.parametrize("workflow", EVERY, ids=_id)
def test_every_python_setup_caches_pip(workflow: Path) -> None:
    setups = [s for s in _steps(_load(workflow)) if s.get("uses", "").startswith("actions/setup-")]
    for setup in setups:
        assert setup["with"]["cache"] == "pip", workflow.name
        assert setup["with"]["cache-dependency-path"] == "pyproject.toml", workflow.name


@pytest.mark.parametrize("workflow", EVERY, ids=_id)
def test_the_e2b_key_is_only_in_the_steps_that_use_it(workflow: Path) -> None:
    """Not for the workflow or a job: only a step that publishes or smoke-tests on E2B sees it
    (the publish workflow's preflight asks whether it is set, never for its value)."""
    loaded = _load(workflow)
    assert "E2B_API_KEY" not in str(loaded.get("env", {}))
    for job in loaded["jobs"].values():
        assert "E2B_API_KEY" not in str(job.get("env", {}))
        for step in job["steps"]:
            env = step.get("env", {})
            if "E2B_API_KEY" in env:
                assert env["E2B_API_KEY"] == "${{ secrets.E2B_API_KEY }}"
                assert re.search(r"boxsmith (release|publish|smoke) .*--target e2b", step["run"])
            else:
                assert "secrets.E2B_API_KEY" not in str(step) or step.get("id") == "decide"


PAGES = ROOT / ".github/workflows/pages.yml"


def test_pages_publishes_the_report_of_the_main_job_with_the_official_actions() -> None:
    """On a push to main: the main job, then `boxsmith report --out site`, uploaded and deployed
    by GitHub's own Pages actions; only the deploy job may write, and only to Pages."""
    loaded = _load(PAGES)
    assert loaded[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}  # `on:`
    build, deploy = loaded["jobs"]["build"], loaded["jobs"]["deploy"]
    runs = [step.get("run", "") for step in build["steps"]]
    main = runs.index("scripts/main")
    assert runs.index("boxsmith report --out site") > main
    uses = [step["uses"].split("@")[0] for step in build["steps"] if "uses" in step]
    assert uses[-2:] == ["actions/configure-pages", "actions/upload-pages-artifact"]
    assert build["steps"][-1]["with"]["path"] == "site/"
    assert deploy["needs"] == "build"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
    assert deploy["environment"]["name"] == "github-pages"


PUBLISH = ROOT / "src/boxsmith/_internal/scaffold/workflows/publish.yml"


def test_two_publishes_never_overlap() -> None:
    """One group for every run of the workflow (not per run or ref), and a run in progress is
    never cancelled: the next one waits."""
    concurrency = _load(PUBLISH)["concurrency"]
    assert concurrency == {"group": "boxsmith-publish", "cancel-in-progress": False}


def _script(
    job: str, step_id: str | None = None, name: str | None = None, workflow: Path = PUBLISH
) -> str:
    jobs = _load(workflow)["jobs"]
    (step,) = [
        s
        for s in jobs[job]["steps"]
        if (step_id and s.get("id") == step_id) or (name and s.get("name") == name)
    ]
    script: str = step["run"]
    return script


def job_folder(workflow: Path, job: str) -> str:
    """Where a job's `run:` steps run, relative to the checkout: its `working-directory`."""
    defaults = _load(workflow)["jobs"][job].get("defaults", {})
    folder: str = defaults.get("run", {}).get("working-directory", ".")
    return folder


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A step's script as GitHub runs it (`bash -e {0}`)."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def run_job(workflow: Path, job: str, top: Path, env: dict[str, str]) -> list[str]:
    """A job's `run:` steps in order, as GitHub runs them: `bash -e` in the job's
    `working-directory` under the checkout `top`, with `env` for the expressions of the steps'
    own env. The installs are left out: this checkout's boxsmith is first on PATH. Returns each
    step's stdout; a failed step fails the test."""
    folder = top / job_folder(workflow, job)
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    outputs = []
    for step in _load(workflow)["jobs"][job]["steps"]:
        script = step.get("run", "")
        if not script or script.startswith("pip install"):
            continue
        done = _bash(script, folder, {**env, "PATH": path})
        assert done.returncode == 0, f"{step.get('name')}: {done.stdout}{done.stderr}"
        outputs.append(done.stdout)
    return outputs


@pytest.mark.parametrize(
    ("fork", "has_key", "publish", "notice"),
    [
        ("false", "true", "true", None),
        ("false", "false", "false", "no E2B_API_KEY secret"),
        ("true", "true", "false", "a fork does not publish to E2B"),
    ],
)
def test_publish_is_skipped_with_a_notice_without_a_key_or_on_a_fork(
    tmp_path: Path, fork: str, has_key: str, publish: str, notice: str | None
) -> None:
    """The preflight's script: a notice and `publish=false` (the publish job is then skipped,
    not failed) on a fork or without the secret; `publish=true` otherwise."""
    jobs = _load(PUBLISH)["jobs"]
    assert jobs["publish"]["if"] == "needs.preflight.outputs.publish == 'true'"
    output = tmp_path / "output"
    output.touch()
    run = _bash(
        _script("preflight", step_id="decide"),
        tmp_path,
        {"FORK": fork, "HAS_KEY": has_key, "GITHUB_OUTPUT": str(output)},
    )
    assert run.returncode == 0, run.stderr
    assert output.read_text() == f"publish={publish}\n"
    if notice is None:
        assert "::notice" not in run.stdout
    else:
        assert run.stdout.startswith(f"::notice title=publish skipped::{notice}"), run.stdout


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )
    return done.stdout


def _project(work: Path, where: str) -> tuple[Path, str]:
    """The project in the clone `work` and its publish workflow: the scaffold's at the top, or
    the one `boxsmith init` writes for a project in a sub-folder with generated_dir = "out"
    (it writes it at the clone's top); its generated folder relative to the top."""
    if where == "top":
        (work / "generated").mkdir()
        (work / "generated/index.json").write_text('{"templates": {}}\n')
        return PUBLISH, "generated"
    project = work / "apps/templates"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.boxsmith]\ngenerated_dir = "out"\n')
    out, err = io.StringIO(), io.StringIO()
    assert init.run(project, out=out, err=err) == 0, err.getvalue()
    assert not (project / ".github").exists()
    return work / ".github/workflows/boxsmith-publish.yml", "apps/templates/out"


@pytest.mark.parametrize("where", ["top", "sub-folder"])
@pytest.mark.parametrize("has_token", ["true", "false"])
def test_the_records_come_back_through_a_pull_request(
    tmp_path: Path, has_token: str, where: str
) -> None:
    """The publish job's patch of generated/ (an executable copied file stays executable) is
    applied in the records job, pushed to a branch of its own and opened as a pull request
    against the branch that was published (`gh` stands in for GitHub's CLI); without
    BOXSMITH_PR_TOKEN a warning says that no check starts on it. Each step runs where its job
    runs (`working-directory`): also for a project in a sub-folder of the repository whose
    generated folder is not `generated`, as `boxsmith init` writes the workflow for it."""
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "--bare", str(origin))
    work = tmp_path / "work"
    _git(tmp_path, "clone", str(origin), str(work))
    workflow, generated = _project(work, where)
    (work / generated / "app/1.0.0").mkdir(parents=True)
    tool = work / generated / "app/1.0.0/run.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    _git(work, "add", "-A")
    _git(work, "commit", "-m", "render")
    _git(work, "push", "origin", "HEAD:main")
    published = _git(work, "rev-parse", "HEAD").strip()
    recorded = '{"templates": {"app": "published"}}\n'
    (work / generated / "index.json").write_text(recorded)

    output = tmp_path / "publish-output"
    publishing = work / job_folder(workflow, "publish")
    made = _bash(
        _script("publish", step_id="records", workflow=workflow),
        publishing,
        {"GITHUB_OUTPUT": str(output)},
    )
    assert made.returncode == 0, made.stderr
    assert output.read_text() == "records=true\n"

    records = tmp_path / "records"
    _git(tmp_path, "clone", str(origin), str(records))
    (kept,) = [
        s
        for s in _load(workflow)["jobs"]["publish"]["steps"]
        if s.get("with", {}).get("name") == "publish-records"
    ]
    uploaded = kept["with"]["path"]
    (work / uploaded).rename(records / "records.patch")  # download-artifact: the checkout's top
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "gh-args"}\n')
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "BASE": "main",
        "RUN": "7-1",
        "HAS_PR_TOKEN": has_token,
        "GH_TOKEN": "unused",
    }
    opened = _bash(
        _script("records", name="Bring the publish records back (pull request)", workflow=workflow),
        records / job_folder(workflow, "records"),
        env,
    )
    assert opened.returncode == 0, opened.stderr
    assert ("::warning title=no checks on the records pull request::" in opened.stdout) is (
        has_token == "false"
    )
    branch = "boxsmith/publish-7-1"
    assert _git(origin, "rev-parse", f"{branch}~1").strip() == published
    assert _git(origin, "show", f"{branch}:{generated}/index.json") == recorded
    changed = _git(origin, "diff", "--name-only", published, branch).split()
    assert changed == [f"{generated}/index.json"]  # run.sh kept its mode
    args = (tmp_path / "gh-args").read_text().splitlines()
    assert args[:6] == ["pr", "create", "--base", "main", "--head", branch]
