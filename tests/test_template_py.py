"""template.py (`template_py = true`): the template of e2b.Dockerfile + e2b.toml as code for the
e2b SDK's Template builder, rendered next to each pair.

Fast tests: off by default; ruff-format-clean and compiling code; the builder steps it makes are
the steps the SDK reads from the pair (for a test spec and for every bundled spec); part of the
index and of `check`, not of the content hash. The docker test builds it with `python
template.py` on the local backend and runs the spec's smoke checks in a sandbox of it and of the
published pair: the same status for every check.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from e2b import Sandbox, Template

from boxsmith._internal.build.composite import build_key
from boxsmith._internal.build.rendered import load_unit
from boxsmith._internal.publish.targets import connect
from boxsmith._internal.render.folder import RenderedFile, content_hash
from boxsmith._internal.render.template_py import py_str
from boxsmith._internal.smoke.runner import run_checks
from boxsmith._internal.smoke.sandbox_target import SandboxTarget
from boxsmith._internal.spec.catalog import load_catalog
from boxsmith.config import load_settings
from tests.helpers import MINIMAL, cli, write_tree
from tests.test_render import CHMOD_WORDS

REPO = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")
ON = "[tool.boxsmith]\ntemplate_py = true\n"

SPEC = """\
name: pyt
version: "1.0.0"
description: template.py test
base_image: debian:bookworm-slim
env:
  GREETING: 'say "hi", it''s \\\\ ok'
  PORT: "3000"
files:
  - src: files/hello.sh
    dest: /opt/bin/hello
    mode: "0755"
steps:
  - run: mkdir -p /opt/app && echo "$GREETING on $PORT" > /opt/app/env.txt
  - user: user
  - copy:
      src: files/start.sh
      dest: /home/user/start.sh
      mode: "0700"
      owner: user:user
  - run: ["echo \\"as $(id -un)\\" > /home/user/who.txt", "echo done >> /home/user/who.txt"]
workdir: /opt/app
user: user
start_cmd: /home/user/start.sh
ready_cmd:
  wait_for_file: /tmp/started
smoke:
  - name: hello
    command: /opt/bin/hello
    stdout: "^hi$"
  - name: mode and owner
    command: stat -c '%a %U' /opt/bin/hello /home/user/start.sh
    stdout: "^755 root\\n700 user$"
  - name: env at build time
    file: /opt/app/env.txt
    contains: '^say "hi", it''s \\\\\\\\ ok on 3000$'
  - name: ran as user
    file: /home/user/who.txt
    contains: "^as user\\ndone$"
  - name: started
    file: /tmp/started
    retries: 5
    interval: 1
  - name: workdir and user
    command: echo "$(pwd) $(id -un)"
    stdout: "^/opt/app user$"
  - name: fails in both
    command: test -e /nonexistent
