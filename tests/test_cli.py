"""The CLI: dispatch, exit codes, JSON output, schema, and one real subprocess."""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from boxsmith._internal.backend.datadir import data_dir
from boxsmith._internal.cli.app import main
from boxsmith._internal.cli.outcome import run_command
from boxsmith._internal.cli.parser import build_parser
from boxsmith._internal.docker.boot import DEFAULT_READY_TIMEOUT
from boxsmith._internal.spec.schema import schema_json
from boxsmith.config import find_root, load_settings
from boxsmith.errors import UsageError
from tests.helpers import MINIMAL, Run, cli, write_tree

REPO = Path(__file__).resolve().parents[1]


def test_validate_json_lists_templates(minimal_project: Path) -> None:
    run = cli(minimal_project, "validate", "--json")
    assert run.code == 0
    (entry,) = json.loads(run.out)["templates"]
    assert entry["name"] == "app"
    assert entry["spec"] == "template_specs/app.yaml"


def test_unknown_template_name_is_usage_error(minimal_project: Path) -> None:
    run = cli(minimal_project, "render", "ap")
    assert run.code == 2
    assert "no template matches 'ap'" in run.err
    assert "did you mean 'app'?" in run.err


def test_bad_label_filter_is_usage_error(minimal_project: Path) -> None:
    run = cli(minimal_project, "validate", "--label", "oops")
    assert run.code == 2
    assert "key=value" in run.err


def test_missing_specs_folder(tmp_path: Path) -> None:
    run = cli(tmp_path, "validate")
    assert run.code == 2
    assert "spec folder template_specs does not exist" in run.err


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from boxsmith._internal.cli.app import main

    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "fix: see `boxsmith --help`" in capsys.readouterr().err


def raising(exc: BaseException) -> Callable[[], int]:
    """A command step that ends with `exc`."""

    def step() -> int:
        raise exc

    return step


def test_errors_map_to_exit_codes_and_texts_in_one_place() -> None:
    cases: list[tuple[BaseException, int, str]] = [
        (UsageError("bad flag", "use another"), 2, "error: bad flag\n  fix: use another\n"),
        (KeyboardInterrupt(), 130, "interrupted; cleaned up (no partial files, local builds"),
        (
            PermissionError(13, "Permission denied", "/data/x"),
            3,
            "error: /data/x: Permission denied\n  fix: check that path's permissions",
        ),
        (OSError("no file named"), 3, "internal error: OSError: no file named\n"),
        (
            ValueError("boom"),
            3,
            "internal error: ValueError: boom\n"
            "  fix: rerun with `boxsmith --debug` and report the traceback\n",
        ),
    ]
    for exc, code, text in cases:
        err = io.StringIO()
        assert run_command(raising(exc), err) == code, exc
        assert err.getvalue().startswith(text), err.getvalue()
        assert "Traceback" not in err.getvalue()
    err = io.StringIO()
    assert run_command(raising(ValueError("boom")), err, debug=True) == 3
    assert err.getvalue().startswith("Traceback (most recent call last):\n")
    assert "internal error: ValueError: boom\n" in err.getvalue()
    assert run_command(lambda: 1, io.StringIO()) == 1


def test_pyproject_settings_and_unknown_keys(project: Path) -> None:
    write_tree(
        project,
        {
            "pyproject.toml": '[tool.boxsmith]\nspecs_dir = "specs"\ngenerated_dir = "out"\n',
            "specs/app.yaml": MINIMAL.format(name="app"),
        },
    )
    run = cli(project, "render")
    assert run.code == 0, run.err
    assert (project / "out/app/1.0.0/e2b.toml").is_file()
    (project / "pyproject.toml").write_text('[tool.boxsmith]\nspec_dir = "specs"\n')
    bad = cli(project, "validate")
    assert bad.code == 2
    assert "unknown [tool.boxsmith] key(s): spec_dir" in bad.err


