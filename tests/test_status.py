"""`boxsmith status`: per template, generated/, the local build, publishes, channels and the last
smoke results; reads only, and answers without a Docker engine.

The fast tests use rendered projects and smoke reports written as `smoke` and `release` write
them. The end-to-end test (marked `docker`) builds, smoke-tests, publishes to the local backend
(started by publish, on a free port, its data in the tmp project) and smoke-tests a sandbox,
asking `status` after each step.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from boxsmith._internal.build.rendered import load_unit
from boxsmith._internal.docker.labels import PROJECT_LABEL
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith._internal.spec.catalog import load_catalog
from boxsmith.config import load_settings
from tests.helpers import MINIMAL, cli, snapshot, write_tree

SPEC = """\
name: {name}
version: "1.0.0"
description: status test
base_image: debian:bookworm-slim
steps:
  - run: echo ok > /opt/v
smoke:
  - name: marker
    command: cat /opt/v
    stdout: "^ok$"
"""


def _status(root: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """`status --json`: its exit code and the rows by template name."""
    run = cli(root, "status", "--json")
    assert run.out, run.err
    return run.code, {row["name"]: row for row in json.loads(run.out)["templates"]}


def _dead_engine(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder / 'no-engine.sock'}")


def test_status_shows_drift_and_exits_1_as_check_does(project: Path) -> None:
    write_tree(
        project,
        {f"template_specs/{n}.yaml": MINIMAL.format(name=n) for n in ("same", "edited")},
    )
    assert cli(project, "render").code == 0
    code, rows = _status(project)
    assert code == 0
    assert {n: r["generated"]["status"] for n, r in rows.items()} == {
        "edited": "rendered",
        "same": "rendered",
    }

    (project / "generated/edited/1.0.0/e2b.Dockerfile").write_text("FROM scratch\n")
    write_tree(project, {"template_specs/new.yaml": MINIMAL.format(name="new")})
    code, rows = _status(project)
    assert code == 1
    assert list(rows) == ["edited", "new", "same"]  # catalog order
    assert rows["edited"]["generated"] == {
        "status": "drift",
        "files": ["generated/edited/1.0.0/e2b.Dockerfile"],
    }
    assert rows["new"]["generated"]["status"] == "not rendered"
    assert rows["new"]["build"] == {"status": "not rendered"}
    assert rows["same"]["generated"]["status"] == "rendered"
    assert cli(project, "check").code == 1

    table = cli(project, "status")
    assert table.code == 1
    lines = table.out.splitlines()
    assert lines[0].split() == [
        "TEMPLATE", "VERSION", "GENERATED", "BUILD", "PUBLISHED", "CHANNELS", "SMOKE",
    ]  # fmt: skip
    assert lines[1].split()[:3] == ["edited", "1.0.0", "drift"]
    assert (
        "edited:1.0.0: generated/ drift (generated/edited/1.0.0/e2b.Dockerfile); "
        "run `boxsmith render edited`"
    ) in lines
    assert "new:1.0.0: not rendered; run `boxsmith render new`" in lines
    assert not any(line.startswith("same:") for line in lines)

    selected = cli(project, "status", "same", "--json")
    assert selected.code == 0, selected.err  # a selection judges only its own templates
    assert cli(project, "status", "sam").code == 2  # unknown name: usage error, with a hint

    # Drift that is no template's: the folder of a spec that was removed.
    (project / "template_specs/same.yaml").unlink()
    gone = cli(project, "status", "--json")
    assert gone.code == 1
    assert "generated/same/1.0.0/e2b.toml: delete" in json.loads(gone.out)["drift"]
    assert (
        "generated/ drift: generated/same/1.0.0/e2b.toml: delete; run `boxsmith check` for the diff"
    ) in cli(project, "status").out


def test_status_answers_without_an_engine_and_writes_nothing(
    minimal_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(minimal_project, "render").code == 0
    _dead_engine(monkeypatch, minimal_project)
    before = snapshot(minimal_project)
    run = cli(minimal_project, "status", "--json")
    assert run.code == 0, run.err
    (row,) = json.loads(run.out)["templates"]
    assert row["build"]["status"] == "engine not reachable"
    assert "no Docker engine answers at unix://" in row["build"]["problem"]
    assert run.err.startswith("status: engine not reachable: no Docker engine answers at unix://")
    table = cli(minimal_project, "status")
    assert table.code == 0
    assert table.out.splitlines()[1].split() == [
        "app", "1.0.0", "rendered", "engine", "not", "reachable", "-", "-", "-",
    ]  # fmt: skip
    assert snapshot(minimal_project) == before


def _report(path: Path, suites: dict[str, str], finished_at: str | None) -> None:
    data: dict[str, Any] = {"suites": [{"name": n, "status": s} for n, s in suites.items()]}
    if finished_at is not None:
        data["finished_at"] = finished_at
    write_tree(path.parent, {path.name: json.dumps(data)})


def test_status_shows_the_newest_smoke_result_of_each_kind(
    minimal_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per kind, the newest of `smoke-<kind>.json` and `release-<kind>.json` that has this
    version's suite; a report without `finished_at` counts from its file's mtime."""
    assert cli(minimal_project, "render").code == 0
    _dead_engine(monkeypatch, minimal_project)
    reports = minimal_project / ".boxsmith/reports"
    _report(reports / "smoke-container.json", {"app:1.0.0": "failed"}, "2030-01-02T00:00:00+00:00")
    _report(reports / "release-container.json", {"app:1.0.0": "passed"}, None)
    march = datetime(2030, 3, 1, tzinfo=UTC).timestamp()
    os.utime(reports / "release-container.json", (march, march))
    _report(reports / "smoke-local.json", {"app:1.0.0": "error", "app:0.9.0": "passed"}, None)
    _report(reports / "release-local.json", {"app:0.9.0": "passed"}, "2031-01-01T00:00:00Z")
    (reports / "smoke-e2b.json").write_text("{not json")

    code, rows = _status(minimal_project)
    assert code == 0
    smoke = rows["app"]["smoke"]
    assert smoke["container"] == {
        "status": "passed",
        "finished_at": "2030-03-01T00:00:00+00:00",
        "report": ".boxsmith/reports/release-container.json",
    }
    assert smoke["local"]["status"] == "error"
    assert smoke["local"]["report"] == ".boxsmith/reports/smoke-local.json"
    assert smoke["e2b"] is None

    os.utime(reports / "release-container.json", (0, 0))  # now older than smoke-container's
    table = cli(minimal_project, "status")
    assert "container failed, local error" in table.out.splitlines()[1]
    assert "app:1.0.0: smoke container failed (.boxsmith/reports/smoke-container.json)" in (
        table.out
    )
    assert "app:1.0.0: smoke local error (.boxsmith/reports/smoke-local.json)" in table.out


