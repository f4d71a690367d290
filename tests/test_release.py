"""`boxsmith release` end to end: the real engine, the local backend, the real SDK over HTTP.

Each test is a fresh project whose local target is a backend of its own (BOXSMITH_BACKEND_PORT
on a free port, data under the project), stopped and its images removed afterwards.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2b import Sandbox, Template

from boxsmith._internal.build.rendered import PROJECT_LABEL, TEMPLATE_LABEL
from boxsmith._internal.publish.targets import PublishTarget, connect
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index
from boxsmith.config import load_settings
from tests.helpers import cli, remove_backend_images, snapshot, write_tree

SPEC = """\
name: {name}
version: "{version}"
description: release test
base_image: debian:bookworm-slim
steps:
  - run: {step}
smoke:
  - name: marker
    command: cat /opt/v
    stdout: "^{expect}$"
"""


def _spec(name: str, version: str, marker: int, expect: int | None = None) -> dict[str, str]:
    text = SPEC.format(
        name=name,
        version=version,
        step=f"echo {marker} > /opt/v",
        expect=marker if expect is None else expect,
    )
    return {f"template_specs/{name}.yaml": text}


def remove_proof_builds(root: Path, *names: str) -> None:
    """Remove the project's proof builds of the templates `names` on the local engine, also the
    ones a later build of the same version left without a tag; never another project's."""
    import docker

    own = f"{PROJECT_LABEL}={load_settings(root).project_id}"
    client = docker.from_env()
    for name in names:
        for image in client.images.list(filters={"label": [own, f"{TEMPLATE_LABEL}={name}"]}):
            client.images.remove(image.id, force=True)


@pytest.fixture
def released(backend_project: Path) -> Iterator[Path]:
    """A project whose `local` target is a backend of its own; the proof builds removed after."""
    (backend_project / "template_specs").mkdir()
    yield backend_project
    remove_proof_builds(backend_project, "rel", "keep", "hand")


def _release(root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    run = cli(root, "release", "--json", *args)
    return run.code, json.loads(run.out), run.err


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report["templates"]}


def _stages(report: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["stages"]}


def _target(root: Path) -> PublishTarget:
    return connect(load_settings(root), "local", err=io.StringIO())


def _channel(target: PublishTarget, name: str) -> str:
    """What the `stable` channel of `name` boots: the marker its image carries."""
    sandbox = Sandbox.create(f"{name}:stable", timeout=60, **target.params)
    try:
        return str(sandbox.commands.run("cat /opt/v").stdout.strip())
    finally:
        sandbox.kill()


def _local(root: Path, name: str, version: str) -> list[PublishRecord]:
    """The `local` publish records of `name`:`version` in the index."""
    entry = load_index(root / "generated" / INDEX_FILE, INDEX_FILE).entry(name, version)
    assert entry is not None
    return entry.records("local")


def _verified(root: Path, name: str, version: str) -> list[str | None]:
    return [p.verified for p in _local(root, name, version)]