def test_pyproject_that_is_not_utf8_is_a_usage_error(project: Path) -> None:
    (project / "pyproject.toml").write_bytes(b'[tool.boxsmith]\nspecs_dir = "sp\xe9cs"\n')
    run = cli(project, "validate")
    assert run.code == 2
    assert "pyproject.toml: not UTF-8 (invalid continuation byte at byte 31)" in run.err
    assert "fix: save pyproject.toml as UTF-8" in run.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("images", "ensure", "--pull-timeout", "0"), "--pull-timeout must be a positive"),
        (("backend", "serve", "--port", "70000"), "--port must be a TCP port from 1 to 65535"),
        (("backend", "serve", "--port", "0"), "--port must be a TCP port from 1 to 65535"),
    ],
)
def test_option_values_are_checked_before_any_work(
    project: Path, args: tuple[str, ...], message: str
) -> None:
    run = cli(project, *args)
    assert run.code == 2, run.err
    assert message in run.err


def test_schema_command_writes_and_reports(project: Path) -> None:
    first = cli(project, "schema", "-o", "schema.json")
    assert first.out.startswith("create ")
    assert cli(project, "schema", "-o", "schema.json").out.startswith("identical")
    assert json.loads((project / "schema.json").read_text())["title"] == "boxsmith template spec"


def test_committed_schema_is_current() -> None:
    committed = (REPO / "template_specs/boxsmith.schema.json").read_text()
    assert committed == schema_json(), "run `boxsmith schema` and commit the result"


@pytest.mark.parametrize(
    "spec", sorted((REPO / "template_specs").rglob("*.yaml")), ids=lambda p: p.name
)
def test_bundled_specs_pass_the_json_schema(spec: Path) -> None:
    first_line = spec.read_text().splitlines()[0]
    assert first_line.startswith("# yaml-language-server: $schema=")
    schema_ref = first_line.split("$schema=", 1)[1]
    assert (spec.parent / schema_ref).resolve() == REPO / "template_specs/boxsmith.schema.json"
    jsonschema.validate(yaml.safe_load(spec.read_text()), json.loads(schema_json()))


def test_json_schema_rejects_unknown_keys() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "nmae": "y"}, json.loads(schema_json()))