# -- end to end: build, smoke, publish, sandbox smoke -------------------------------------------


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def e2e(backend_project: Path, engine: docker.DockerClient) -> Iterator[Path]:
    """A project with a backend of its own; removes its local template images after."""
    yield backend_project
    mine = f"{PROJECT_LABEL}={load_settings(backend_project).project_id}"
    for image in engine.images.list(filters={"label": mine}):
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(image.id, force=True)


def _ok(root: Path, *args: str) -> None:
    run = cli(root, *args)
    assert run.code == 0, run.err


@pytest.mark.docker
def test_status_follows_a_template_through_build_publish_and_smoke(
    e2e: Path, engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = uuid.uuid4().hex[:8]
    app, other = f"app-{token}", f"other-{token}"
    write_tree(e2e, {f"template_specs/{n}.yaml": SPEC.format(name=n) for n in (app, other)})
    _ok(e2e, "render")
    settings = load_settings(e2e)
    template = next(t for t in load_catalog(settings).templates if t.name == app)
    image = load_unit(settings, template).image

    code, rows = _status(e2e)
    assert code == 0
    assert rows[app]["build"] == {"status": "not built", "image": image}
    assert rows[app]["publishes"] == []
    assert rows[app]["channels"] == {"local": {}}
    assert rows[app]["smoke"] == {"container": None, "local": None, "e2b": None}

    _ok(e2e, "build", app)
    code, rows = _status(e2e)
    build = rows[app]["build"]
    assert (build["status"], build["image"], build["problem"]) == ("up to date", image, None)
    assert build["id"] == engine.images.get(image).id
    assert build["size"] > 0
    assert datetime.fromisoformat(build["created"]).tzinfo is not None
    assert rows[other]["build"]["status"] == "not built"

    _ok(e2e, "smoke", "--local", app)
    _ok(e2e, "publish", "--target", "local", app)
    code, rows = _status(e2e)
    assert rows[app]["smoke"]["container"]["status"] == "passed"
    assert rows[app]["smoke"]["container"]["report"] == ".boxsmith/reports/smoke-container.json"
    (record,) = rows[app]["publishes"]
    entry = load_index(e2e / "generated" / INDEX_FILE, INDEX_FILE).entry(app, "1.0.0")
    assert entry is not None
    (published,) = entry.publishes
    assert record == {
        "target": "local",
        "template_id": published.template_id,
        "build_id": published.build_id,
        "published_at": published.published_at,
        "verified_at": None,
        "live": True,
    }
    table = cli(e2e, "status").out
    assert f"{app}:1.0.0: published to local, no sandbox of it passed its smoke checks yet" in table

    _ok(e2e, "smoke", "--target", "local", app)
    code, rows = _status(e2e)
    (record,) = rows[app]["publishes"]
    assert record["verified_at"] is not None
    assert rows[app]["channels"] == {"local": {"stable": "1.0.0"}}
    assert rows[app]["smoke"]["local"]["status"] == "passed"
    assert rows[app]["smoke"]["local"]["report"] == ".boxsmith/reports/smoke-local.json"
    line = next(x for x in cli(e2e, "status").out.splitlines() if x.startswith(app + " "))
    assert "local verified" in line
    assert "local: stable=1.0.0" in line
    assert "container passed, local passed" in line

    with monkeypatch.context() as dead:
        _dead_engine(dead, e2e)
        code, offline = _status(e2e)
    assert code == 0
    assert offline[app]["build"]["status"] == "engine not reachable"
    for key in ("publishes", "channels", "smoke"):
        assert offline[app][key] == rows[app][key]

    # A hand edit of the built version: generated/ drifts and the image no longer matches it.
    (e2e / f"generated/{app}/1.0.0/e2b.Dockerfile").write_text(
        (e2e / f"generated/{app}/1.0.0/e2b.Dockerfile").read_text() + "RUN true\n"
    )
    code, rows = _status(e2e)
    assert code == 1
    assert rows[app]["generated"]["status"] == "drift"
    assert rows[app]["build"]["status"] == "stale"
    assert (
        rows[app]["build"]["problem"]
        == f"out of date: generated/{app}/1.0.0 changed since it was built"
    )
    assert (
        f"{app}:1.0.0: image {image} out of date: generated/{app}/1.0.0 changed since it was "
        f"built; run `boxsmith build {app}`"
    ) in cli(e2e, "status").out
