"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import MINIMAL, write_tree


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project with a specs folder and no pyproject."""
    (tmp_path / "template_specs").mkdir()
    return tmp_path


@pytest.fixture
def minimal_project(project: Path) -> Path:
    """A project with one valid template named `app`."""
    return write_tree(project, {"template_specs/app.yaml": MINIMAL.format(name="app")})