"""
FILES = {
    "template_specs/files/hello.sh": "#!/bin/sh\necho hi\n",
    "template_specs/files/start.sh": "#!/bin/sh\ntouch /tmp/started\nexec sleep infinity\n",
}


def _project(root: Path, *, on: bool = True, spec: str = SPEC) -> Path:
    tree: dict[str, str | bytes] = {"template_specs/pyt.yaml": spec, **FILES}
    if on:
        tree["pyproject.toml"] = ON
    return write_tree(root, tree)


def _load(path: Path) -> Any:
    """Import a template.py (no __pycache__ beside it: generated/ holds only boxsmith's files)."""
    spec = importlib.util.spec_from_file_location(f"template_{abs(hash(path))}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def _pair_template(folder: Path) -> Any:
    """What `boxsmith publish` builds from the pair (publish/sdk.py)."""
    toml = tomllib.loads((folder / "e2b.toml").read_text())
    dockerfile = (folder / "e2b.Dockerfile").read_text()
    template = Template(file_context_path=str(folder)).from_dockerfile(dockerfile)
    if toml.get("start_cmd"):
        return template.set_start_cmd(toml["start_cmd"], toml.get("ready_cmd") or "sleep 20")
    if toml.get("ready_cmd"):
        return template.set_ready_cmd(toml["ready_cmd"])
    return template


_CHMOD = re.compile(r'chmod ([0-7]{4}) ("(?:[^"\\]|\\.)*"|[^\s"]+)')


def _path(word: str) -> str:
    """The path in a chmod's word as `sh` reads it (bare, or double-quoted with `\\`, `"`
    and a backtick escaped), `$VAR` kept as the SDK keeps it in a COPY's dest."""
    if word.startswith('"'):
        return re.sub(r"\\(.)", r"\1", word[1:-1])
    return word


def _fold_chmod(steps: list[dict[str, Any]], i: int, user: str) -> int:
    """For the COPY at `i` of the parsed steps: the chmod boxsmith writes after it (USER root,
    RUN chmod MODE dest, USER back when the user is not root) made its mode; the index of
    the step after them (`i + 1` when there is no such chmod)."""
    around = user != "root"
    at = i + 2 if around else i + 1
    chmod = steps[at] if at < len(steps) and steps[at]["type"] == "RUN" else None
    match = _CHMOD.fullmatch(chmod["args"][0]) if chmod else None
    if match is None or _path(match[2]) != steps[i]["args"][1]:
        return i + 1
    if around:
        assert (steps[i + 1]["args"], steps[at + 1]["args"]) == (["root"], [user])
    steps[i] = {**steps[i], "args": [*steps[i]["args"][:3], match[1]]}
    return at + 2 if around else at + 1


def _normal(template: Any, *, parsed: bool) -> dict[str, Any]:
    """The build request's JSON, read the same way from both: the SDK's Dockerfile parser's
    leading `USER root`, `WORKDIR /` (Docker's defaults, which E2B's build also starts from)
    dropped, whitespace in RUN commands collapsed (`a \\<newline>    && b` is `a && b`), and a
    COPY's chmod read as the copy's mode (`_fold_chmod`)."""
    data = json.loads(Template.to_json(template))
    steps = data["steps"]
    if parsed:
        head = [(s["type"], s["args"]) for s in steps[:2]]
        assert head == [("USER", ["root"]), ("WORKDIR", ["/"])]
        steps = steps[2:]
    out: list[dict[str, Any]] = []
    user, i = "root", 0
    while i < len(steps):
        step = steps[i]
        if step["type"] == "USER":
            user = step["args"][0]
        if step["type"] == "RUN":
            step = {**step, "args": [" ".join(step["args"][0].split()), *step["args"][1:]]}
        following = _fold_chmod(steps, i, user) if parsed and step["type"] == "COPY" else i + 1
        out.append(steps[i] if step["type"] == "COPY" else step)
        i = following
    return {**data, "steps": out}


def _assert_same_steps(folder: Path) -> None:
    mine = _load(folder / "template.py").template
    assert _normal(mine, parsed=False) == _normal(_pair_template(folder), parsed=True)


def _tidy(path: Path) -> None:
    """ruff format and ruff check, with ruff's defaults (no settings of this repository), find
    nothing, and it compiles."""
    fmt = subprocess.run(
        [RUFF, "format", "--isolated", "--check", "--diff", path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run(
        [RUFF, "check", "--isolated", path], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    with tempfile.TemporaryDirectory() as cache:  # not into __pycache__ beside it
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        subprocess.run([sys.executable, "-m", "py_compile", path], check=True, env=env)
    assert not (path.parent / "__pycache__").exists()


def _no_pyc() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def test_off_by_default(project: Path) -> None:
    _project(project, on=False)
    assert cli(project, "render").code == 0
    assert not (project / "generated/pyt/1.0.0/template.py").exists()
    assert load_settings(project).template_py is False


def test_a_non_boolean_setting_is_a_usage_error(project: Path) -> None:
    write_tree(project, {"pyproject.toml": '[tool.boxsmith]\ntemplate_py = "yes"\n'})
    run = cli(project, "render")
    assert run.code == 2
    assert "template_py must be true or false, got 'yes'" in run.err


def test_rendered_code_is_tidy_and_builds_the_steps_of_the_pair(project: Path) -> None:
    _project(project)
    run = cli(project, "render")
    assert run.code == 0, run.err
    assert "create    generated/pyt/1.0.0/template.py" in run.out
    folder = project / "generated/pyt/1.0.0"
    _tidy(folder / "template.py")
    code = (folder / "template.py").read_text()
    assert code.startswith("# Generated by boxsmith from template_specs/pyt.yaml. Do not edit:\n")
    assert 'TAG = "1.0.0"' in code
    assert "from_dockerfile" not in code
    # the builder's own calls: the copy's owner and mode, the ready helper
    assert '.copy("files/hello.sh", "/opt/bin/hello", mode=0o755)' in code
    assert ("user=" + py_str("user:user") + ", mode=0o700)") in code
    assert '.set_start_cmd("/home/user/start.sh", wait_for_file("/tmp/started"))' in code
    _assert_same_steps(folder)
    module = _load(folder / "template.py")
    final = module.template._template
    toml = tomllib.loads((folder / "e2b.toml").read_text())
    assert (final._start_cmd, final._ready_cmd) == (toml["start_cmd"], toml["ready_cmd"])
    assert callable(module.build)
    assert not (folder / "__pycache__").exists()


def test_every_bundled_spec_translates_to_the_steps_of_its_pair(tmp_path: Path) -> None:
    shutil.copytree(REPO / "template_specs", tmp_path / "template_specs")
    write_tree(tmp_path, {"pyproject.toml": ON})
    assert cli(tmp_path, "render").code == 0
    folders = sorted(p.parent for p in (tmp_path / "generated").glob("*/*/e2b.toml"))
    assert len(folders) == len(load_catalog(load_settings(REPO)).templates)
    for folder in folders:
        assert (folder / "template.py").is_file(), folder
        _tidy(folder / "template.py")
        _assert_same_steps(folder)


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'say "hi"',
        "it's",
        """both ' and "" """,
        "back\\slash",
        "tab\there",
        "\x7f\u2028é漢",
    ],
)
def test_strings_are_written_as_ruff_writes_them(tmp_path: Path, text: str) -> None:
    source = tmp_path / "s.py"
    source.write_text(f"x = {py_str(text)}\n", encoding="utf-8")
    fmt = subprocess.run(
        [RUFF, "format", "--isolated", "--check", source], capture_output=True, check=False
    )
    assert fmt.returncode == 0, source.read_text()
    namespace: dict[str, object] = {}
    exec(source.read_text(encoding="utf-8"), namespace)
    assert namespace["x"] == text


def test_long_calls_split_and_every_value_survives(project: Path) -> None:
    """Commands, values and paths too long for a line, with quotes, dollars, non-ASCII."""
    long = "echo " + "x" * 90
    spec = MINIMAL.format(name="pyt") + (
        "env:\n"
        + "".join(f"  VAR_{n}: 'value {n} with \"quotes\" and $HOME, ü'\n" for n in range(4))
        + f"steps:\n  - run: {long}\n  - run: ['{long}', 'true']\n"
        + "  - copy: {src: files/hello.sh, dest: '/opt/a folder/'}\n"
        + f"start_cmd: {long}\nready_cmd: 'curl -s http://localhost:1/{'y' * 80}'\n"
    )
    _project(project, spec=spec)
    assert cli(project, "render").code == 0
    folder = project / "generated/pyt/1.0.0"
    _tidy(folder / "template.py")
    _assert_same_steps(folder)
    assert "mode=" not in (folder / "template.py").read_text()


def test_a_chmod_folds_into_the_copy_mode_whatever_the_dest_holds(project: Path) -> None:
    """The chmod after a COPY is read back as the copy's `mode=` whether its dest is bare or
    double-quoted (`$VAR`, non-ASCII, a space, a backtick), as root or around a USER."""
    files = "".join(
        f"  - {{src: files/hello.sh, dest: {json.dumps(dest, ensure_ascii=False)}, mode: '0750'}}\n"
        for dest in CHMOD_WORDS
    )
    copy = "{src: files/hello.sh, dest: '/home/user/é $SUB', mode: '0700'}"
    step = f"steps:\n  - user: user\n  - copy: {copy}\n"
    _project(project, spec=MINIMAL.format(name="pyt") + "files:\n" + files + step)
    assert cli(project, "render").code == 0
    folder = project / "generated/pyt/1.0.0"
    code = (folder / "template.py").read_text()
    assert "chmod" not in code
    for dest in CHMOD_WORDS:
        assert f".copy({py_str('files/hello.sh')}, {py_str(dest)}, mode=0o750)" in code
    assert '"/home/user/é $SUB", mode=0o700)' in code
    _tidy(folder / "template.py")
    _assert_same_steps(folder)


def test_a_copied_file_named_template_py_is_refused(project: Path) -> None:
    spec = MINIMAL.format(name="pyt") + "files:\n  - src: template.py\n    dest: /opt/t.py\n"
    write_tree(project, {"template_specs/pyt.yaml": spec, "template_specs/template.py": "x\n"})
    assert cli(project, "render").code == 0  # off: an ordinary file
    write_tree(project, {"pyproject.toml": ON})
    run = cli(project, "render")
    assert run.code == 2
    assert "template_specs/pyt.yaml:6:10: error: files[0].src: src lands on template.py" in run.err


def test_part_of_the_output_not_of_the_content(project: Path) -> None:
    """The index records and hashes template.py, `check` sees it drift, but it is not content:
    turning it on for a published version is allowed and keeps the content hash."""
    _project(project, on=False)
    assert cli(project, "render").code == 0
    index_path = project / "generated/index.json"
    before = json.loads(index_path.read_text())["templates"]["pyt"]["1.0.0"]
    before["publishes"].append(
        {
            "target": "local",
            "template_id": "tpl-1",
            "build_id": "build-1",
            "tags": ["1.0.0"],
            "published_at": "2026-11-28T00:00:00Z",
            "content_hash": before["content_hash"],
        }
    )
    index_path.write_text(json.dumps({"templates": {"pyt": {"1.0.0": before}}}, indent=2))
    write_tree(project, {"pyproject.toml": ON})
    stale = cli(project, "check")
    assert stale.code == 1, stale.out + stale.err
    assert "generated/pyt/1.0.0/template.py" in stale.out + stale.err
    run = cli(project, "render")
    assert run.code == 0, run.err
    after = json.loads(index_path.read_text())["templates"]["pyt"]["1.0.0"]
    assert after["content_hash"] == before["content_hash"]
    assert "template.py" in after["files"]
    assert set(after["hashes"]) == set(after["files"])
    assert cli(project, "check").code == 0

    path = project / "generated/pyt/1.0.0/template.py"
    files = tuple(
        RenderedFile(rel, (project / "generated/pyt/1.0.0" / rel).read_bytes())
        for rel in after["files"]
        if rel != "e2b.toml"
    )
    assert content_hash(files) == content_hash(tuple(f for f in files if f.rel != "template.py"))

    path.write_text(path.read_text().replace("TAG = ", "TAG = 'x' or "))
    drift = cli(project, "check")
    assert drift.code == 1
    assert "generated/pyt/1.0.0/template.py" in drift.out
    assert "was edited by hand" in drift.out + drift.err
    again = cli(project, "render")
    assert "update    generated/pyt/1.0.0/template.py" in again.out
    assert "warning: generated/pyt/1.0.0/template.py: replaces a hand edit" in again.err

    write_tree(project, {"pyproject.toml": "[tool.boxsmith]\n"})
    off = cli(project, "render")
    assert off.code == 0, off.err
    assert "delete    generated/pyt/1.0.0/template.py" in off.out
    assert not path.exists()


@pytest.mark.docker
def test_template_py_builds_on_the_local_backend_with_the_smoke_result_of_the_pair(
    backend_project: Path,
) -> None:
    """The pair published as pyt:1.0.0 (`boxsmith publish`), template.py built as pyt-py:1.0.0
    by `python template.py` with `boxsmith backend env`'s environment; the spec's checks in a
    sandbox of each: the same status for every check (one fails in both on purpose)."""
    root = _project(backend_project)
    assert cli(root, "render").code == 0
    published = cli(root, "publish", "--target", "local")
    assert published.code == 0, published.err
    pair = cli(root, "smoke", "--target", "local", "--no-promote", "--json")
    assert pair.code == 1, pair.err  # the check that fails in both
    (suite,) = json.loads(pair.out)["suites"]
    pair_status = [(c["name"], c["status"]) for c in suite["checks"]]
    assert pair_status[-1] == ("fails in both", "failed")
    assert {status for _, status in pair_status[:-1]} == {"passed"}, pair.out

    exports = cli(root, "backend", "env")
    assert exports.code == 0, exports.err
    env = dict(line.removeprefix("export ").split("=", 1) for line in exports.out.splitlines())
    assert set(env) >= {"E2B_API_URL", "E2B_API_KEY"}
    folder = root / "generated/pyt/1.0.0"
    built = subprocess.run(
        [sys.executable, "template.py", "pyt-py:1.0.0"],
        cwd=folder,
        env={**_no_pyc(), **env},
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard only: the build takes seconds
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert built.stdout.splitlines()[-1].startswith("built template ")

    target = connect(load_settings(root), "local", err=io.StringIO())
    (template,) = load_catalog(load_settings(root)).templates
    sandbox = Sandbox.create("pyt-py:1.0.0", timeout=300, **target.params)
    try:
        results = run_checks(SandboxTarget(sandbox, "pyt-py"), template.spec.smoke)
    finally:
        sandbox.kill()
    assert [(r.name, r.status) for r in results] == pair_status
    assert Sandbox.list(**target.params).next_items() == []


def test_turning_it_on_after_a_clean_check_is_drift(project: Path) -> None:
    """The verification stamp must not answer for a project whose setting changed."""
    _project(project, on=False)
    assert cli(project, "render").code == 0
    assert cli(project, "check").code == 0
    write_tree(project, {"pyproject.toml": ON})
    stale = cli(project, "check")
    assert stale.code == 1, stale.out + stale.err
    assert "generated/pyt/1.0.0/template.py" in stale.out


def test_importing_it_leaves_bytecode_that_is_not_drift(project: Path) -> None:
    """`import template` (the README says it works) writes __pycache__/ beside it: neither
    foreign output for render and check nor part of the local build key."""
    _project(project)
    assert cli(project, "render").code == 0
    folder = project / "generated/pyt/1.0.0"
    unit = load_unit(load_settings(project), load_catalog(load_settings(project)).templates[0])
    key = build_key(unit, "sha256:parity")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    imported = subprocess.run(
        [sys.executable, "-c", "import template"], cwd=folder, env=env, check=False
    )
    assert imported.returncode == 0
    assert list((folder / "__pycache__").glob("template.*.pyc"))
    checked = cli(project, "check")
    assert checked.code == 0, checked.out + checked.err
    again = cli(project, "render")
    assert "foreign" not in again.out + again.err
    assert build_key(unit, "sha256:parity") == key
    # turning template_py off and on changes no build key either
    (folder / "template.py").unlink()
    assert build_key(unit, "sha256:parity") == key
