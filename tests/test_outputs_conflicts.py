"""render when a file stands where a folder must go, or a folder where a file must go.

Neither is boxsmith's (the index does not record it), so neither is removed: render stops with
a clear error and leaves both in place.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import MINIMAL, cli, write_tree


def test_a_file_where_a_template_folder_goes_is_a_clear_error(minimal_project: Path) -> None:
    assert cli(minimal_project, "render").code == 0
    write_tree(minimal_project, {"template_specs/two.yaml": MINIMAL.format(name="two")})
    (minimal_project / "generated/two").write_text("not boxsmith's\n")
    run = cli(minimal_project, "render")
    assert run.code == 2
    assert "generated/two is a file where a folder must be" in run.err
    assert "fix: remove generated/two" in run.err
    assert "Traceback" not in run.err
    assert (minimal_project / "generated/two").read_text() == "not boxsmith's\n"


def test_a_folder_where_a_file_goes_is_a_clear_error(minimal_project: Path) -> None:
    assert cli(minimal_project, "render").code == 0
    toml = minimal_project / "generated/app/1.0.0/e2b.toml"
    toml.unlink()
    (toml / "sub").mkdir(parents=True)
    (toml / "sub/leftover").write_text("x\n")
    run = cli(minimal_project, "render")
    assert run.code == 2
    assert "cannot write generated/app/1.0.0/e2b.toml: a folder is in its place" in run.err
    assert (toml / "sub/leftover").read_text() == "x\n"
    assert cli(minimal_project, "check").code == 1


def test_a_file_outside_the_selection_blocking_a_folder_is_a_clear_error(
    minimal_project: Path,
) -> None:
    assert cli(minimal_project, "render").code == 0
    write_tree(minimal_project, {"template_specs/two.yaml": MINIMAL.format(name="two")})
    (minimal_project / "generated/two").write_text("not boxsmith's\n")
    run = cli(minimal_project, "render", "two")  # a selection deletes only inside two/
    assert run.code == 2
    assert "generated/two is a file where a folder must be" in run.err
    assert "Traceback" not in run.err
    assert (minimal_project / "generated/two").read_text() == "not boxsmith's\n"
