"""`boxsmith publish`: the local backend end to end, and E2B cloud against a fake at the HTTP wire.

The local tests (marked `docker`) render a small project with the CLI, publish it through the
SDK to the bundled backend (started by publish itself, on a free port, its data in the tmp
project) and boot a sandbox of the result. The E2B tests run the unchanged SDK against a small
HTTP server with state (`FakeE2B`: templates, builds and tags as E2B keeps them) that can answer
429, 5xx and upload errors once, then success: they prove the retries, the record and that the
key is never printed, in a second.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import (
    AuthenticationException,
    BuildException,
    FileUploadException,
    RateLimitException,
    Sandbox,
)

from boxsmith._internal.cli import publish
from boxsmith._internal.publish.records import content_tag
from boxsmith._internal.publish.targets import PublishTarget, connect
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith._internal.retry import RetryPolicy, is_transient
from boxsmith.config import load_settings
from boxsmith.errors import SpecError, UsageError
from tests.fake_e2b import FakeE2B
from tests.helpers import Run, cli, snapshot, write_tree

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
KEY = "e2b_0123456789abcdef0123456789abcdef01234567"

DEMO = """\
name: demo
version: "1.0.0"
description: publish test
base_image: debian:bookworm-slim
tags: [edge]
files:
  - {src: demo/hello.txt, dest: /opt/hello.txt}
steps:
  - run: echo built > /opt/built.txt
start_cmd: sleep infinity
ready_cmd: test -f /opt/built.txt
"""

BROKEN = """\
name: broken
version: "1.0.0"
description: a step that fails
base_image: debian:bookworm-slim
steps:
  - run: echo about to fail && exit 7