@pytest.mark.slow
def test_real_subprocess_exit_codes(tmp_path: Path) -> None:
    """The installed console script, as users and CI run it."""
    exe = Path(sys.executable).with_name("boxsmith")
    write_tree(tmp_path, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    env = {**os.environ, "GITHUB_ACTIONS": ""}
    ok = subprocess.run(
        [exe, "-C", tmp_path, "render"], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stderr
    clean = subprocess.run(
        [exe, "-C", tmp_path, "check"], capture_output=True, env=env, check=False
    )
    assert clean.returncode == 0
    (tmp_path / "generated/app/1.0.0/e2b.toml").write_text("x\n")
    drift = subprocess.run(
        [exe, "-C", tmp_path, "check"], capture_output=True, text=True, env=env, check=False
    )
    assert drift.returncode == 1
    assert "drift" in drift.stderr
    (tmp_path / "template_specs/app.yaml").write_text("name: [\n")
    bad = subprocess.run(
        [exe, "-C", tmp_path, "validate"], capture_output=True, text=True, env=env, check=False
    )
    assert bad.returncode == 2
    assert "template_specs/app.yaml:2:1: error: YAML syntax" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_unchanged_check_does_not_load_the_spec_models(minimal_project: Path) -> None:
    assert cli(minimal_project, "render").code == 0
    probe = (
        "import io, sys; from boxsmith._internal.cli.app import main; "
        f"code = main(['-C', {str(minimal_project)!r}, 'check'], out=io.StringIO(), "
        "err=io.StringIO()); print(code, 'pydantic' in sys.modules, 'jinja2' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "False", "False"]


def test_list_changed_since_names_templates_whose_generated_files_changed(project: Path) -> None:
    write_tree(
        project,
        {f"template_specs/{n}.yaml": MINIMAL.format(name=n) for n in ("one", "two", "three")},
    )
    assert cli(project, "render").code == 0

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "0")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    spec = project / "template_specs/two.yaml"
    spec.write_text(spec.read_text().replace("test template", "changed template"))
    assert cli(project, "render").code == 0

    changed = cli(project, "list", "--changed-since", "HEAD", "--json")
    assert changed.code == 0, changed.err
    assert json.loads(changed.out)["names"] == ["two"]
    assert cli(project, "list", "--changed-since", "HEAD~1", "--json").code == 0
    nothing = cli(project, "list", "--changed-since", "HEAD", "one")
    assert nothing.err == "no template changed since HEAD\n"
    bad = cli(project, "list", "--changed-since", "no-such-ref")
    assert bad.code == 2
    assert "fetch that ref first" in bad.err


def test_list_shards_split_the_names_for_ci_matrices(project: Path) -> None:
    from boxsmith._internal.cli.list import split

    names = [f"t{i:03d}" for i in range(500)]
    groups = split(names, 200)
    assert len(groups) == 200
    assert sorted(n for g in groups for n in g) == names
    assert max(map(len, groups)) - min(map(len, groups)) <= 1
    assert split(["a", "b"], 5) == [["a"], ["b"]]
    assert split([], 5) == []

    write_tree(
        project,
        {f"template_specs/{n}.yaml": MINIMAL.format(name=n) for n in ("a", "b", "c", "d", "e")},
    )
    assert cli(project, "render").code == 0
    listed = cli(project, "list", "--json", "--shards", "2")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["shards"] == [["a", "c", "e"], ["b", "d"]]
    assert cli(project, "list", "--shards", "2").code == 2
    assert cli(project, "list", "--json", "--shards", "0").code == 2


# -- the project root, found from the current folder ---------------------------------------------


def _here(*args: str) -> Run:
    """`boxsmith args...` in-process without -C: the root is found from the current folder."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def test_commands_find_the_project_root_from_a_sub_folder(
    minimal_project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert cli(minimal_project, "render").code == 0
    deep = minimal_project / "docs/notes/deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)

    listed = _here("list", "--json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["names"] == ["app"]
    validated = _here("validate", "--json")
    assert validated.code == 0, validated.err
    assert [t["spec"] for t in json.loads(validated.out)["templates"]] == [
        "template_specs/app.yaml"
    ]
    status = _here("status", "--json")
    assert status.code == 0, status.err
    data = json.loads(status.out)
    assert data["root"] == str(minimal_project.resolve())
    assert data["project_id"] == load_settings(minimal_project).project_id
    assert [(t["name"], t["generated"]["status"]) for t in data["templates"]] == [
        ("app", "rendered")
    ]
    assert _here("check").code == 0
    assert not (deep / "generated").exists()
    with caplog.at_level(logging.DEBUG, logger="boxsmith.config"):  # what --debug shows
        assert _here("validate").code == 0
    assert caplog.messages == [
        f"project root {minimal_project.resolve()} (it holds template_specs/)"
    ]

    # An explicit root stays explicit: -C names the project, nothing is searched above it.
    explicit = cli(deep, "validate")
    assert explicit.code == 2
    assert "spec folder template_specs does not exist" in explicit.err


def test_the_nearest_project_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = write_tree(
        tmp_path / "outer",
        {
            "pyproject.toml": '[project]\nname = "x"\n\n[tool.boxsmith]\nspecs_dir = "specs"\n',
            "specs/outer.yaml": MINIMAL.format(name="outer"),
            # a pyproject.toml without [tool.boxsmith] is not a project root: the walk goes on
            "lib/pyproject.toml": '[project]\nname = "lib"\n',
            "lib/src/.keep": "",
        },
    )
    inner = write_tree(
        outer / "vendor/inner",
        {"template_specs/inner.yaml": MINIMAL.format(name="inner"), "src/pkg/.keep": ""},
    )
    expectations = [(inner / "src/pkg", inner, "inner"), (outer / "lib/src", outer, "outer")]
    for start, root, name in expectations:
        assert find_root(start) == root.resolve()
        monkeypatch.chdir(start)
        run = _here("validate", "--json")
        assert run.code == 0, run.err
        assert [t["name"] for t in json.loads(run.out)["templates"]] == [name]
    nowhere = tmp_path / "elsewhere"
    nowhere.mkdir()
    assert find_root(nowhere) == nowhere.resolve()  # none above: the folder itself


def test_a_broken_pyproject_that_claims_the_project_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {"pyproject.toml": "[tool.boxsmith\n", "sub/.keep": ""})
    monkeypatch.chdir(tmp_path / "sub")
    run = _here("list")
    assert run.code == 2
    assert f"error: {tmp_path.resolve() / 'pyproject.toml'}: " in run.err
    assert "fix: fix the TOML syntax" in run.err


def test_relative_env_paths_resolve_against_the_found_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOXSMITH_SPECS_DIR=specs means <root>/specs from anywhere in the project; the variable
    does not take part in finding the root (the project says where it is)."""
    write_tree(
        tmp_path,
        {
            "pyproject.toml": "[tool.boxsmith]\n",
            "specs/app.yaml": MINIMAL.format(name="app"),
            "a/b/.keep": "",
        },
    )
    monkeypatch.setenv("BOXSMITH_SPECS_DIR", "specs")
    monkeypatch.setenv("BOXSMITH_GENERATED_DIR", "out")
    monkeypatch.chdir(tmp_path / "a/b")
    rendered = _here("render")
    assert rendered.code == 0, rendered.err
    assert (tmp_path / "out/app/1.0.0/e2b.toml").is_file()
    assert not (tmp_path / "a/b/out").exists()
    validated = _here("validate", "--json")
    assert [t["spec"] for t in json.loads(validated.out)["templates"]] == ["specs/app.yaml"]

    # the local backend's data folder too: BOXSMITH_BACKEND_DIR=state means <root>/state
    monkeypatch.setenv("BOXSMITH_BACKEND_DIR", "state")
    assert data_dir(load_settings().root) == tmp_path.resolve() / "state"
    assert data_dir(load_settings().root, "other") == tmp_path.resolve() / "other"


def test_a_relative_path_flag_is_relative_to_where_the_command_runs(
    minimal_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in git and ruff: the root is found above, but `-o x` means ./x, not <root>/x."""
    sub = minimal_project / "docs"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert _here("schema", "-o", "spec.schema.json").code == 0
    assert json.loads((sub / "spec.schema.json").read_text())["title"]
    assert not (minimal_project / "spec.schema.json").exists()
    rendered = _here("--generated", "../out", "render")
    assert rendered.code == 0, rendered.err
    assert (minimal_project / "out/app/1.0.0/e2b.toml").is_file()
    # with -C, relative to -C's folder
    assert cli(minimal_project, "schema", "-o", "again.schema.json").code == 0
    assert (minimal_project / "again.schema.json").is_file()


def test_an_unrelated_pyproject_above_does_not_stop_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another project's pyproject.toml (not boxsmith's, here not even UTF-8) is not ours to
    judge: the walk goes past it."""
    write_tree(tmp_path, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    other = tmp_path / "vendor/other"
    (other / "src").mkdir(parents=True)
    (other / "pyproject.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
    monkeypatch.chdir(other / "src")
    validated = _here("validate", "--json")
    assert validated.code == 0, validated.err
    assert [t["name"] for t in json.loads(validated.out)["templates"]] == ["app"]


def test_the_ready_timeout_defaults_agree() -> None:
    """The parser and the invoke tasks write E2B's ready timeout out (no Docker SDK at start)."""
    from boxsmith import tasks

    parser = build_parser()
    for command in (["smoke", "--local"], ["release"]):
        assert parser.parse_args(command).ready_timeout == DEFAULT_READY_TIMEOUT
    for task in (tasks.smoke, tasks.release):
        default = inspect.signature(task.body).parameters["ready_timeout"].default
        assert default == DEFAULT_READY_TIMEOUT


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_ready_timeout_must_be_positive_and_finite(minimal_project: Path, value: str) -> None:
    for command in (["smoke", "--local"], ["release"]):
        refused = cli(minimal_project, *command, "--ready-timeout", value)
        assert refused.code == 2, refused.err
        assert "--ready-timeout must be a positive number of seconds" in refused.err


def test_the_schema_lives_with_the_specs_unless_set(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[tool.boxsmith]\nspecs_dir = "specs"\n'})
    assert load_settings(tmp_path).schema_path == tmp_path.resolve() / "specs/boxsmith.schema.json"
    write_tree(tmp_path, {"pyproject.toml": '[tool.boxsmith]\nschema_path = "s.json"\n'})
    assert load_settings(tmp_path).schema_path == tmp_path.resolve() / "s.json"
    (tmp_path / "pyproject.toml").unlink()
    default = load_settings(tmp_path).schema_path
    assert default == tmp_path.resolve() / "template_specs/boxsmith.schema.json"
