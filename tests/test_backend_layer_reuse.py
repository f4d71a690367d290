"""The local backend's build of a published version reuses the proof build's layers.

`boxsmith build` runs the steps the e2b SDK sends for e2b.Dockerfile the way the backend runs
them (`boxsmith._internal.build.e2b_steps`, `e2b_dockerfile`), so `boxsmith publish --target
local` of the same version is answered by the engine's cache: the backend's image has exactly
the proof image's layers. A file changed after the proof build misses the cache from its COPY on.
Real engine, real backend (started by publish, on a free port), real SDK.
"""

from __future__ import annotations

import glob
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from e2b import BuildException, Template

from boxsmith._internal.build.composite import _sources
from boxsmith._internal.build.e2b_steps import read_dockerfile
from boxsmith._internal.build.rendered import PARITY_ID_LABEL, image_ref
from boxsmith._internal.docker.client import PROJECT_LABEL
from boxsmith._internal.publish.targets import connect
from boxsmith.config import load_settings
from tests.helpers import cli, write_tree

REPO = Path(__file__).resolve().parents[1]
SPEC = """\
name: reuse
version: "1.0.0"
description: layer reuse
base_image: debian:bookworm-slim
env:
  MARK: "say \\"{nonce}\\" $HOME"
files:
  - src: reuse/data.txt
    dest: /opt/reuse/data.txt
  - src: reuse/tool.sh
    dest: /usr/local/bin/reuse-tool
    mode: "0755"
steps:
  - run:
      - echo {nonce} > /opt/reuse/nonce
      - cat /opt/reuse/data.txt > /opt/reuse/copy
  - workdir: /opt/reuse
"""


def _sdk_steps(folder: Path) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    text = (folder / "e2b.Dockerfile").read_text()
    data = json.loads(
        Template.to_json(Template(file_context_path=str(folder)).from_dockerfile(text))
    )
    return data["fromImage"], [(s["type"], tuple(s["args"])) for s in data["steps"]]


def _read_steps(folder: Path) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    read = read_dockerfile((folder / "e2b.Dockerfile").read_text())
    return read.from_image, [(s.type, s.args) for s in read.steps]


def test_a_local_build_reads_e2b_dockerfile_as_the_sdk_does(tmp_path: Path) -> None:
    """The steps a local build runs are the steps the SDK sends, for every bundled template and
    for a spec with quoting, owners, modes and multi-line commands."""
    folders = [Path(f) for f in sorted(glob.glob(str(REPO / "generated/*/*/")))]
    write_tree(
        tmp_path,
        {
            "template_specs/reuse.yaml": SPEC.format(nonce="n 'q' \\\\ `b`"),
            "template_specs/reuse/data.txt": "data\n",
            "template_specs/reuse/tool.sh": "#!/bin/sh\necho tool\n",
        },
    )
    rendered = cli(tmp_path, "render")
    assert rendered.code == 0, rendered.err
    folders.append(tmp_path / "generated/reuse/1.0.0")
    assert len(folders) > 2
    for folder in folders:
        assert _read_steps(folder) == _sdk_steps(folder), folder


def test_copy_of_the_whole_folder_sends_its_contents(tmp_path: Path) -> None:
    """`COPY .` uploads what the folder holds, as the SDK does, not the folder itself (whose
    mode would differ from the backend's and miss its cache)."""
    write_tree(tmp_path, {"a.txt": "a\n", "sub/b.txt": "b\n"})
    assert sorted(_sources(tmp_path, ".")) == ["a.txt", "sub", "sub/b.txt"]


@pytest.fixture
def project(backend_project: Path) -> Iterator[Path]:
    """A project whose proof images go at the end (the backend's go with its fixture)."""
    yield backend_project
    own = f"{PROJECT_LABEL}={load_settings(backend_project).project_id}"
    client = docker.from_env()
    for image in client.images.list(filters={"label": own}):
        client.images.remove(image.id, force=True)
    client.close()


