"""`boxsmith init`: a working project in a fresh folder, an existing repository or a sub-folder
of one (the workflows at the repository's top), never clobbering what is there, writing nothing
when it refuses, and a `release` that passes in it (tests/test_release.py's local backend of
the test's own)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from boxsmith import __version__
from boxsmith._internal.cli import init
from boxsmith._internal.cli.outcome import run_command
from boxsmith._internal.spec.schema import schema_json
from tests.helpers import MINIMAL, Run, cli, snapshot, write_tree
from tests.test_release import remove_proof_builds
from tests.test_tasks import STAGES, listed_tasks
from tests.test_workflows import run_job

SCAFFOLD = Path(__file__).resolve().parents[1] / "src/boxsmith/_internal/scaffold"
WORKFLOWS = [f".github/workflows/boxsmith-{name}" for name in init.WORKFLOWS]
WHOLE = ["template_specs/starter.yaml", "tasks.py", *WORKFLOWS]


def _init(root: Path, *, force: bool = False) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(lambda: init.run(root, out=out, err=err, force=force), err)
    return Run(code, out.getvalue(), err.getvalue())


def _actions(run: Run) -> dict[str, str]:
    """path -> create/identical/overwrite/update, from the lines init lists."""
    listed = run.out.split("\n\n")[0].splitlines()
    return {line.split()[1]: line.split()[0] for line in listed}


def _run(here: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=here, capture_output=True, text=True, check=False, timeout=120
    )


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(root, "git", *args)


def test_init_scaffolds_a_working_project_in_an_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "new-project"  # not made yet: init makes it
    done = _init(root)
    assert done.code == 0, done.err
    name = init.starter_name(root)
    assert name == "new-project-starter"
    assert _actions(done) == {
        **dict.fromkeys([*WHOLE, "pyproject.toml", ".gitignore"], "create"),
        "template_specs/boxsmith.schema.json": "create",
        f"generated/{name}/0.1.0/e2b.Dockerfile": "create",
        f"generated/{name}/0.1.0/e2b.toml": "create",
        "generated/index.json": "create",
    }
    starter = (root / "template_specs/starter.yaml").read_text()
    assert starter.startswith("# yaml-language-server: $schema=boxsmith.schema.json\n")
    assert f"\nname: {name}\n" in starter
    assert (root / "template_specs/boxsmith.schema.json").read_text() == schema_json()
    for workflow in WORKFLOWS:  # as they ship, with boxsmith pinned to this version
        shipped = SCAFFOLD / "workflows" / Path(workflow).name.removeprefix("boxsmith-")
        pinned = re.sub(
            r"(pip install '?boxsmith(\[[a-z0-9,]+\])?)", rf"\1=={__version__}", shipped.read_text()
        )
        assert pinned != shipped.read_text()
        assert (root / workflow).read_text() == pinned
    assert f" run: pip install boxsmith=={__version__}\n" in (root / WORKFLOWS[0]).read_text()
    assert (
        (root / "tasks.py")
        .read_text()
        .splitlines()[-1]
        .startswith("from boxsmith.tasks import namespace as namespace")
    )
    assert tomllib.loads((root / "pyproject.toml").read_text()) == {
        "tool": {"boxsmith": {"specs_dir": "template_specs", "generated_dir": "generated"}}
    }
    assert ".boxsmith/" in (root / ".gitignore").read_text().splitlines()
    assert "\nnext:\n" in done.out
    assert "  boxsmith release " in done.out
    assert f"  cd {os.path.relpath(root)}\n" in done.out

    for command in ("validate", "check", "lint"):
        passed = cli(root, command)
        assert passed.code == 0, (command, passed.err)
    listed = _run(root, sys.executable, "-m", "invoke", "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed_tasks(listed.stdout) == STAGES


PYPROJECT = """\
# an existing project
[project]
name = "app"  # its own comment
version = "1.0"

[tool.ruff]
line-length = 100

