"""`pip_packages`, `npm_packages` and ENV values in real builds: what the image gets.

Marked `docker`. Without an engine these tests skip, except under CI (`CI` set), where they fail.
The package test downloads from PyPI and the npm registry (small packages without
dependencies: six and idna, semver). Each test's project lives in tmp_path with its own
template names; the images it built (found by its project label) are removed when it ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from boxsmith._internal.docker.client import PROJECT_LABEL
from boxsmith.config import load_settings
from tests import test_build_smoke
from tests.helpers import cli, write_tree
from tests.test_render import ENV_KINDS

pytestmark = pytest.mark.docker
docker_client = test_build_smoke.docker_client  # the engine client, or a skip without one


@pytest.fixture
def root(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    """An empty project; the images its builds made are removed after the test."""
    (tmp_path / "template_specs").mkdir()
    yield tmp_path
    mine = f"{PROJECT_LABEL}={load_settings(tmp_path).project_id}"
    for image in docker_client.images.list(filters={"label": mine}):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(image.id, force=True)


def _spec(root: Path, stem: str, base: str, body: str) -> str:
    """Write template_specs/<stem>-<token>.yaml; returns the template's name."""
    name = f"{stem}-{uuid.uuid4().hex[:8]}"
    head = f'name: {name}\nversion: "1.0.0"\ndescription: {stem}\nbase_image: {base}\n'
    write_tree(root, {f"template_specs/{name}.yaml": head + textwrap.dedent(body)})
    return name


def _built(root: Path) -> dict[str, dict[str, Any]]:
    """`render`, then `build --json`: each template's build entry, all of them built."""
    render = cli(root, "render")
    assert render.code == 0, render.err
    run = cli(root, "build", "--json")
    assert run.code == 0, run.err
    builds = {entry["name"]: entry for entry in json.loads(run.out)["builds"]}
    assert {entry["status"] for entry in builds.values()} == {"built"}, run.err
    return builds


def test_pip_and_npm_packages_install_and_run(root: Path) -> None:
    """A template lists its packages instead of a raw `run: pip install`; quoted versions (`*`,
    `>`, `<`, `~`) reach pip and npm intact, the packages import and run as the sandbox user."""
    python = _spec(
        root,
        "pip",
        "python:3.11-slim",
        """\
        pip_packages: ["six==1.16.*", "idna>=3,<4"]
        smoke:
          - name: imports
            command: python -c "import idna, six; print(six.__version__, idna.__version__)"
            stdout: ^1\\.16\\.\\d+ 3\\.
          - name: installed for every user
            command: pip show six
            stdout: "(?m)^Location: /usr/"
        """,
    )
    node = _spec(
        root,
        "npm",
        "node:21-slim",
        """\
        npm_packages: ["semver@~7.6.0"]
        smoke:
          - name: its command is on PATH
            command: semver --range '>=7 <8' 7.6.3 8.0.0
            stdout: ^7\\.6\\.3$
          - name: installed globally
            command: npm ls --global --depth=0
            stdout: semver@7\\.6\\.
        """,
    )
    _built(root)
    runs = {
        python: "RUN pip install 'idna>=3,<4' 'six==1.16.*'\n",
        node: "RUN npm install -g 'semver@~7.6.0'\n",
    }
    for name, run in runs.items():
        assert run in (root / f"generated/{name}/1.0.0/e2b.Dockerfile").read_text()
        smoke = cli(root, "smoke", "--local", name)
        assert smoke.code == 0, smoke.out + smoke.err
        assert re.search(rf"^passed +{name}:1\.0\.0 +checks 2/2 ", smoke.out, re.MULTILINE)


def test_env_values_reach_the_build_as_the_spec_wrote_them(
    root: Path, docker_client: docker.DockerClient
) -> None:
    """Docker reads every kind of ENV value, bare or quoted, back as the spec's value: a RUN
    step writes the environment it got. `$VAR` is Docker's substitution: PATH's value before
    the ENV, and a step's `${PLAIN}` the value the top-level env gave it."""
    docker_free = {k: v for k, (v, _) in ENV_KINDS.items() if "$" not in v}
    env = "".join(f"  {k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in docker_free.items())
    name = _spec(
        root,
        "env",
        "debian:bookworm-slim",
        "env:\n"
        + env
        + '  REF: "/opt/bin:$PATH"\n'
        + "steps:\n"
        + "  - env: {STEP_REF: '${PLAIN} and $EQUALS'}\n"
        + "  - run: env -0 > /opt/build-env\n",
    )
    build = _built(root)[name]
    dockerfile = (root / f"generated/{name}/1.0.0/e2b.Dockerfile").read_text()
    assert "ENV PORT=3000 \\\n    PLAIN=plain-value_1.0 \\\n" in dockerfile  # bare where it can
    container = docker_client.containers.create(build["image_id"], command=["true"])
    try:
        chunks, _ = container.get_archive("/opt/build-env")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("build-env")
            assert member is not None
            text = member.read().decode()
    finally:
        container.remove(force=True)
    seen = dict(item.split("=", 1) for item in text.split("\0") if item)
    path = docker_client.images.get(build["image_id"]).attrs["Config"]["Env"]
    base_path = next(item[5:] for item in path if item.startswith("PATH="))
    assert {k: seen.get(k) for k in docker_free} == docker_free
    assert seen["REF"] == f"/opt/bin:{base_path}"
    assert seen["STEP_REF"] == "plain-value_1.0 and a=b==c"