def _layers(client: docker.DockerClient, image: str) -> list[str]:
    return list(client.images.get(image).attrs["RootFS"]["Layers"])


@pytest.mark.docker
def test_publish_after_a_proof_build_builds_nothing_again(project: Path) -> None:
    nonce = uuid.uuid4().hex  # no layer of an earlier run can answer this one
    write_tree(
        project,
        {
            "template_specs/reuse.yaml": SPEC.format(nonce=nonce),
            "template_specs/reuse/data.txt": f"data {nonce}\n",
            "template_specs/reuse/tool.sh": "#!/bin/sh\necho tool\n",
        },
    )
    assert cli(project, "render").code == 0
    built = cli(project, "build", "--json")
    assert built.code == 0, built.err
    assert [b["status"] for b in json.loads(built.out)["builds"]] == ["built"]
    published = cli(project, "publish", "--target", "local")
    assert published.code == 0, published.err

    settings = load_settings(project)
    client = docker.from_env()
    proof = _layers(client, image_ref(settings.project_id, "reuse", "1.0.0"))
    index = json.loads((project / "generated/index.json").read_text())
    (record,) = index["templates"]["reuse"]["1.0.0"]["publishes"]
    backend_image = f"boxsmith-local/reuse:{record['build_id']}"
    assert _layers(client, backend_image) == proof  # every step from the engine's cache

    log = (project / ".boxsmith/logs/publish-local-reuse-1.0.0.log").read_text()
    steps = _steps_run(log)
    assert len(steps) > 20, log
    ran = [step for step, cached in steps.items() if not cached and " : FROM " not in step]
    assert all(" : LABEL " in step for step in ran), ran  # the labels the engine adds last

    # The same folder with one copied file changed: the engine builds again from that COPY on.
    folder = project / "generated/reuse/1.0.0"
    (folder / "reuse/data.txt").write_text(f"changed {nonce}\n")
    target = connect(settings, "local", err=io.StringIO())
    tpl = Template(file_context_path=str(folder)).from_dockerfile(
        (folder / "e2b.Dockerfile").read_text()
    )
    info = Template.build(tpl, "reuse-changed:1.0.0", **target.params)
    changed = _layers(client, f"boxsmith-local/reuse-changed:{info.build_id}")
    parity_id = client.images.get(image_ref(settings.project_id, "reuse", "1.0.0")).labels[
        PARITY_ID_LABEL
    ]
    parity = _layers(client, parity_id)
    assert changed[: len(parity)] == proof[: len(parity)] == parity
    assert changed[len(parity)] != proof[len(parity)]  # the data file's COPY layer
    found = client.containers.run(
        f"boxsmith-local/reuse-changed:{info.build_id}",
        ["cat", "/opt/reuse/copy"],
        remove=True,
    )
    assert found.decode() == f"changed {nonce}\n"
    client.close()


def _steps_run(log: str) -> dict[str, bool]:
    """Each `Step n/m : ...` of a legacy-builder log, and whether the cache answered it."""
    steps: dict[str, bool] = {}
    current = ""
    for line in log.splitlines():
        if "Step " in line and " : " in line:
            current = line[line.index("Step ") :]
            steps[current] = False
        elif current and "---> Using cache" in line:
            steps[current] = True
    return steps


@pytest.mark.docker
def test_unknown_run_user_fails_the_build_with_e2bs_wording(project: Path) -> None:
    write_tree(project, {"template_specs/x.yaml": SPEC.format(nonce="x")})
    settings = load_settings(project)
    target = connect(settings, "local", err=io.StringIO())
    tpl = Template().from_image("debian:bookworm-slim").run_cmd("whoami", user="root123")
    with pytest.raises(BuildException) as caught:
        Template.build(tpl, f"nouser-{uuid.uuid4().hex[:6]}", **target.params)
    assert str(caught.value) == (
        "failed to run command 'whoami': command failed: unauthenticated: "
        "invalid username: 'root123'"
    )