[build-system]
requires = ["setuptools"]"""


def test_init_amends_an_existing_repository_never_clobbering_it(tmp_path: Path) -> None:
    """pyproject.toml and .gitignore keep every byte, the new lines appended once; the
    repository's other files stay as they were; git ignores boxsmith's state folder."""
    write_tree(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            ".gitignore": "__pycache__/\n*.egg-info",
            "src/app/__init__.py": "VERSION = 1\n",
            "README.md": "# app\n",
            ".github/workflows/ci.yml": "name: ci\n",  # the repository's own, beside boxsmith's
        },
    )
    assert _git(tmp_path, "init", "-q").returncode == 0
    before = snapshot(tmp_path)
    done = _init(tmp_path)
    assert done.code == 0, done.err
    actions = _actions(done)
    assert (actions["pyproject.toml"], actions[".gitignore"]) == ("update", "update")

    pyproject = (tmp_path / "pyproject.toml").read_text()
    assert pyproject.startswith(PYPROJECT + "\n\n[tool.boxsmith]\n")
    data = tomllib.loads(pyproject)
    assert data.pop("tool")["boxsmith"] == {
        "specs_dir": "template_specs",
        "generated_dir": "generated",
    }
    assert data == {k: v for k, v in tomllib.loads(PYPROJECT).items() if k != "tool"}
    assert tomllib.loads(pyproject)["tool"]["ruff"] == {"line-length": 100}
    gitignore = (tmp_path / ".gitignore").read_text()
    assert gitignore.startswith("__pycache__/\n*.egg-info\n\n")
    assert gitignore.count(".boxsmith/") == 1
    after = snapshot(tmp_path)
    for path in ("src/app/__init__.py", "README.md", ".github/workflows/ci.yml", ".git/HEAD"):
        assert after[path] == before[path]
    assert _git(tmp_path, "check-ignore", "-q", ".boxsmith/lock").returncode == 0

    again = _init(tmp_path)  # nothing changed since: every file identical, nothing appended
    assert again.code == 0, again.err
    assert set(_actions(again).values()) == {"identical"}
    assert _without_state(snapshot(tmp_path)) == _without_state(after)


def _without_state(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: data for path, data in files.items() if not path.startswith(".boxsmith/")}


def test_an_existing_tool_table_is_kept_and_followed(tmp_path: Path) -> None:
    """A project that has `[tool.boxsmith]` keeps it; the starter goes where it says specs are."""
    table = '[tool.boxsmith]\nspecs_dir = "specs"  # ours\ngenerated_dir = "out"\n'
    write_tree(tmp_path, {"pyproject.toml": table, ".gitignore": "/.boxsmith/\n"})
    done = _init(tmp_path)
    assert done.code == 0, done.err
    actions = _actions(done)
    assert (actions["pyproject.toml"], actions[".gitignore"]) == ("identical", "identical")
    assert (tmp_path / "pyproject.toml").read_text() == table
    assert (tmp_path / ".gitignore").read_text() == "/.boxsmith/\n"
    assert (tmp_path / "specs/starter.yaml").is_file()
    name = init.starter_name(tmp_path)
    assert (tmp_path / f"out/{name}/0.1.0/e2b.toml").is_file()
    assert cli(tmp_path, "check").code == 0
    # the workflows watch, diff and commit these folders, not the defaults
    templates, publish = (_load(tmp_path / WORKFLOWS[i]) for i in (1, 2))
    assert _filters(templates, publish) == (
        ["specs/**", "out/**", "pyproject.toml", ".github/workflows/*templates.yml"],
        ["out/**"],
    )
    assert _step(publish, "publish", "records")["run"].startswith(
        "git diff --binary -- out > records.patch\n"
    )
    assert "\ngit add out\n" in _step(publish, "records", "Bring the publish records back")["run"]
    texts = "".join((tmp_path / workflow).read_text() for workflow in WORKFLOWS)
    assert "template_specs" not in texts
    assert "generated/**" not in texts


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _filters(templates: dict[str, Any], publish: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The path filters of the templates workflow and of the publish workflow (YAML 1.1 reads
    the key `on` as True)."""
    return templates[True]["pull_request"]["paths"], publish[True]["push"]["paths"]


def _step(workflow: dict[str, Any], job: str, named: str) -> dict[str, Any]:
    """The step of `job` whose id is `named` or whose name starts with it."""
    (step,) = [
        s
        for s in workflow["jobs"][job]["steps"]
        if s.get("id") == named or s.get("name", "").startswith(named)
    ]
    return step


