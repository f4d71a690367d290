"""One project's images are its own: two projects on one engine, each with a template of the same
name and version, end to end (real engine, real builds, the CLI in-process). Marked `docker`.

Each project builds `boxsmith/<project id>/<name>:<version>`, labelled with its project; `smoke
--local` runs only this project's build of the version's current rendered files and refuses any
other image (exit 2, naming `boxsmith build`); a rebuild removes the image it replaced.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from boxsmith._internal.docker.client import PROJECT_LABEL
from boxsmith.config import load_settings
from tests.helpers import Run, cli, write_tree

pytestmark = pytest.mark.docker

SPEC = """\
name: {name}
version: "1.0.0"
description: whose image is it
base_image: debian:bookworm-slim
steps:
  - run: echo {owner} > /opt/owner
smoke:
  - name: its own build
    file: /opt/owner
    contains: ^{owner}$
"""


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.images.get("debian:bookworm-slim")  # the base every spec here uses
    yield client
    client.close()


class Project:
    """A project folder with one template `name` whose build writes `owner` to /opt/owner."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.id = load_settings(root).project_id

    @property
    def image(self) -> str:
        return f"boxsmith/{self.id}/{self.name}:1.0.0"

    def write(self, owner: str) -> None:
        """The spec with `owner`, rendered."""
        write_tree(
            self.root,
            {f"template_specs/{self.name}.yaml": SPEC.format(name=self.name, owner=owner)},
        )
        rendered = self.cli("render")
        assert rendered.code == 0, rendered.err

    def build(self) -> dict[str, str]:
        run = self.cli("build", "--json")
        assert run.code == 0, run.err
        (entry,) = json.loads(run.out)["builds"]
        return entry

    def cli(self, *args: str) -> Run:
        return cli(self.root, *args)

    def images(self, client: docker.DockerClient) -> list[str]:
        """Ids of every image of this project, tagged or not."""
        own = {"label": f"{PROJECT_LABEL}={self.id}"}
        return sorted(str(i.id) for i in client.images.list(filters=own))


@pytest.fixture
def projects(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[list[Project]]:
    """Two projects with a template of the same name; their images removed after."""
    name = f"same-{uuid.uuid4().hex[:8]}"
    made = []
    for folder in ("one", "two"):
        (tmp_path / folder / "template_specs").mkdir(parents=True)
        made.append(Project(tmp_path / folder, name))
    yield made
    for project in made:
        for image_id in project.images(docker_client):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(image_id, force=True)


def test_two_projects_keep_their_own_images_and_smoke_their_own_build(
    projects: list[Project], docker_client: docker.DockerClient
) -> None:
    one, two = projects
    assert one.id != two.id
    one.write("one")
    two.write("two")
    built = [one.build(), two.build()]
    assert [b["status"] for b in built] == ["built", "built"]

    # Each smoke runs its own build: the check reads the file only that build wrote.
    for project in projects:
        smoke = project.cli("smoke", "--local", "--json")
        assert smoke.code == 0, smoke.out + smoke.err
        (suite,) = json.loads(smoke.out)["suites"]
        assert suite["status"] == "passed"
        assert suite["target"].endswith(f"({project.image})")

    assert [b["image"] for b in built] == [one.image, two.image]
    for project, entry in zip(projects, built, strict=True):
        image = docker_client.images.get(project.image)
        assert image.id == entry["image_id"]
        assert image.labels[PROJECT_LABEL] == project.id
        assert image.labels["dev.boxsmith.version"] == "1.0.0"
    assert built[0]["image_id"] != built[1]["image_id"]

    # The second project's build did not make the first one's stale: still cached.
    assert one.build()["status"] == "cached"


def test_smoke_refuses_an_image_that_is_not_this_projects_build_of_its_files(
    projects: list[Project], docker_client: docker.DockerClient
) -> None:
    one, two = projects
    one.write("one")
    two.write("two")
    one.build()
    two.build()

    # The files changed after the build (rendered again, not built): refused, not tested.
    one.write("one-changed")
    stale = one.cli("smoke", "--local")
    assert stale.code == 2, stale.err
    assert (
        f"{one.name}:1.0.0: image {one.image}: out of date: generated/{one.name}/1.0.0 changed "
        "since it was built" in stale.err
    )
    assert f"fix: run `boxsmith build {one.name}`, then smoke again" in stale.err
    assert stale.out == ""  # refused before any container ran
    assert not (one.root / ".boxsmith/reports").exists()

    rebuilt = one.build()
    assert rebuilt["status"] == "built"
    fresh = one.cli("smoke", "--local")
    assert fresh.code == 0, fresh.err

    # Another project's build under this project's tag (as one shared tag made it before):
    # refused by its project label, even though its files would have passed the key check.
    docker_client.images.get(two.image).tag(f"boxsmith/{one.id}/{one.name}", "1.0.0")
    foreign = one.cli("smoke", "--local")
    assert foreign.code == 2, foreign.err
    assert f"image {one.image}: built for another project ({two.id}), not this one" in (foreign.err)


def test_a_rebuild_removes_the_image_it_replaced_unless_a_container_uses_it(
    projects: list[Project], docker_client: docker.DockerClient
) -> None:
    one, _two = projects
    one.write("first")
    first = one.build()["image_id"]

    one.write("second")
    second = one.build()["image_id"]
    assert second != first
    with pytest.raises(docker.errors.ImageNotFound):  # not left behind untagged
        docker_client.images.get(first)
    assert one.images(docker_client) == [second]

    # A container of the image (even a stopped one) keeps it: rmi would break that container.
    container = docker_client.containers.create(second, ["true"], labels={"dev.boxsmith": "1"})
    try:
        one.write("third")
        third = one.build()["image_id"]
        assert sorted(one.images(docker_client)) == sorted([second, third])
        assert docker_client.images.get(second).tags == []
    finally:
        container.remove(force=True)