@pytest.mark.docker
def test_release_ships_what_changed_and_nothing_else(released: Path) -> None:
    write_tree(released, {**_spec("rel", "1.0.0", 1), **_spec("keep", "1.0.0", 7)})

    code, report, err = _release(released)
    assert code == 0, err
    rows = _rows(report)
    for name in ("rel", "keep"):
        assert rows[name]["change"] == "new"
        assert rows[name]["build"] == "built"
        assert rows[name]["smoke_container"] == "passed"
        assert rows[name]["publish"] == "published"
        assert rows[name]["smoke_sandbox"] == "passed"
        assert rows[name]["channel"] == "-> 1.0.0"
        (verified,) = _verified(released, name, "1.0.0")
        assert verified is not None
    toml = (released / "generated/rel/1.0.0/e2b.toml").read_text()
    assert "template_id = " in toml
    assert "build_id = " in toml
    target = _target(released)
    assert _channel(target, "rel") == "1"
    assert any(t.tag == "stable" for t in Template.get_tags("keep", **target.params))

    # Nothing changed: no render, no lint, no build, no container, no publish, no sandbox;
    # nothing written.
    before = snapshot(released / "generated")
    code, report, err = _release(released)
    assert code == 0, err
    assert {r["change"] for r in report["templates"]} == {"released"}
    stages = _stages(report)
    assert stages["render"] == "skipped"
    quiet = ("lint", "build", "smoke-container", "publish", "smoke-sandbox")
    assert [stages[s] for s in quiet] == ["skipped"] * 5
    assert "nothing to release: 2 template(s) already published and verified on local" in err
    assert snapshot(released / "generated") == before

    # A new version of one template: only it goes through, and the channel follows.
    write_tree(released, _spec("rel", "1.1.0", 2))
    code, report, err = _release(released)
    assert code == 0, err
    rows = _rows(report)
    assert (rows["rel"]["version"], rows["rel"]["change"]) == ("1.1.0", "new")
    assert rows["rel"]["channel"] == "-> 1.1.0"
    assert (rows["keep"]["change"], rows["keep"]["build"]) == ("released", "-")
    assert _channel(target, "rel") == "2"

    # A manual rollback stays: the next release does not move the channel back.
    assert cli(released, "rollback", "rel").code == 0
    code, report, _ = _release(released)
    assert code == 0
    assert {r["change"] for r in report["templates"]} == {"released"}
    assert _channel(target, "rel") == "1"
    assert Sandbox.list(**target.params).next_items() == []


@pytest.mark.docker
def test_a_failing_build_is_not_published(released: Path) -> None:
    write_tree(
        released,
        {
            "template_specs/rel.yaml": SPEC.format(
                name="rel", version="1.0.0", step="echo broken >&2; exit 7", expect=1
            )
        },
    )
    code, report, err = _release(released)
    assert code == 3
    rows = _rows(report)
    assert (rows["rel"]["build"], rows["rel"]["smoke_container"], rows["rel"]["publish"]) == (
        "failed",
        "-",
        "-",
    )
    assert rows["rel"]["smoke_sandbox"] == "-"
    stages = _stages(report)
    assert (stages["smoke-container"], stages["publish"]) == ("skipped", "skipped")
    assert "exit 7" in err or "returned a non-zero code: 7" in err
    index = load_index(released / "generated" / INDEX_FILE, INDEX_FILE)
    entry = index.entry("rel", "1.0.0")
    assert entry is not None
    assert entry.publishes == []

    # Without the proof build the target's own build fails, naming the step.
    code, report, err = _release(released, "--no-build")
    assert code == 3
    rows = _rows(report)
    assert (rows["rel"]["build"], rows["rel"]["publish"]) == ("left out", "failed")
    assert "build step" in err


@pytest.mark.docker
def test_a_reset_local_backend_gets_its_templates_again(released: Path) -> None:
    """Records of builds the local backend no longer has (its data deleted, or committed from
    another machine) do not count: the release publishes again and keeps only the live record."""
    from boxsmith._internal.backend.control import stop
    from boxsmith._internal.backend.datadir import data_dir

    write_tree(released, _spec("rel", "1.0.0", 1))
    code, _, err = _release(released)
    assert code == 0, err
    (first,) = _local(released, "rel", "1.0.0")

    data = data_dir(released)
    stop(data)
    remove_backend_images(data)
    shutil.rmtree(data)

    code, report, err = _release(released)
    assert code == 0, err
    row = _rows(report)["rel"]
    assert (row["change"], row["publish"], row["smoke_sandbox"]) == ("new", "published", "passed")
    assert "1 new again: the local backend no longer has their builds" in err
    assert "rel:1.0.0: recorded as published to local, but the local backend no longer" in err
    (record,) = _local(released, "rel", "1.0.0")
    assert record.build_id != first.build_id
    assert record.verified is not None
    toml = (released / "generated/rel/1.0.0/e2b.toml").read_text()
    assert f'build_id = "{record.build_id}"' in toml
    assert _channel(_target(released), "rel") == "1"

    code, report, err = _release(released)
    assert code == 0, err
    assert _rows(report)["rel"]["change"] == "released"