def test_init_in_a_sub_folder_of_a_repository_writes_the_workflows_at_its_top(
    tmp_path: Path,
) -> None:
    """GitHub reads workflows only at the repository's top and runs them there: init in a
    sub-folder writes them there, the jobs that run boxsmith run in the sub-folder and the
    paths they name are the sub-folder's. Its ci job and the templates workflow's `changed` job,
    run as GitHub runs them, pass and find the starter changed since the base branch."""
    top = tmp_path / "monorepo"
    write_tree(top, {"README.md": "# monorepo\n", ".github/workflows/ci.yml": "name: ci\n"})
    assert _git(top, "init", "-q", "-b", "main").returncode == 0
    _commit(top, "base")
    project = top / "apps/sandboxes"
    write_tree(project, {"template_specs/web.yaml": MINIMAL.format(name="web")})
    done = _init(project)
    assert done.code == 0, done.err
    name = init.starter_name(project)
    actions = _actions(done)
    assert {path: actions[path] for path in actions if ".github" in path} == {
        f"../../.github/workflows/boxsmith-{workflow}": "create" for workflow in init.WORKFLOWS
    }
    assert not (project / ".github").exists()
    assert (top / ".github/workflows/ci.yml").read_text() == "name: ci\n"
    assert (
        "git add .gitignore pyproject.toml tasks.py ../../.github template_specs generated\n"
        in (done.out)
    )
    assert "their jobs run in apps/sandboxes\n" in done.out

    workflows = {w: top / ".github/workflows" / f"boxsmith-{w}" for w in init.WORKFLOWS}
    jobs = {w: _load(path)["jobs"] for w, path in workflows.items()}
    folders = {
        (w, job): spec.get("defaults", {}).get("run", {}).get("working-directory")
        for w, found in jobs.items()
        for job, spec in found.items()
    }
    assert folders == {  # no checkout in preflight; records commits at the top
        ("ci.yml", "check"): "apps/sandboxes",
        ("templates.yml", "changed"): "apps/sandboxes",
        ("templates.yml", "template"): "apps/sandboxes",
        ("publish.yml", "preflight"): None,
        ("publish.yml", "publish"): "apps/sandboxes",
        ("publish.yml", "records"): None,
    }
    templates, publish = (_load(workflows[w]) for w in ("templates.yml", "publish.yml"))
    here = "apps/sandboxes"
    watched = [f"{here}/{path}" for path in ("template_specs/**", "generated/**", "pyproject.toml")]
    assert _filters(templates, publish) == (
        [*watched, ".github/workflows/*templates.yml"],
        [f"{here}/generated/**"],
    )
    setups = [
        step["with"]["cache-dependency-path"]
        for found in jobs.values()
        for job in found.values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/setup-python")
    ]
    assert set(setups) == {"apps/sandboxes/pyproject.toml"}
    assert _step(templates, "template", "Smoke reports")["with"]["path"] == (
        "apps/sandboxes/reports/"
    )
    assert _step(publish, "publish", "Smoke reports")["with"]["path"] == (
        "apps/sandboxes/.boxsmith/reports/"
    )

    run_job(workflows["ci.yml"], "check", top, {})
    _commit(top, "init")
    _git(top, "update-ref", "refs/remotes/origin/main", "main~1")
    output = tmp_path / "github-output"
    output.touch()
    env = {"BASE_REF": "main", "GITHUB_OUTPUT": str(output)}
    run_job(workflows["templates.yml"], "changed", top, env)
    assert output.read_text() == f'shards=[["{name}"], ["web"]]\nany=true\n'


def _commit(root: Path, message: str) -> None:
    assert _git(root, "add", "-A").returncode == 0
    who = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    done = _git(root, *who, "commit", "-q", "-m", message)
    assert done.returncode == 0, done.stderr


def test_init_outside_a_repository_or_with_a_folder_the_workflows_cannot_name_refuses(
    tmp_path: Path,
) -> None:
    """A specs folder outside the repository cannot be watched by its workflows; a glob
    character in a folder's name would change what a path filter matches. Nothing written."""
    (tmp_path / "repo/.git").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    write_tree(tmp_path / "repo", {"pyproject.toml": f'[tool.boxsmith]\nspecs_dir = "{outside}"\n'})
    write_tree(tmp_path / "repo/app[1]", {"README.md": "# app\n"})
    before = snapshot(tmp_path)
    refused = _init(tmp_path / "repo")
    assert refused.code == 2
    assert refused.err.startswith(
        f"error: specs_dir {outside} is outside the repository at {tmp_path / 'repo'}, so its "
        "GitHub workflows cannot watch it; nothing was written\n"
    )
    globbed = _init(tmp_path / "repo/app[1]")
    assert globbed.code == 2
    assert "error: the project folder 'app[1]' (from " in globbed.err
    assert snapshot(tmp_path) == before


