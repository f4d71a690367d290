"""The oldest e2b SDK boxsmith accepts (`e2b>=X,<3` in pyproject.toml) works, for real.

This venv runs the newest e2b 2.x; this test installs boxsmith[backend] from this checkout with
the lowest e2b of the range into a fresh venv, and there publishes a tiny template to a local
backend (which that venv runs too: its envd speaks through the same SDK's stubs), smoke-tests
it in a sandbox and runs the sandbox tool in one, all through the real SDK over HTTP. Why that
lowest version: e2b 2.61.0 is the first whose `AsyncSandbox.create` takes the idempotency key
the sandbox tool sends; 2.57.0 is the first on connectrpc 0.12 and protobuf-py 0.6, which the
backend's envd is written against (Template.get_tags, assign_tags, build_in_background,
get_build_status are all older).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers import free_port, remove_backend_images, write_tree
from tests.test_install import boxsmith, dists, python, venv

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: range-tiny
version: "1.0.0"
description: the lowest e2b of the range
base_image: debian:bookworm-slim
steps:
  - run: echo from-the-build > /opt/marker
start_cmd: sleep infinity
ready_cmd: test -f /opt/marker
smoke:
  - name: marker
    file: /opt/marker
    contains: from-the-build
  - name: the sandbox user
    command: id -un
    stdout: "^user$"
"""
TOOL = """\
import json
from boxsmith.sandbox import SandboxSessionSync

with SandboxSessionSync("range-tiny:stable", timeout=120) as box:
    written = box.write_files({"hi.sh": "cat /opt/marker"})
    result = box.run_code("bash hi.sh", "bash")
print(json.dumps([written, result.stdout, result.exit_code]))
"""


def lowest_e2b() -> str:
    """X of the `e2b>=X,<3` requirement in pyproject.toml's `e2b` extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (found,) = [
        match[1]
        for requirement in project["optional-dependencies"]["e2b"]
        if (match := re.fullmatch(r"e2b>=([0-9.]+),<3", requirement))
    ]
    return found


def test_pyproject_names_the_lowest_e2b_this_file_explains() -> None:
    assert lowest_e2b() == "2.61.0"


@pytest.mark.slow
@pytest.mark.docker
def test_the_lowest_e2b_publishes_smokes_and_runs_the_sandbox_tool(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from boxsmith._internal.backend.datadir import data_dir

    lowest = lowest_e2b()
    wheel = dists(tmp_path_factory)["wheel"]
    bin_dir = venv(tmp_path / "venv", f"{wheel}[backend]", f"e2b=={lowest}")
    version = python(bin_dir, "import importlib.metadata as m; print(m.version('e2b'))")
    assert version.stdout == f"{lowest}\n", version.stderr
    project = write_tree(tmp_path / "project", {"template_specs/range-tiny.yaml": SPEC})
    env = {"BOXSMITH_BACKEND_PORT": str(free_port())}
    try:
        assert boxsmith(bin_dir, project, "render").code == 0
        publish = boxsmith(bin_dir, project, "publish", "--target", "local", env=env)
        assert publish.code == 0, publish.out + publish.err
        assert "ok: 1 template(s): 1 published" in publish.out + publish.err
        smoke = boxsmith(bin_dir, project, "smoke", "--target", "local", env=env)
        assert smoke.code == 0, smoke.out + smoke.err
        promoted = "range-tiny:1.0.0: 2/2 checks passed; range-tiny:stable -> 1.0.0"
        assert promoted in smoke.err + smoke.out
        shell = boxsmith(bin_dir, project, "backend", "env", env=env)
        assert shell.code == 0, shell.err
        sdk = dict(line.removeprefix("export ").split("=", 1) for line in shell.out.splitlines())
        assert sorted(sdk) == ["E2B_API_KEY", "E2B_API_URL", "E2B_SANDBOX_URL"]
        tool = python(bin_dir, TOOL, env=sdk)
        assert tool.returncode == 0, tool.stderr
        assert json.loads(tool.stdout) == [["/home/user/hi.sh"], "from-the-build\n", 0]
    finally:
        stop = boxsmith(bin_dir, project, "backend", "stop", env=env)
        remove_backend_images(data_dir(project))
    assert stop.code == 0, stop.err