"""


def _project(root: Path, **specs: str) -> Path:
    files: dict[str, str | bytes] = {f"template_specs/{n}.yaml": s for n, s in specs.items()}
    files["template_specs/demo/hello.txt"] = "hello from the build context\n"
    write_tree(root, files)
    assert cli(root, "render").code == 0
    return root


def _publish(root: Path, *names: str, **options: Any) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = publish.run(load_settings(root), list(names), [], out=out, err=err, **options)
    return Run(code, out.getvalue(), err.getvalue())


# -- the local backend ----------------------------------------------------------------------------


@pytest.fixture
def local(backend_project: Path) -> Path:
    """A project whose local backend (started by publish) listens on a free port."""
    return backend_project


@pytest.mark.docker
def test_publish_to_the_local_backend_records_the_build_and_boots(local: Path) -> None:
    root = _project(local, demo=DEMO, broken=BROKEN)
    toml_path = root / "generated/demo/1.0.0/e2b.toml"
    before = toml_path.read_text()

    first = _publish(root)
    assert first.code == 3, first.err
    assert "started the local backend on http://127.0.0.1:" in first.err
    assert (
        "error: broken:1.0.0: publish to local failed: step 4 (RUN echo about to fail && exit 7) "
        "failed: The command 'echo about to fail && exit 7' returned a non-zero code: 7"
    ) in first.err
    assert "    about to fail\n" in first.err  # the end of the build log
    assert "fix: fix that step in the spec, `boxsmith render`, and publish again" in first.err
    rows = {line.split()[0]: line.split() for line in first.out.splitlines()[1:]}
    assert rows["demo"][3] == "published"
    assert rows["broken"][3:] == ["failed", rows["broken"][4], "-", "-"]

    index = load_index(root / "generated" / INDEX_FILE, INDEX_FILE)
    demo = index.entry("demo", "1.0.0")
    assert demo is not None
    (record,) = demo.publishes
    assert (record.target, record.tags, record.content_hash) == (
        "local",
        ["1.0.0", "edge"],
        demo.content_hash,
    )
    assert rows["demo"][5:] == [record.template_id, record.build_id]
    broken = index.entry("broken", "1.0.0")
    assert broken is not None
    assert broken.publishes == []

    # e2b.toml: the ids appended, every comment and line before them kept
    stamped = toml_path.read_text()
    assert stamped == (
        before + f'template_id = "{record.template_id}"\nbuild_id = "{record.build_id}"\n'
    )
    assert cli(root, "check").code == 0

    # The template is really there, under its version and its extra tag.
    target = connect(load_settings(root), "local", err=io.StringIO())
    for ref in ("demo:1.0.0", "demo:edge"):
        sandbox = Sandbox.create(ref, timeout=60, **target.params)
        try:
            assert sandbox.commands.run("cat /opt/hello.txt /opt/built.txt").stdout == (
                "hello from the build context\nbuilt\n"
            )
        finally:
            sandbox.kill()

    again = _publish(root, "demo", as_json=True)
    assert again.code == 0, again.err
    assert "demo:1.0.0: already published to local with the same content" in again.err
    (result,) = json.loads(again.out)["publishes"]
    assert (result["status"], result["build_id"]) == ("unchanged", record.build_id)
    assert toml_path.read_text() == stamped


@pytest.mark.docker
def test_publish_refuses_drift_and_changed_published_content(local: Path) -> None:
    root = _project(local, demo=DEMO)
    assert _publish(root).code == 0

    # A hand-edited generated file: nothing goes out, render is the fix.
    dockerfile = root / "generated/demo/1.0.0/e2b.Dockerfile"
    original = dockerfile.read_text()
    dockerfile.write_text(original + "RUN echo sneaky\n")
    before = snapshot(root / "generated")
    drift = _publish(root)
    assert drift.code == 1
    assert "generated/demo/1.0.0/e2b.Dockerfile: update needed" in drift.err
    assert "run `boxsmith render`" in drift.err
    assert snapshot(root / "generated") == before
    dockerfile.write_text(original)

    # New content under the published version: render and publish both refuse, at the spec.
    write_tree(root, {"template_specs/demo.yaml": DEMO.replace("echo built", "echo changed")})
    refused = cli(root, "render")
    assert refused.code == 2
    assert "template_specs/demo.yaml:2:10: error: version: demo:1.0.0 is published" in refused.err
    with pytest.raises(SpecError) as raised:
        _publish(root)
    assert "bump version" in raised.value.format()


# -- E2B cloud, against a fake at the HTTP boundary ------------------------------------------------


def _fake_target(fake: FakeE2B) -> PublishTarget:
    params = {"api_key": KEY, "api_url": fake.url, "domain": "fake.e2b.test"}
    return PublishTarget("e2b", f"fake E2B ({fake.url})", params)


def test_publish_to_e2b_retries_transient_failures_and_never_prints_the_key(
    project: Path,
) -> None:
    root = _project(project, demo=DEMO)
    failures = {"request": [429], "upload": [500], "status": [502]}
    with FakeE2B(failures) as fake:
        done = _publish(root, target=_fake_target(fake), retry=FAST)
    assert done.code == 0, done.err
    assert (fake.count("request"), fake.count("upload"), fake.count("start")) == (3, 2, 1)
    # the key goes with every API request (not to the upload URL)...
    assert {key for route, _, key in fake.seen if route != "upload"} == {KEY}
    log = (root / ".boxsmith/logs/publish-e2b-demo-1.0.0.log").read_text()
    for text in (done.out, done.err, log):
        assert KEY not in text  # ...and printed nowhere
    retries = [line for line in done.err.splitlines() if "retry" in line]
    assert len(retries) == 3, done.err
    assert "demo:1.0.0: request the build: 429: Rate limit exceeded" in retries[0]
    assert "retry 1/3" in retries[0]
    assert "upload the build context: Failed to upload file" in retries[1]
    assert "retry 2/3" in retries[1]
    assert "follow the build: 502: fake status failure; retry 1/3" in retries[2]

    entry = load_index(root / "generated" / INDEX_FILE, INDEX_FILE).entry("demo", "1.0.0")
    assert entry is not None
    (record,) = entry.publishes
    assert record.model_dump()["domain"] == "fake.e2b.test"
    assert (record.target, record.template_id) == ("e2b", "tpl-demo")
    assert record.tags == ["1.0.0", "edge"]
    # the upload's retry requested a second build; the first one was never started
    first, second = fake.builds.values()
    assert (first.status, second.status, record.build_id) == ("waiting", "ready", second.build_id)
    assert fake.tagged("demo") == {
        "1.0.0": second.build_id,
        "edge": second.build_id,
        content_tag(entry.content_hash): second.build_id,
    }
    toml = (root / "generated/demo/1.0.0/e2b.toml").read_text()
    assert toml.startswith("# Generated by boxsmith from template_specs/demo.yaml. Do not edit:")
    assert f'template_id = "tpl-demo"\nbuild_id = "{second.build_id}"\n' in toml
    assert cli(root, "check").code == 0

    with FakeE2B({}) as fake:
        again = _publish(root, target=_fake_target(fake))
    assert again.code == 0
    assert "already published to e2b" in again.err
    assert fake.seen == []


def test_a_refused_key_is_not_retried_and_names_the_step(project: Path) -> None:
    root = _project(project, demo=DEMO)
    before = snapshot(root / "generated")
    with FakeE2B({"request": [401]}) as fake:
        failed = _publish(root, target=_fake_target(fake), retry=FAST, as_json=True)
    assert failed.code == 3
    assert fake.count("request") == 1
    (result,) = json.loads(failed.out)["publishes"]
    assert (result["status"], result["step"]) == ("failed", "request the build")
    assert "error: demo:1.0.0: publish to e2b failed at request the build: 401" in failed.err
    assert "fix: the target refused the API key" in failed.err
    assert KEY not in failed.err + failed.out
    assert snapshot(root / "generated") == before


def test_a_record_with_other_content_is_refused(project: Path) -> None:
    root = _project(project, demo=DEMO)
    path = root / "generated" / INDEX_FILE
    data = json.loads(path.read_text())
    data["templates"]["demo"]["1.0.0"]["publishes"] = [
        {
            "target": "e2b",
            "template_id": "tpl-old",
            "build_id": "b-old",
            "tags": ["1.0.0"],
            "published_at": "2026-01-01T00:00:00+00:00",
            "content_hash": "sha256:" + "0" * 64,
        }
    ]
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert cli(root, "render").code == 0  # the record stays; e2b.toml gets its ids
    with FakeE2B({}) as fake:
        refused = _publish(root, target=_fake_target(fake))
    assert refused.code == 2
    assert fake.seen == []
    assert "error: demo:1.0.0: refused: demo:1.0.0 was published to e2b with content" in (
        refused.err
    )
    assert "fix: a published version is immutable: bump the version" in refused.err


def test_target_e2b_needs_a_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    root = _project(project, demo=DEMO)
    with pytest.raises(UsageError) as raised:
        _publish(root, target="e2b")
    assert raised.value.exit_code == 2
    assert "target e2b needs E2B_API_KEY" in raised.value.format()


def test_which_failures_are_transient() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:1/v3/templates")
    for exc in (
        RateLimitException("429: Rate limit exceeded"),
        BuildException("502: bad gateway"),
        BuildException("500: internal"),
        FileUploadException("Failed to upload file: reset"),
        httpx.ConnectError("refused", request=request),
        ConnectionResetError(),
    ):
        assert is_transient(exc), exc
    for exc in (
        AuthenticationException("401: Unauthorized"),
        BuildException("400: bad Dockerfile"),
        BuildException("step 5 (RUN false) failed"),
        ValueError("x"),
    ):
        assert not is_transient(exc), exc
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=4.0)
    assert [0.5 <= policy.delay(0) <= 1.0, 2.0 <= policy.delay(2) <= 4.0] == [True, True]
    assert 2.0 <= policy.delay(10) <= 4.0  # capped
