"""Shared fixtures."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    MINIMAL,
    Backend,
    free_port,
    remove_backend_images,
    serving_backend,
    write_tree,
)

# A suite started with SIGINT ignored (a background job of a shell without job control) passes
# that on to every child it starts, and the tests that interrupt a child would wait for nothing:
# children of a process that handles SIGINT start with the default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project with a specs folder and no pyproject."""
    (tmp_path / "template_specs").mkdir()
    return tmp_path


@pytest.fixture
def minimal_project(project: Path) -> Path:
    """A project with one valid template named `app`."""
    return write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})


@pytest.fixture
def backend_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project whose `local` target is a backend of its own (started by the command that
    needs it, on a free port, data under the project); stopped and its images removed after."""
    from boxsmith._internal.backend.control import stop
    from boxsmith._internal.backend.datadir import data_dir

    monkeypatch.setenv("BOXSMITH_BACKEND_PORT", str(free_port()))
    monkeypatch.delenv("BOXSMITH_BACKEND_DIR", raising=False)
    yield tmp_path
    stop(data_dir(tmp_path))
    remove_backend_images(data_dir(tmp_path))


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A backend process serving the module, the e2b SDK's environment pointed at it
    (`serving_backend`)."""
    with serving_backend(tmp_path_factory.mktemp("backend")) as server:
        yield server


_SESSION_ENV = (
    "BOXSMITH_TESTS_SESSION"  # read by no boxsmith code: it marks this session's processes
)


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole session, no container, template image or backend process of its tests is
    left (asserted).

    Other test sessions may share the machine and the Docker engine, so only what is this
    session's counts, and only when it is new since the session started:

    - containers labelled `dev.boxsmith=1` whose project label (`dev.boxsmith.project`) is the
      id of a project folder under this session's temporary folder, or whose backend label
      (`dev.boxsmith.backend`) is the id of a backend data folder there;
    - template images: the backends' `boxsmith-local/*` (by the same backend label) and the
      local builds `boxsmith/<project id>/<name>:*` of a project folder there (by tag or project
      label: also one a rebuild untagged; by template name only an image that names no project
      or backend, since another project's is its own), created during the session. Caches
      that tests keep on purpose and share are not leaks: the parity bases
      `boxsmith/parity:*`, the base images and their stand-ins (`images ensure`), and anything
      that was there before the session;
    - `boxsmith backend serve` processes that carry this session's marker in their environment
      (every process the tests start inherits it, detached backends too).
    """
    os.environ[_SESSION_ENV] = uuid.uuid4().hex
    started = time.time()
    before = _docker_state()
    yield
    base = tmp_path_factory.getbasetemp()
    projects, backends, names = _session_folders(base)
    after = _docker_state()
    leaks = [
        f"container {c.short_id} {c.name} ({c.attrs['Config'].get('Image')}): {c.labels}"
        for c in after[0]
        if c.id not in {b.id for b in before[0]}
        and (
            c.labels.get("dev.boxsmith.project") in projects
            or c.labels.get("dev.boxsmith.backend") in backends
        )
    ]
    old_images = {i.id for i in before[1]}
    for image in after[1]:
        if image.id in old_images or _created(image) < started - 1:
            continue
        repos = [tag.rsplit(":", 1)[0].split("/") for tag in image.tags]
        labels = image.labels or {}
        owner = labels.get("dev.boxsmith.project") or labels.get("dev.boxsmith.backend")
        mine = (
            labels.get("dev.boxsmith.backend") in backends
            or labels.get("dev.boxsmith.project") in projects
            or any(len(r) == 3 and r[0] == "boxsmith" and r[1] in projects for r in repos)
            # by name only what names no owner: another project's image is that project's
            or (
                owner is None
                and (
                    labels.get("dev.boxsmith.template") in names
                    or any(len(r) == 3 and r[0] == "boxsmith" and r[2] in names for r in repos)
                )
            )
        )
        if mine:
            leaks.append(f"image {image.short_id} {image.tags}")
    leaks += [f"backend process {pid}: {cmd}" for pid, cmd in _session_backends()]
    assert leaks == [], "the tests left these behind:\n" + "\n".join(leaks)


def _docker_state() -> tuple[list[Any], list[Any]]:
    """(containers labelled dev.boxsmith=1, images); nothing without an engine."""
    import docker
    import docker.errors
    import requests

    if not _engine_socket_answers():
        return [], []
    try:
        client = docker.from_env(version="1.41")  # no version request: the engine may be absent
    except docker.errors.DockerException:
        return [], []
    try:
        containers = client.containers.list(
            all=True, filters={"label": "dev.boxsmith=1"}, ignore_removed=True
        )
        return containers, client.images.list()
    except (docker.errors.DockerException, requests.RequestException):
        return [], []
    finally:
        client.close()  # also without an engine, so no socket is left for a ResourceWarning


def _engine_socket_answers() -> bool:
    """Whether the engine's unix socket takes a connection. Asked first because the docker
    SDK leaves its socket open when that connect fails, which `-W error` turns into an error
    of whichever test runs next."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a TCP engine: the SDK's own errors say it
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    return True


def _created(image: Any) -> float:
    from datetime import datetime

    raw = str(image.attrs.get("Created", ""))[:26].rstrip("Z")
    try:
        return datetime.fromisoformat(raw + "+00:00").timestamp()
    except ValueError:
        return 0.0


def _session_folders(base: Path) -> tuple[set[str], set[str], set[str]]:
    """Project ids, backend ids and template names of the folders under `base`."""
    import re

    from boxsmith._internal.backend.datadir import backend_id
    from boxsmith.config import project_id

    projects: set[str] = set()
    backends: set[str] = set()
    names: set[str] = set()
    name_line = re.compile(r"^name:\s*['\"]?([a-z0-9_-]+)", re.MULTILINE)
    for folder, dirs, files in os.walk(base):  # not into symlinks; unreadable folders skipped
        here = Path(folder)
        if "template_specs" in dirs or ".boxsmith" in dirs:
            projects.add(project_id(here))
        if "api_key" in files:
            backends.add(backend_id(here))
        if here.name == "template_specs":
            for spec in files:
                try:
                    text = (here / spec).read_text(errors="replace")
                except OSError:
                    continue
                names.update(name_line.findall(text))
    return projects, backends, names


def _session_backends() -> list[tuple[int, str]]:
    """`boxsmith backend serve` processes (not zombies) started by this session's tests."""
    marker = f"{_SESSION_ENV}={os.environ[_SESSION_ENV]}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"backend" not in cmd or b"serve" not in cmd:
                continue
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append((int(proc.name), b" ".join(cmd).decode(errors="replace")))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found
