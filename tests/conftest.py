"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    MINIMAL,
    Backend,
    free_port,
    remove_backend_images,
    serving_backend,
    write_tree,
)


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
    from boxsmith.backend.server import data_dir, stop

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
