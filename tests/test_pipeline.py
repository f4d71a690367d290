"""render and check over a project: writes, index, immutability, drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import boxsmith
from boxsmith._internal.render import stamp
from boxsmith._internal.render.folder import RenderedFile, content_hash
from boxsmith._internal.render.index import Index
from tests.helpers import MINIMAL, cli, snapshot, write_tree


def index(root: Path) -> Index:
    return Index.model_validate_json((root / "generated/index.json").read_bytes())


def publish(root: Path, name: str, version: str, template_id: str = "tpl-1") -> None:
    """Record a publish in the index the way `boxsmith publish` will."""
    path = root / "generated/index.json"
    data = json.loads(path.read_text())
    entry = data["templates"][name][version]
    entry["publishes"].append(
        {
            "target": "local",
            "template_id": template_id,
            "build_id": "build-1",
            "tags": [version],
            "published_at": "2026-11-28T00:00:00Z",
            "content_hash": entry["content_hash"],
        }
    )
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def test_reports_create_identical_update_delete(minimal_project: Path) -> None:
    assert "create " in cli(minimal_project, "render").out
    again = cli(minimal_project, "render")
    assert again.code == 0
    assert "create" not in again.out
    assert "identical generated/app/1.0.0/e2b.toml" in again.out
    spec = minimal_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text() + "start_cmd: serve\n")
    update = cli(minimal_project, "render")
    assert "update    generated/app/1.0.0/e2b.toml" in update.out
    assert "identical generated/app/1.0.0/e2b.Dockerfile" not in update.out  # header hash moved
    (minimal_project / "generated/app/1.0.0/stray.txt").write_text("x")
    stray = cli(minimal_project, "render")  # not boxsmith's: reported, never deleted
    assert "foreign   generated/app/1.0.0/stray.txt" in stray.out
    assert "warning: generated/app/1.0.0/stray.txt: not written by boxsmith" in stray.err
    assert (minimal_project / "generated/app/1.0.0/stray.txt").read_text() == "x"


def test_dry_run_writes_nothing_and_shows_diff(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    spec = minimal_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace("test template", "changed"))
    before = snapshot(minimal_project / "generated")
    run = cli(minimal_project, "render", "--dry-run")
    assert run.code == 0
    assert "would update    generated/app/1.0.0/e2b.toml" in run.out
    assert "--- a/generated/app/1.0.0/e2b.Dockerfile" in run.out
    assert snapshot(minimal_project / "generated") == before


def test_version_bump_replaces_unpublished_folder(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    spec = minimal_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace('"1.0.0"', '"1.1.0"'))
    run = cli(minimal_project, "render")
    assert "delete    generated/app/1.0.0/e2b.toml" in run.out
    assert not (minimal_project / "generated/app/1.0.0").exists()
    assert list(index(minimal_project).templates["app"]) == ["1.1.0"]


def test_published_version_is_immutable(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    publish(minimal_project, "app", "1.0.0", template_id="tpl-abc")
    stamped = cli(minimal_project, "render")
    assert stamped.code == 0
    toml = (minimal_project / "generated/app/1.0.0/e2b.toml").read_text()
    assert 'template_id = "tpl-abc"' in toml
    assert 'build_id = "build-1"' in toml
    assert cli(minimal_project, "check").code == 0

    spec = minimal_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text() + "start_cmd: serve\n")
    before = snapshot(minimal_project / "generated")
    refused = cli(minimal_project, "render")
    assert refused.code == 2
    assert "template_specs/app.yaml:2:10: error: version: app:1.0.0 is published" in refused.err
    assert "fix: bump version" in refused.err
    assert snapshot(minimal_project / "generated") == before


def test_published_versions_are_kept_after_a_bump(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    publish(minimal_project, "app", "1.0.0")
    spec = minimal_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace('"1.0.0"', '"1.0.1"') + "start_cmd: serve\n")
    run = cli(minimal_project, "render")
    assert run.code == 0
    assert "delete" not in run.out
    assert (minimal_project / "generated/app/1.0.0/e2b.toml").is_file()
    assert set(index(minimal_project).templates["app"]) == {"1.0.0", "1.0.1"}
    assert cli(minimal_project, "check").code == 0
    listed = json.loads(cli(minimal_project, "list", "--json").out)["templates"]
    assert [(r["version"], r["status"]) for r in listed] == [
        ("1.0.0", "published (local)"), ("1.0.1", "rendered"),
    ]  # fmt: skip


def test_kept_published_versions_are_verified_against_their_recorded_hash(
    minimal_project: Path,
) -> None:
    cli(minimal_project, "render")
    publish(minimal_project, "app", "1.0.0")
    assert cli(minimal_project, "render").code == 0  # stamps the ids into 1.0.0's e2b.toml
    assert 'template_id = "tpl-1"' in (minimal_project / "generated/app/1.0.0/e2b.toml").read_text()
    spec = minimal_project / "template_specs/app.yaml"
    spec.write_text(spec.read_text().replace('"1.0.0"', '"1.0.1"'))
    assert cli(minimal_project, "render").code == 0
    assert cli(minimal_project, "check").code == 0  # kept 1.0.0, stamped, still matches

    dockerfile = minimal_project / "generated/app/1.0.0/e2b.Dockerfile"
    original = dockerfile.read_bytes()
    dockerfile.write_bytes(original + b"RUN echo sneaked in\n")
    edited = cli(minimal_project, "check")
    assert edited.code == 1
    assert "generated/app/1.0.0: published app:1.0.0 was changed on disk" in edited.err
    assert "fix: a published version is immutable: restore it from git" in edited.err
    assert "warning: generated/app/1.0.0" in cli(minimal_project, "render").err
    dockerfile.write_bytes(original)
    assert cli(minimal_project, "check").code == 0

    dockerfile.unlink()
    gone = cli(minimal_project, "check", "--json")
    assert gone.code == 1
    (problem,) = json.loads(gone.out)["tampered"]
    assert problem["path"] == "generated/app/1.0.0"
    assert "missing: e2b.Dockerfile" in problem["problem"]


def test_filtered_render_touches_only_selected(project: Path) -> None:
    write_tree(
        project,
        {f"template_specs/{n}.yaml": MINIMAL.format(name=n) for n in ("one", "two")},
    )
    cli(project, "render")
    for n in ("one", "two"):
        spec = project / f"template_specs/{n}.yaml"
        spec.write_text(spec.read_text() + "start_cmd: serve\n")
    run = cli(project, "render", "one")
    assert "generated/two" not in run.out
    assert cli(project, "check", "one").code == 0
    assert cli(project, "check", "two").code == 1
    assert cli(project, "check").code == 1


def test_check_reports_drift_with_diff(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    dockerfile = minimal_project / "generated/app/1.0.0/e2b.Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER user", "USER root"))
    (minimal_project / "generated/app/1.0.0/e2b.toml").unlink()
    (minimal_project / "generated/orphan/0.1.0").mkdir(parents=True)
    (minimal_project / "generated/orphan/0.1.0/e2b.toml").write_text("x")
    run = cli(minimal_project, "check")
    assert run.code == 1
    assert "-USER root\n+USER user" in run.out
    assert "+++ b/generated/app/1.0.0/e2b.toml" in run.out
    assert "--- a/generated/orphan/0.1.0/e2b.toml" in run.out
    assert "generated/orphan/0.1.0/e2b.toml was not written by boxsmith" in run.err
    assert "generated/app/1.0.0/e2b.Dockerfile was edited by hand" in run.err
    assert "drift: 3 file(s)" in run.err
    assert dockerfile.read_text().endswith("USER root\n")  # check never writes


def test_check_annotates_under_github_actions(
    minimal_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli(minimal_project, "render")
    dockerfile = minimal_project / "generated/app/1.0.0/e2b.Dockerfile"
    lines = dockerfile.read_text().splitlines(keepends=True)
    lines[4] = "RUN echo tampered\n"
    dockerfile.write_text("".join(lines))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = cli(minimal_project, "check")
    assert run.code == 1
    assert (
        "::error file=generated/app/1.0.0/e2b.Dockerfile,line=5,"
        "title=boxsmith check%3A generated output drift::" in run.out
    )
    assert "| `generated/app/1.0.0/e2b.Dockerfile` | update |" in summary.read_text()


def test_check_json(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    (minimal_project / "generated/app/1.0.0/e2b.toml").write_text("tampered\n")
    run = cli(minimal_project, "check", "--json")
    assert run.code == 1
    data = json.loads(run.out)
    assert [d["path"] for d in data["drift"]] == ["generated/app/1.0.0/e2b.toml"]
    assert data["drift"][0]["action"] == "update"


def test_corrupt_index_is_a_usage_error(minimal_project: Path) -> None:
    cli(minimal_project, "render")
    (minimal_project / "generated/index.json").write_text('{"templates": 3}')
    run = cli(minimal_project, "render")
    assert run.code == 2
    assert "generated/index.json is not a valid boxsmith index" in run.err
    assert "fix: restore it from git" in run.err


def test_unchanged_project_is_checked_from_the_stamp(minimal_project: Path) -> None:
    write_tree(
        minimal_project,
        {
            "template_specs/app.yaml": MINIMAL.format(name="app")
            + "files: [{src: conf, dest: /etc/app}]\n",
            "template_specs/conf/a.ini": "a=1\n",
        },
    )
    cli(minimal_project, "render")
    assert (minimal_project / ".boxsmith/verified.json").is_file()
    fast = cli(minimal_project, "check")
    assert fast.code == 0
    assert "nothing changed since the last check" in fast.err

    # a copied file changes: the stamp no longer holds, the full check finds the drift
    (minimal_project / "template_specs/conf/a.ini").write_text("a=2\n")
    assert cli(minimal_project, "check").code == 1
    cli(minimal_project, "render")
    # a file added to a copied folder
    (minimal_project / "template_specs/conf/b.ini").write_text("b=1\n")
    assert cli(minimal_project, "check").code == 1
    cli(minimal_project, "render")
    # generated/ edited by hand
    toml = minimal_project / "generated/app/1.0.0/e2b.toml"
    toml.write_text(toml.read_text() + "# edited\n")
    assert cli(minimal_project, "check").code == 1


def test_stamp_sees_a_file_in_an_empty_copied_folder_and_a_retargeted_link(
    minimal_project: Path,
) -> None:
    write_tree(
        minimal_project,
        {
            "template_specs/app.yaml": MINIMAL.format(name="app")
            + "files:\n  - {src: conf, dest: /etc/app}\n  - {src: current.ini, dest: /etc/c.ini}\n",
            "template_specs/conf/a.ini": "a=1\n",
            "template_specs/v1.ini": "v=1\n",
            "template_specs/v2.ini": "v=2\n",
        },
    )
    (minimal_project / "template_specs/conf/empty").mkdir()
    link = minimal_project / "template_specs/current.ini"
    link.symlink_to("v1.ini")
    assert cli(minimal_project, "render").code == 0
    assert "nothing changed" in cli(minimal_project, "check").err

    (minimal_project / "template_specs/conf/empty/new.ini").write_text("n=1\n")
    assert cli(minimal_project, "check").code == 1
    assert cli(minimal_project, "render").code == 0
    assert "nothing changed" in cli(minimal_project, "check").err

    link.unlink()
    link.symlink_to("v2.ini")
    drift = cli(minimal_project, "check")
    assert drift.code == 1
    assert "+v=2" in drift.out


def test_stamp_can_be_disabled(minimal_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli(minimal_project, "render")
    monkeypatch.setenv("BOXSMITH_NO_CACHE", "1")
    run = cli(minimal_project, "check")
    assert run.code == 0
    assert "nothing changed" not in run.err


def test_stamp_covers_all_of_boxsmiths_code_and_templates() -> None:
    """A change to any .py or .j2 of the package (an upgrade, an edit) makes the next check a
    full one: the stamp's digest reads every one of them, and only them."""
    package = Path(boxsmith.__file__).resolve().parent
    expected = {p for p in package.rglob("*") if p.suffix in (".py", ".j2") and p.is_file()}
    covered = {Path(p) for p in stamp.code_files()}
    assert covered == expected
    assert package / "__init__.py" in covered
    assert package / "_internal/render/templates/e2b.Dockerfile.j2" in covered


def test_header_wording_is_not_content() -> None:
    """Published versions survive a boxsmith upgrade that only rewords the generated headers."""
    body = b"FROM debian\nUSER user\n"
    old = RenderedFile("e2b.Dockerfile", b"# Generated by boxsmith v1\n" + body)
    new = RenderedFile("e2b.Dockerfile", b"# Generated by boxsmith v2\n# more\n" + body)
    assert content_hash((old,)) == content_hash((new,))
    changed = RenderedFile("e2b.Dockerfile", b"# Generated by boxsmith v1\nFROM debian\n")
    assert content_hash((old,)) != content_hash((changed,))


def test_a_filtered_check_sees_its_own_index_entry_drift(project: Path) -> None:
    write_tree(
        project,
        {f"template_specs/{n}.yaml": MINIMAL.format(name=n) for n in ("one", "two")},
    )
    assert cli(project, "render").code == 0
    index = project / "generated/index.json"
    data = json.loads(index.read_text())
    data["templates"]["one"]["1.0.0"]["content_hash"] = "sha256:" + "0" * 64
    index.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert cli(project, "check", "one").code == 1
    assert cli(project, "check", "two").code == 0  # another template's entry is not its business
