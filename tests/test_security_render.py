"""Issue 10, section 5: no command destroys what it does not own.

Every case is a real CLI run over a temporary project (a real process for the reported
reproduction, the in-process entry point for the rest), asserting the exit code, the message,
and that every file outside boxsmith's own is still there, byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxsmith._internal.render.outputs import claim
from boxsmith.errors import UsageError
from tests.helpers import MINIMAL, cli, snapshot, write_tree

ENV_GENERATED = "BOXSMITH_GENERATED_DIR"


def _project(root: Path) -> Path:
    """A project that looks like a real one: specs, code, tests, a README and a git repo."""
    write_tree(
        root,
        {
            "template_specs/app.yaml": MINIMAL.format(name="app"),
            "src/pkg/__init__.py": "VALUE = 1\n",
            "tests/test_pkg.py": "def test_value():\n    assert True\n",
            "README.md": "# a project\n",
        },
    )
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        check=True,
    )
    return root


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of the project except boxsmith's own (generated/ and the .boxsmith stamp)."""
    return {
        rel: data
        for rel, data in snapshot(root).items()
        if not rel.startswith(("generated/", ".boxsmith/"))
    }


@contextlib.contextmanager
def edited_index(root: Path) -> Iterator[dict[str, Any]]:
    """generated/index.json as data, written back (as boxsmith writes it) after the block."""
    index = root / "generated/index.json"
    data = json.loads(index.read_text())
    yield data
    index.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@pytest.fixture
def real_project(tmp_path: Path) -> Path:
    return _project(tmp_path / "proj")