def test_a_second_init_refuses_to_overwrite_changed_files_unless_forced(tmp_path: Path) -> None:
    assert _init(tmp_path).code == 0
    starter = tmp_path / "template_specs/starter.yaml"
    starter.write_text(starter.read_text().replace('version: "0.1.0"', 'version: "0.2.0"'))
    (tmp_path / "tasks.py").write_text("# my own tasks\n")
    before = snapshot(tmp_path)

    refused = _init(tmp_path)
    assert refused.code == 2
    assert refused.err == (
        "error: boxsmith init would overwrite 2 file(s) that differ from its own: "
        "template_specs/starter.yaml, tasks.py; nothing was written\n"
        "  fix: move them away, or run `boxsmith init --force` to overwrite them\n"
    )
    assert refused.out == ""
    assert snapshot(tmp_path) == before

    forced = _init(tmp_path, force=True)
    assert forced.code == 0, forced.err
    actions = _actions(forced)
    assert (actions["template_specs/starter.yaml"], actions["tasks.py"]) == ("overwrite",) * 2
    assert set(actions[path] for path in WORKFLOWS) == {"identical"}
    assert 'version: "0.1.0"' in starter.read_text()
    assert (tmp_path / "tasks.py").read_text().startswith('"""invoke tasks')
    assert cli(tmp_path, "check").code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[project\nname = 1\n", "pyproject.toml: "),
        ("tool = { ruff = { line-length = 100 } }\n", "cannot append a [tool.boxsmith] table"),
    ],
    ids=["not-toml", "inline-tool-table"],
)
def test_a_pyproject_init_cannot_amend_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """Exit 2 naming the file and what to do; nothing written."""
    write_tree(tmp_path, {"pyproject.toml": text})
    refused = _refused(tmp_path, message)
    assert "  fix: " in refused.err


def _refused(root: Path, message: str) -> Run:
    """init in `root`: exit 2 with `message`, no traceback, nothing written."""
    before = snapshot(root)
    refused = _init(root)
    assert refused.code == 2, refused.err
    assert message in refused.err
    assert "Traceback" not in refused.err
    assert refused.out == ""
    assert snapshot(root) == before
    return refused


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"template_specs/web.yaml": MINIMAL.format(name="web") + "bogus_key: 1\n"},
            "template_specs/web.yaml:5:1: ",
        ),
        (
            {"template_specs/web.yaml": MINIMAL.format(name="project-starter")},
            "error: template_specs/web.yaml defines the template 'project-starter', the "
            "starter's name, which init would write to template_specs/starter.yaml",
        ),
        (
            {"generated/notes.md": "mine\n"},
            "error: the generated folder generated/ is not empty and has no index.json",
        ),
        (
            {"generated/index.json": "{\n"},
            "error: generated/index.json is not a valid boxsmith index",
        ),
    ],
    ids=["invalid-spec", "starter-name-taken", "foreign-generated-folder", "broken-index"],
)
def test_what_the_render_would_refuse_is_refused_before_anything_is_written(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    """The render after the writes would exit 2: init checks first and writes nothing."""
    root = write_tree(tmp_path / "project", {"README.md": "# project\n", **files})
    assert "nothing was written" in _refused(root, message).err


def test_a_file_in_the_way_of_the_project_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x\n")
    refused = _init(tmp_path / "taken")
    assert refused.code == 2
    assert refused.err.startswith(f"error: {tmp_path / 'taken'} is not a folder\n")


def test_the_command_line_runs_init(tmp_path: Path) -> None:
    done = _run(tmp_path, sys.executable, "-m", "boxsmith", "init", "project")
    assert done.returncode == 0, done.stderr
    assert "create    tasks.py\n" in done.stdout
    again = _run(tmp_path, sys.executable, "-m", "boxsmith", "-C", "project", "check")
    assert again.returncode == 0, again.stderr


@pytest.mark.docker
def test_release_passes_in_a_fresh_init_project(backend_project: Path) -> None:
    """init, then `boxsmith release` to the local backend: build, smoke in a container,
    publish, smoke in a sandbox and promote, all passing; `check` still passes after."""
    root = backend_project  # its local backend keeps its data under this folder
    assert _init(root).code == 0
    name = init.starter_name(root)
    try:
        released = cli(root, "release", "--json")
        assert released.code == 0, released.err
        (row,) = json.loads(released.out)["templates"]
        assert (row["name"], row["version"], row["change"]) == (name, "0.1.0", "new")
        assert (row["build"], row["smoke_container"]) == ("built", "passed")
        assert (row["publish"], row["smoke_sandbox"]) == ("published", "passed")
        assert row["channel"] == "-> 0.1.0"
        checked = cli(root, "check")
        assert checked.code == 0, checked.err
    finally:
        remove_proof_builds(root, name)
