"""`smoke --target local`, `promote` and `rollback` against the local backend, end to end.

Two versions of a template are published to the backend through the SDK's Template API from
their generated folders (as publishing does) and recorded in generated/index.json; then the CLI
smoke-tests them in sandboxes and moves the `stable` channel. Marked `docker`.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
from e2b import Sandbox, Template

from boxsmith._internal.docker.client import PROJECT_LABEL
from boxsmith._internal.publish.targets import PublishTarget, connect
from boxsmith._internal.render.index import INDEX_FILE, PublishRecord, load_index
from boxsmith.config import load_settings
from tests.helpers import cli, write_tree

pytestmark = pytest.mark.docker

SPEC = """\
name: chan
version: "{version}"
description: channel test
base_image: debian:bookworm-slim
steps:
  - run: echo {marker} > /opt/v
smoke:
  - name: marker
    command: cat /opt/v
    stdout: "^{expect}$"
"""


@pytest.fixture
def project(backend_project: Path) -> Path:
    return backend_project


def _publish(root: Path, target: PublishTarget, version: str) -> None:
    """What `boxsmith publish` does for one version: build it from its folder, record it."""
    folder = root / "generated/chan" / version
    tpl = Template(file_context_path=str(folder)).from_dockerfile(
        (folder / "e2b.Dockerfile").read_text()
    )
    info = Template.build(tpl, f"chan:{version}", **target.params)
    path = root / "generated" / INDEX_FILE
    index = load_index(path, INDEX_FILE)
    entry = index.entry("chan", version)
    assert entry is not None
    entry.publishes.append(
        PublishRecord(
            target="local",
            template_id=info.template_id,
            build_id=info.build_id,
            tags=[version],
            published_at=datetime.now(UTC).isoformat(),
            content_hash=entry.content_hash,
        )
    )
    path.write_bytes(index.dumps())


def test_sandbox_smoke_moves_the_channel_and_promote_rollback_move_it_back(
    project: Path,
) -> None:
    write_tree(
        project, {"template_specs/chan.yaml": SPEC.format(version="1.0.0", marker=1, expect=1)}
    )
    assert cli(project, "render").code == 0
    settings = load_settings(project)
    target = connect(settings, "local", err=io.StringIO())
    _publish(project, target, "1.0.0")

    not_published = cli(project, "smoke", "--target", "local", "nope")
    assert not_published.code == 2

    first = cli(project, "smoke", "--target", "local", "--json")
    assert first.code == 0, first.err
    (suite,) = json.loads(first.out)["suites"]
    assert suite["status"] == "passed"
    assert suite["target"].startswith("sandbox ")
    assert (project / ".boxsmith/reports/smoke-local.xml").is_file()

    def channel() -> str:
        sbx = Sandbox.create("chan:stable", timeout=60, **target.params)
        try:
            return str(sbx.commands.run("cat /opt/v").stdout.strip())
        finally:
            sbx.kill()

    assert channel() == "1"

    # Version 2 fails its own check (it writes 2, the check wants 3): smoke says what came and
    # the channel stays on 1.0.0.
    write_tree(
        project, {"template_specs/chan.yaml": SPEC.format(version="2.0.0", marker=2, expect=3)}
    )
    assert cli(project, "render").code == 0
    _publish(project, target, "2.0.0")
    failed = cli(project, "smoke", "--target", "local")
    assert failed.code == 1
    assert "check 'marker' failed: expected exit 0, stdout matching /^3$/" in failed.err
    assert channel() == "1"

    promoted = cli(project, "promote", "chan", "--target", "local")
    assert promoted.code == 0, promoted.err
    assert promoted.out == "chan:stable -> 2.0.0 (was 1.0.0)\n"
    assert channel() == "2"

    rolled = cli(project, "rollback", "chan", "--target", "local")
    assert rolled.code == 0, rolled.err
    assert rolled.out == "chan:stable -> 1.0.0 (was 2.0.0)\n"
    assert channel() == "1"

    again = cli(project, "rollback", "chan", "--target", "local")
    assert again.code == 2
    assert "nothing older to roll back to" in again.err

    # No sandbox is left running on the backend after all this.
    assert Sandbox.list(**target.params).next_items() == []


def test_container_and_sandbox_smoke_keep_their_own_reports(project: Path) -> None:
    """`smoke --local` writes smoke-container.*, `smoke --target local` smoke-local.*: neither
    overwrites the other, and each JSON report says when its run finished. Publishing stamps ids
    into e2b.toml, which is no change of content: the image stays the one `smoke --local`
    accepts and `build` finds cached."""
    write_tree(
        project, {"template_specs/chan.yaml": SPEC.format(version="1.0.0", marker=1, expect=1)}
    )
    own = f"{PROJECT_LABEL}={load_settings(project).project_id}"
    reports = project / ".boxsmith/reports"
    try:
        assert cli(project, "render").code == 0
        built = cli(project, "build")
        assert built.code == 0, built.err
        container = cli(project, "smoke", "--local")
        assert container.code == 0, container.err
        assert "reports: .boxsmith/reports/smoke-container.xml" in container.err
        published = cli(project, "publish", "--target", "local")
        assert published.code == 0, published.err
        assert 'template_id = "' in (project / "generated/chan/1.0.0/e2b.toml").read_text()
        sandbox = cli(project, "smoke", "--target", "local", "--no-promote")
        assert sandbox.code == 0, sandbox.err
        assert "reports: .boxsmith/reports/smoke-local.xml" in sandbox.err

        first = json.loads((reports / "smoke-container.json").read_text())
        second = json.loads((reports / "smoke-local.json").read_text())
        assert (reports / "smoke-container.xml").is_file()
        assert (reports / "smoke-local.xml").is_file()
        assert first["suites"][0]["target"].startswith("container ")
        assert second["suites"][0]["target"].startswith("sandbox ")
        for report in (first, second):
            finished = datetime.fromisoformat(report["finished_at"])
            assert finished.tzinfo is not None
            assert abs((datetime.now(UTC) - finished).total_seconds()) < 3600
        assert first["finished_at"] <= second["finished_at"]

        again = cli(project, "smoke", "--local")
        assert again.code == 0, again.err
        cached = cli(project, "build", "--json")
        assert cached.code == 0, cached.err
        assert [b["status"] for b in json.loads(cached.out)["builds"]] == ["cached"]
    finally:
        client = docker.from_env()
        for image in client.images.list(filters={"label": own}):
            client.images.remove(image.id, force=True)
        client.close()


@pytest.mark.parametrize(
    "command",
    [
        ("release", "--channel", "Bad Tag!"),
        ("smoke", "--target", "local", "--channel", "Bad Tag!"),
        ("promote", "chan", "--channel", "Bad Tag!"),
        ("rollback", "chan", "--channel", "460355b3-4f64-48f9-9a16-4442817f79f5"),
    ],
)
def test_a_channel_e2b_would_refuse_is_a_usage_error_before_any_work(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    write_tree(
        tmp_path, {"template_specs/chan.yaml": SPEC.format(version="1.0.0", marker=1, expect=1)}
    )
    run = cli(tmp_path, *command)
    assert run.code == 2, run.err
    assert "error: --channel: tag " in run.err
    assert "breaks E2B's rule ^[a-z0-9-_.]+$" in run.err or "reserves for build ids" in run.err
    assert "fix: use a-z, 0-9, -, _ and ., e.g. --channel stable" in run.err
    assert not (tmp_path / "generated").exists()  # nothing rendered, nothing started
    assert not (tmp_path / ".boxsmith" / "backend").exists()