def _boxsmith(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`boxsmith -C root args...` as a real process."""
    env = {k: v for k, v in os.environ.items() if k != ENV_GENERATED}
    return subprocess.run(
        [sys.executable, "-m", "boxsmith", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_generated_dot_is_refused_and_the_project_is_intact(real_project: Path) -> None:
    """The report: `boxsmith --generated . render` deleted template_specs/, src/, tests/ and
    .git/ with exit 0."""
    before = _tree(real_project)
    for command in ("render", "check"):
        run = _boxsmith(real_project, "--generated", ".", command)
        assert run.returncode == 2, run.stderr
        assert "error: the generated folder ./ is the project root; boxsmith will not write" in (
            run.stderr
        )
        assert "fix: point --generated" in run.stderr
        assert "Traceback" not in run.stderr
        assert run.stdout == ""
    assert _tree(real_project) == before
    assert not (real_project / "app").exists()


@pytest.mark.parametrize(
    ("generated", "reason"),
    [
        ("src", "generated folder src/ is not empty and has no index.json"),
        ("template_specs", "generated folder template_specs/ holds the specs folder"),
        ("..", "is a folder above the project"),
        ("link-to-root", "generated folder link-to-root/ is the project root"),
        ("vendor", "generated folder vendor/ holds a git repository (.git)"),
        ("README.md", "generated folder README.md/ is not a folder"),
    ],
)
def test_a_generated_folder_boxsmith_does_not_own_is_refused(
    real_project: Path, generated: str, reason: str
) -> None:
    (real_project / "link-to-root").symlink_to(".")
    write_tree(
        real_project,
        {
            "vendor/.git/HEAD": "ref: refs/heads/main\n",
            "vendor/index.json": '{"schema": 1, "templates": {}}\n',
        },
    )
    before = _tree(real_project)
    for command in ("render", "check", "lint"):
        run = cli(real_project, "--generated", generated, command)
        assert run.code == 2, (command, run.err)
        assert reason in run.err
        assert "fix: " in run.err
        assert "Traceback" not in run.err
    assert _tree(real_project) == before


def test_the_file_system_root_is_refused(real_project: Path) -> None:
    """Asked of `claim` itself, never of a real render: if the guard ever regressed, a render
    into / is not something a test may try."""
    with pytest.raises(UsageError, match="generated folder / is a folder above the project"):
        claim(
            Path("/"),
            project=real_project,
            specs=real_project / "template_specs",
            index="index.json",
            shown="/",
        )


def test_the_home_folder_is_refused(
    real_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    run = cli(real_project, "--generated", str(home), "render")
    assert run.code == 2
    assert "is the home folder or a folder above it" in run.err
    assert list(home.iterdir()) == []


def test_a_dedicated_folder_outside_the_project_is_allowed(
    real_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = cli(real_project, "--generated", str(out), "render")
    assert run.code == 0, run.err
    assert (out / "app/1.0.0/e2b.toml").is_file()
    assert cli(real_project, "--generated", str(out), "check").code == 0

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/notes.txt").write_text("mine\n")
    busy = cli(real_project, "--generated", str(tmp_path / "busy"), "render")
    assert busy.code == 2
    assert "is not empty and has no index.json" in busy.err
    assert (tmp_path / "busy/notes.txt").read_text() == "mine\n"


def test_an_empty_folder_or_one_with_only_gitkeep_is_fine(real_project: Path) -> None:
    (real_project / "generated").mkdir()
    (real_project / "generated/.gitkeep").write_text("")
    assert cli(real_project, "render").code == 0
    assert cli(real_project, "check").code == 0
    assert (real_project / "generated/.gitkeep").is_file()


def test_only_recorded_files_are_deleted_and_foreign_ones_are_left(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    write_tree(
        real_project,
        {
            "generated/README.md": "what this folder is\n",
            "generated/app/1.0.0/notes.md": "my notes\n",
            "generated/other/2.0.0/e2b.toml": "hand made\n",
        },
    )
    spec = real_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace('"1.0.0"', '"1.1.0"'))
    before = _tree(real_project)
    run = cli(real_project, "render")
    assert run.code == 0, run.err
    # the stale version's recorded files go (the normal case, as before) ...
    assert "delete    generated/app/1.0.0/e2b.toml" in run.out
    assert "delete    generated/app/1.0.0/e2b.Dockerfile" in run.out
    assert not (real_project / "generated/app/1.0.0/e2b.toml").exists()
    # ... the files boxsmith never wrote stay, reported
    for rel in ("app/1.0.0/notes.md", "other/2.0.0/e2b.toml"):
        assert f"foreign   generated/{rel}\n" in run.out
        assert f"warning: generated/{rel}: not written by boxsmith" in run.err
    assert "README.md" not in run.out + run.err  # beside the template folders: not output
    assert (real_project / "generated/README.md").read_text() == "what this folder is\n"
    assert (real_project / "generated/app/1.0.0/notes.md").read_text() == "my notes\n"
    assert (real_project / "generated/other/2.0.0/e2b.toml").read_text() == "hand made\n"
    assert _tree(real_project) == before

    check = cli(real_project, "check")
    assert check.code == 1
    assert "generated/app/1.0.0/notes.md was not written by boxsmith" in check.err
    assert "README.md" not in check.err
    assert "remove it by hand" in check.err


def test_docs_beside_the_templates_and_desktop_litter_are_no_drift(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    litter = {
        "generated/README.md": "what this folder is\n",
        "generated/.gitattributes": "* linguist-generated\n",
        "generated/.DS_Store": "finder\n",
        "generated/app/.DS_Store": "finder\n",
        "generated/app/1.0.0/.gitkeep": "",
        "generated/app/1.0.0/Thumbs.db": "explorer\n",
    }
    write_tree(real_project, litter)

    check = cli(real_project, "check")
    render = cli(real_project, "render")

    assert check.code == 0, check.err
    assert render.code == 0, render.err
    assert "foreign" not in render.out
    assert all((real_project / rel).read_text() == text for rel, text in litter.items())


def test_a_forged_index_cannot_reach_outside_the_generated_folder(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    with edited_index(real_project) as data:
        entry = data["templates"]["app"]["1.0.0"]
        data["templates"][".."] = {"..": {**entry, "files": ["src/pkg/__init__.py", ".git/HEAD"]}}
        data["templates"]["app"]["0.9.0"] = {**entry, "files": ["../../../README.md"]}
    before = _tree(real_project)
    run = cli(real_project, "render")
    assert run.code == 0, run.err
    assert "delete" not in run.out
    assert _tree(real_project) == before


def test_no_write_or_delete_through_a_linked_folder(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    victim = real_project / "victim"
    write_tree(victim, {"1.0.0/e2b.toml": "someone's\n", "1.0.0/e2b.Dockerfile": "FROM x\n"})
    with edited_index(real_project) as data:
        data["templates"]["old"] = {"1.0.0": data["templates"]["app"]["1.0.0"]}
    (real_project / "generated/old").symlink_to(victim)  # a recorded stale version, now a link
    before = _tree(real_project)
    run = cli(real_project, "render")
    assert run.code == 0, run.err
    assert "delete" not in run.out
    assert _tree(real_project) == before

    shutil.rmtree(real_project / "generated/app")
    (real_project / "generated/app").symlink_to(victim)  # the folder render must write into
    refused = cli(real_project, "render")
    assert refused.code == 2
    assert "generated/app is a symbolic link" in refused.err
    assert "fix: replace generated/app with a real folder" in refused.err
    assert _tree(real_project) == before


def test_no_folder_is_made_where_a_linked_folder_leads(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    elsewhere = real_project / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(real_project / "generated/app")
    (real_project / "generated/app").symlink_to(elsewhere)

    refused = cli(real_project, "render")

    assert refused.code == 2
    assert "generated/app is a symbolic link" in refused.err
    assert list(elsewhere.iterdir()) == []


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[str]:
    """Make `path` refuse writes for this user, root included; yields the error text expected.

    As root, permission bits do not stop writes, so the folder gets the immutable flag
    (chattr +i, which root obeys); as another user (CI), plain mode bits do."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        assert chattr, "chattr (e2fsprogs) is needed to make a folder unwritable for root"
        subprocess.run([chattr, "+i", str(path)], check=True)
        try:
            yield "Operation not permitted"
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            path.chmod(mode)


def test_an_unwritable_generated_folder_is_a_clear_exit_3(real_project: Path) -> None:
    generated = real_project / "generated"
    generated.mkdir()
    with unwritable(generated) as problem:
        run = cli(real_project, "render")
    assert run.code == 3, run.err
    assert (
        "error: cannot write generated/app/1.0.0/e2b.Dockerfile: permission denied on "
        f"generated/app ({problem})"
    ) in run.err
    assert "fix: make generated/app writable" in run.err
    assert "internal error" not in run.err
    assert "Traceback" not in run.err


def test_an_unwritable_version_folder_is_a_clear_exit_3(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    spec = real_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text() + "start_cmd: serve\n")
    folder = real_project / "generated/app/1.0.0"
    before = snapshot(folder)
    with unwritable(folder) as problem:
        run = cli(real_project, "render")
        check = cli(real_project, "check")  # reading is fine: drift, not a crash
    assert run.code == 3, run.err
    assert (
        f"error: cannot write generated/app/1.0.0/e2b.Dockerfile: permission denied on "
        f"generated/app/1.0.0 ({problem})"
    ) in run.err
    assert "fix: make generated/app/1.0.0 writable for this user" in run.err
    assert "internal error" not in run.err
    assert snapshot(folder) == before
    assert check.code == 1


def test_a_stale_file_in_an_unwritable_folder_is_a_clear_exit_3(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    spec = real_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace('"1.0.0"', '"2.0.0"'))
    folder = real_project / "generated/app/1.0.0"
    with unwritable(folder) as problem:
        run = cli(real_project, "render")
    assert run.code == 3, run.err
    assert "error: cannot remove generated/app/1.0.0/e2b.Dockerfile: permission denied on" in (
        run.err
    )
    assert f"({problem})" in run.err
    assert "internal error" not in run.err


def _edit(path: Path, extra: str = "RUN echo by hand\n") -> None:
    path.write_text(path.read_text() + extra)


def test_render_says_it_replaces_a_hand_edit_and_dry_run_shows_it(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    dockerfile = real_project / "generated/app/1.0.0/e2b.Dockerfile"
    _edit(dockerfile)

    check = cli(real_project, "check")
    assert check.code == 1
    assert "generated/app/1.0.0/e2b.Dockerfile was edited by hand" in check.err
    data = json.loads(cli(real_project, "check", "--json").out)
    assert [(d["path"], d["hand_edit"]) for d in data["drift"]] == [
        ("generated/app/1.0.0/e2b.Dockerfile", True)
    ]

    dry = cli(real_project, "render", "--dry-run")
    assert dry.code == 0
    assert "would update    generated/app/1.0.0/e2b.Dockerfile (replaces a hand edit)\n" in dry.out
    assert "-RUN echo by hand" in dry.out
    assert "warning: generated/app/1.0.0/e2b.Dockerfile: would replace a hand edit" in dry.err
    assert "RUN echo by hand" in dockerfile.read_text()

    run = cli(real_project, "render")
    assert run.code == 0
    assert "update    generated/app/1.0.0/e2b.Dockerfile (replaces a hand edit)\n" in run.out
    assert "warning: generated/app/1.0.0/e2b.Dockerfile: replaces a hand edit" in run.err
    assert "RUN echo by hand" not in dockerfile.read_text()
    again = cli(real_project, "render")
    assert "hand edit" not in again.out + again.err


def test_a_hand_edit_is_named_when_the_spec_changed_too(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    spec = real_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text() + "start_cmd: serve\n")
    plain = cli(real_project, "render", "--dry-run")
    assert "hand edit" not in plain.out + plain.err  # a spec change alone is no hand edit
    _edit(real_project / "generated/app/1.0.0/e2b.toml", "# mine\n")
    edited = cli(real_project, "render")
    assert "update    generated/app/1.0.0/e2b.toml (replaces a hand edit)\n" in edited.out
    assert "update    generated/app/1.0.0/e2b.Dockerfile\n" in edited.out  # only the spec moved

    spec.write_text(spec.read_text().replace('"1.0.0"', '"1.1.0"'))
    _edit(real_project / "generated/app/1.0.0/e2b.Dockerfile")
    bumped = cli(real_project, "render")
    assert "delete    generated/app/1.0.0/e2b.Dockerfile (deletes a hand edit)\n" in bumped.out
    assert "delete    generated/app/1.0.0/e2b.toml\n" in bumped.out


def test_publishing_is_not_a_hand_edit(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    with edited_index(real_project) as data:
        entry = data["templates"]["app"]["1.0.0"]
        record: dict[str, Any] = {"target": "local", "template_id": "tpl-1", "build_id": "b-1"}
        record.update(tags=["1.0.0"], published_at="2026-11-28T00:00:00Z")
        entry["publishes"].append({**record, "content_hash": entry["content_hash"]})
    stamped = cli(real_project, "render")  # writes the ids into e2b.toml
    assert "update    generated/app/1.0.0/e2b.toml\n" in stamped.out
    assert "hand edit" not in stamped.out + stamped.err
    assert 'template_id = "tpl-1"' in (real_project / "generated/app/1.0.0/e2b.toml").read_text()


def test_an_index_from_before_per_file_hashes_still_works(real_project: Path) -> None:
    assert cli(real_project, "render").code == 0
    with edited_index(real_project) as data:
        assert set(data["templates"]["app"]["1.0.0"]["hashes"]) == {"e2b.Dockerfile", "e2b.toml"}
        del data["templates"]["app"]["1.0.0"]["hashes"]
    index = real_project / "generated/index.json"
    legacy = index.read_bytes()

    assert cli(real_project, "check").code == 0
    run = cli(real_project, "render")
    assert run.code == 0
    assert index.read_bytes() == legacy  # unchanged content: the index stays as it was

    _edit(real_project / "generated/app/1.0.0/e2b.Dockerfile")
    edited = cli(real_project, "render")
    assert "update    generated/app/1.0.0/e2b.Dockerfile (replaces a hand edit)\n" in edited.out
    assert index.read_bytes() == legacy