def test_ready_builds_missing_or_damaged_state_is_empty(tmp_path: Path) -> None:
    """A backend that never ran, or whose state file is damaged, cannot serve any build: its
    versions plan as new (publish again after `backend reset`), never as released."""
    from boxsmith._internal.backend.state_file import STATE_FILE, ready_builds

    assert ready_builds(tmp_path / "never-ran") == frozenset()
    (tmp_path / STATE_FILE).write_bytes(b"not a database")
    assert ready_builds(tmp_path) == frozenset()


def test_spec_errors_stop_the_release_before_anything_runs(project: Path) -> None:
    write_tree(project, {"template_specs/bad.yaml": "name: bad\nversion: 1\n"})
    code, report, err = _release(project)
    assert code == 2
    assert "template_specs/bad.yaml" in err
    stages = _stages(report)
    assert stages["render"] == "failed"
    after = ("check", "plan", "lint", "build", "smoke-container", "publish", "smoke-sandbox")
    assert {stages[s] for s in after} == {"not run"}
    assert not (project / "generated").exists()


def test_release_usage_errors(project: Path) -> None:
    zero = cli(project, "release", "--jobs", "0")
    assert zero.code == 2
    assert "--jobs must be at least 1, got 0" in zero.err
    no_builds = cli(project, "release", "--build-jobs", "0")
    assert no_builds.code == 2
    assert "--build-jobs must be at least 1, got 0" in no_builds.err
    with pytest.raises(SystemExit) as unknown:  # argparse: usage, the error and a fix, exit 2
        cli(project, "release", "--target", "mars")
    assert unknown.value.code == 2


def test_nothing_changed_on_e2b_needs_no_key_and_no_network(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified on E2B cloud per the index: the release ends before any engine or network."""
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    monkeypatch.setenv("E2B_DOMAIN", "e2b.invalid")  # anything that tried to connect would fail
    write_tree(project, {**_spec("rel", "1.0.0", 1), **_spec("keep", "1.0.0", 2)})
    assert cli(project, "render").code == 0
    path = project / "generated" / INDEX_FILE
    index = load_index(path, INDEX_FILE)
    for name in ("rel", "keep"):
        entry = index.entry(name, "1.0.0")
        assert entry is not None
        entry.publishes.append(
            PublishRecord.model_validate(
                {
                    "target": "e2b",
                    "template_id": f"tpl-{name}",
                    "build_id": f"build-{name}",
                    "tags": ["1.0.0"],
                    "published_at": "2026-11-28T00:00:00+00:00",
                    "content_hash": entry.content_hash,
                    "verified_at": "2026-11-28T00:01:00+00:00",
                }
            )
        )
    path.write_bytes(index.dumps())
    assert cli(project, "render").code == 0  # stamps the ids into e2b.toml

    summary = project / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, report, err = _release(project, "--target", "e2b")
    assert code == 0, err
    assert {r["change"] for r in report["templates"]} == {"released"}
    assert "nothing to release: 2 template(s) already published and verified on e2b" in err
    text = summary.read_text()
    assert "### boxsmith release to e2b: ok\n" in text  # after the check stage's own
    assert "| `rel` | 1.0.0 | released | - | - | - | - | - |" in text
    monkeypatch.delenv("GITHUB_ACTIONS")

    # One new version: its publish needs the key, and says so (exit 2), nothing half-done.
    write_tree(project, _spec("rel", "1.1.0", 3))
    code, report, err = _release(project, "--target", "e2b", "--no-build")
    assert code == 2
    assert "target e2b needs E2B_API_KEY" in err
    rows = _rows(report)
    assert (rows["rel"]["change"], rows["rel"]["build"]) == ("new", "left out")
    assert rows["keep"]["change"] == "released"
    new = load_index(path, INDEX_FILE).entry("rel", "1.1.0")
    assert new is not None
    assert new.publishes == []
