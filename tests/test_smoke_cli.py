"""A first end-to-end pass over the CLI in-process."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli


def test_render_then_check_is_clean(minimal_project: Path) -> None:
    first = cli(minimal_project, "render")
    assert first.code == 0, first.err
    assert "create    generated/app/1.0.0/e2b.toml" in first.out
    check = cli(minimal_project, "check")
    assert check.code == 0, check.out + check.err
