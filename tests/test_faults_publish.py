"""Publish under faults: a build that never finishes, an interrupted publish, a lost record, a
backend stopped mid-build.

E2B cloud is a fake at the HTTP wire (`FakeE2B` of test_publish) whose build stays `building`;
the local backend is the real one, served, driven over HTTP by the real e2b SDK and the CLI.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from e2b import Template

from boxsmith._internal.cli import publish
from boxsmith._internal.publish.targets import connect
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith._internal.retry import RetryPolicy
from boxsmith.config import load_settings
from boxsmith.errors import UsageError
from tests.fake_e2b import Call, FakeE2B
from tests.helpers import Backend, cli, snapshot, write_tree
from tests.test_publish import DEMO, _fake_target, _project, _publish

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
BUILD_ID = "0b9f7a9e-0000-4000-8000-000000000001"

# a build whose step runs until the test lets it end (touches /tmp/go in the step's container),
# five minutes at most; {nonce} makes the step the test's own (no cache, a container to find)
GATED = """\
name: slow
version: "1.0.0"
description: a build that runs until it is let go
base_image: debian:bookworm-slim
steps:
  - run: >-
      echo starting {nonce}; for i in $(seq 3000); do [ -e /tmp/go ] && break; sleep 0.1;
      done; echo done > /opt/done.txt
"""


def _let_go(nonce: str) -> None:
    """End the gated step of the build whose command holds `nonce`."""
    client = docker.from_env()
    try:
        for container in client.containers.list():
            if nonce in " ".join(container.attrs["Config"]["Cmd"] or []):
                container.exec_run(["touch", "/tmp/go"])
                return
    finally:
        client.close()
    raise AssertionError(f"no build container runs the step of {nonce}")


class _LetGoWhenWaited(io.StringIO):
    """stderr of a publish: once it says it waits for the earlier build, that build may end."""

    def __init__(self, nonce: str) -> None:
        super().__init__()
        self.nonce = nonce

    def write(self, text: str) -> int:
        written = super().write(text)
        if "waiting for it instead of starting another" in text:
            _let_go(self.nonce)
        return written


class StuckE2B(FakeE2B):
    """A fake E2B whose builds stay `building` while `stuck`: a 502 on the 1st and 3rd status
    poll, and, only so that code without a deadline ends too, an `error` from the 12th poll on.
    Once not `stuck`, a build goes on as FakeE2B's."""

    def __init__(self) -> None:
        super().__init__({})
        self.polls = 0
        self.stuck = True

    def _answer(self, call: Call) -> tuple[int, Any]:
        if call.route != "status" or not self.stuck:
            return super()._answer(call)
        with self.lock:
            self.seen.append((call.route, call.path, call.key))
            self.polls += 1
            poll = self.polls
        if poll in (1, 3):
            return 502, {"code": 502, "message": "fake status failure"}
        body: dict[str, Any] = {
            "templateID": call.params["tid"],
            "buildID": call.params["bid"],
            "status": "building" if poll < 12 else "error",
            "logs": [],
            "logEntries": [],
        }
        if poll >= 12:
            body["reason"] = {"message": "the fake gave up"}
        return 200, body


def test_a_stuck_build_meets_the_deadline_and_the_retry_counter_counts(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(project, demo=DEMO)
    monkeypatch.setenv("BOXSMITH_PUBLISH_TIMEOUT", "1.5")
    with StuckE2B() as fake:
        stuck = _publish(root, target=_fake_target(fake), retry=FAST, as_json=True)
        # The build goes on at the target: the next publish follows it, it starts no other.
        fake.stuck = False
        monkeypatch.delenv("BOXSMITH_PUBLISH_TIMEOUT")
        again = _publish(root, target=_fake_target(fake), retry=FAST)
    assert stuck.code == 3, stuck.err
    assert fake.count("request") == 1
    retries = [line for line in stuck.err.splitlines() if "retry" in line]
    assert [line.split("; ")[-1].split(" in ")[0] for line in retries] == [
        "retry 1/3",
        "retry 2/3",
    ]
    assert all("demo:1.0.0: follow the build: 502: fake status failure" in r for r in retries)
    assert (
        f"error: demo:1.0.0: publish to e2b failed at follow the build: build {BUILD_ID} on e2b "
        "is still building after 1.5s: the publish deadline (BOXSMITH_PUBLISH_TIMEOUT=1.5 "
        "seconds) passed"
    ) in stuck.err
    assert "the next publish of demo:1.0.0 waits for it instead of starting another" in stuck.err
    (result,) = json.loads(stuck.out)["publishes"]
    assert (result["status"], result["retries"], result["build_id"]) == ("failed", 2, "")

    assert again.code == 0, again.err
    assert fake.count("request") == 1  # the first publish's
    assert (
        f"demo:1.0.0: build {BUILD_ID} of this version already runs on e2b (an earlier publish "
        "was interrupted); waiting for it instead of starting another"
    ) in again.err
    entry = load_index(root / "generated" / INDEX_FILE, INDEX_FILE).entry("demo", "1.0.0")
    assert entry is not None
    assert [p.build_id for p in entry.publishes] == [BUILD_ID]


def test_a_bad_publish_timeout_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(project, demo=DEMO)
    monkeypatch.setenv("BOXSMITH_PUBLISH_TIMEOUT", "soon")
    with FakeE2B({}) as fake, pytest.raises(UsageError) as raised:
        _publish(root, target=_fake_target(fake))
    assert raised.value.exit_code == 2
    assert "BOXSMITH_PUBLISH_TIMEOUT='soon' is not a number of seconds above 0" in (
        raised.value.format()
    )
    assert fake.seen == []


# -- the records pull request not merged yet: the target is asked, not only the index ------------


def _files_before_publish(root: Path, name: str) -> dict[Path, bytes]:
    """generated/index.json and the version's e2b.toml as the main branch has them before the
    publish workflow's records pull request is merged."""
    paths = (root / "generated" / INDEX_FILE, root / f"generated/{name}/1.0.0/e2b.toml")
    return {path: path.read_bytes() for path in paths}


def _record(root: Path, name: str) -> list[Any]:
    entry = load_index(root / "generated" / INDEX_FILE, INDEX_FILE).entry(name, "1.0.0")
    assert entry is not None
    return list(entry.publishes)


def test_an_unmerged_records_pr_restores_the_record_and_builds_nothing(project: Path) -> None:
    root = _project(project, demo=DEMO)
    before = _files_before_publish(root, "demo")
    with FakeE2B({}) as fake:
        first = _publish(root, target=_fake_target(fake))
        assert first.code == 0, first.err
        (record,) = _record(root, "demo")
        published = {path: path.read_bytes() for path in before}
        for path, data in before.items():  # the next run's checkout: without the record
            path.write_bytes(data)
        assert cli(root, "check").code == 0

        again = _publish(root, target=_fake_target(fake), as_json=True)

    assert again.code == 0, again.err
    assert (
        f"demo:1.0.0: already on e2b as build {record.build_id}, record restored; bump the "
        "version if the content changed"
    ) in again.err
    assert (fake.count("request"), fake.count("start")) == (1, 1)  # the first publish's
    assert [b.build_id for b in fake.builds.values()] == [record.build_id]
    (result,) = json.loads(again.out)["publishes"]
    assert (result["status"], result["build_id"]) == ("published", record.build_id)
    (restored,) = _record(root, "demo")
    assert (restored.template_id, restored.build_id, restored.tags) == (
        record.template_id,
        record.build_id,
        record.tags,
    )
    assert restored.content_hash == record.content_hash
    toml = root / "generated/demo/1.0.0/e2b.toml"
    assert toml.read_bytes() == published[toml]
    assert cli(root, "check").code == 0


def _other_content_on_e2b(root: Path, fake: FakeE2B) -> str:
    """Publish demo:1.0.0 to `fake`, lose the record (records PR not merged), then give the
    same version other content and render it; the build id the fake's 1.0.0 tag points at."""
    before = _files_before_publish(root, "demo")
    first = _publish(root, target=_fake_target(fake))
    assert first.code == 0, first.err
    (record,) = _record(root, "demo")
    for path, data in before.items():
        path.write_bytes(data)
    spec = root / "template_specs/demo.yaml"
    spec.write_text(spec.read_text().replace("echo built", "echo changed"))
    assert cli(root, "render").code == 0  # the index records no publish: render allows it
    assert fake.tagged("demo")["1.0.0"] == record.build_id
    return record.build_id


def test_a_version_on_e2b_with_other_content_is_refused_with_exit_2(project: Path) -> None:
    root = _project(project, demo=DEMO)
    with FakeE2B({}) as fake:
        build_id = _other_content_on_e2b(root, fake)
        generated = snapshot(root / "generated")
        refused = _publish(root, target=_fake_target(fake), as_json=True)

    assert refused.code == 2, refused.err
    assert (fake.count("request"), fake.count("start")) == (1, 1)  # nothing built again
    assert list(fake.builds) == [build_id]
    (result,) = json.loads(refused.out)["publishes"]
    assert (result["status"], result["build_id"]) == ("refused", build_id)
    reason = (
        f"demo:1.0.0 is on e2b already (build {build_id}), but not with this content (that "
        "build has no tag content-"
    )
    assert result["error"].startswith(reason)
    assert result["error"].endswith("): a published version is immutable")
    fix = (
        "bump the version in template_specs/demo.yaml, `boxsmith render` and publish again (or "
        "put back the spec that build was made from)"
    )
    assert result["hint"] == fix
    assert f"error: demo:1.0.0: refused: {reason}" in refused.err
    assert f"  fix: {fix}\n" in refused.err
    assert refused.err.endswith("publish: 1 template(s): 1 refused\n")
    assert snapshot(root / "generated") == generated
    assert _record(root, "demo") == []


def test_a_failure_beside_a_refusal_exits_3_and_reports_both(project: Path) -> None:
    root = _project(project, demo=DEMO, other=DEMO.replace("name: demo", "name: other"))
    with FakeE2B({}) as fake:
        _other_content_on_e2b(root, fake)
        spec = root / "template_specs/other.yaml"  # a new version of other: its build fails
        spec.write_text(spec.read_text().replace('version: "1.0.0"', 'version: "1.1.0"'))
        assert cli(root, "render").code == 0
        fake.failures["request"] = [400]
        both = _publish(root, target=_fake_target(fake), retry=FAST, as_json=True)

    assert both.code == 3, both.err
    statuses = {(r["name"], r["version"]): r["status"] for r in json.loads(both.out)["publishes"]}
    assert statuses == {("demo", "1.0.0"): "refused", ("other", "1.1.0"): "failed"}
    assert "error: demo:1.0.0: refused: demo:1.0.0 is on e2b already" in both.err
    assert "error: other:1.1.0: publish to e2b failed at request the build: 400" in both.err
    assert both.err.endswith("publish: 2 template(s): 1 refused, 1 failed\n")


# -- the local backend ----------------------------------------------------------------------------


def _api(root: Path, path: str) -> Any:
    """GET `path` of the project's local backend (its REST API, with its key)."""
    target = connect(load_settings(root), "local", err=io.StringIO())
    request = urllib.request.Request(
        f"{target.params['api_url']}{path}", headers={"X-API-KEY": str(target.params["api_key"])}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _builds(root: Path, name: str) -> list[dict[str, Any]]:
    """The builds the local backend has of template `name` (GET /templates/{name})."""
    builds: list[dict[str, Any]] = _api(root, f"/templates/{urllib.parse.quote(name)}")["builds"]
    return builds


@pytest.mark.docker
def test_a_lost_publish_record_is_restored_from_the_target_not_built_again(
    backend_project: Path,
) -> None:
    root = _project(backend_project, demo=DEMO)
    first = _publish(root)
    assert first.code == 0, first.err
    index_path = root / "generated" / INDEX_FILE
    entry = load_index(index_path, INDEX_FILE).entry("demo", "1.0.0")
    assert entry is not None
    (record,) = entry.publishes
    toml = (root / "generated/demo/1.0.0/e2b.toml").read_text()

    data = json.loads(index_path.read_text())
    data["templates"]["demo"]["1.0.0"]["publishes"] = []  # still a valid index
    index_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert cli(root, "render").code == 0  # e2b.toml loses the ids with the record

    again = _publish(root, as_json=True)
    assert again.code == 0, again.err
    assert (
        f"demo:1.0.0: already on local as build {record.build_id}, record restored; bump the "
        "version if the content changed"
    ) in again.err
    (result,) = json.loads(again.out)["publishes"]
    assert (result["status"], result["build_id"]) == ("published", record.build_id)
    assert [b["buildID"] for b in _builds(root, "demo")] == [record.build_id]
    entry = load_index(index_path, INDEX_FILE).entry("demo", "1.0.0")
    assert entry is not None
    (restored,) = entry.publishes
    assert (restored.template_id, restored.build_id, restored.tags) == (
        record.template_id,
        record.build_id,
        record.tags,
    )
    assert (root / "generated/demo/1.0.0/e2b.toml").read_text() == toml
    assert cli(root, "check").code == 0


@pytest.mark.docker
def test_a_lost_record_of_other_content_is_refused_not_adopted(backend_project: Path) -> None:
    root = _project(backend_project, demo=DEMO)
    first = _publish(root)
    assert first.code == 0, first.err
    index_path = root / "generated" / INDEX_FILE
    data = json.loads(index_path.read_text())
    (record,) = data["templates"]["demo"]["1.0.0"]["publishes"]
    data["templates"]["demo"]["1.0.0"]["publishes"] = []  # the record is lost ...
    index_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    spec = root / "template_specs/demo.yaml"  # ... and the same version gets other content
    spec.write_text(spec.read_text().replace("echo built", "echo rebuilt"))
    assert cli(root, "render").code == 0

    again = _publish(root, as_json=True)

    assert again.code == 2, again.err  # a usage error: the version must be bumped
    (result,) = json.loads(again.out)["publishes"]
    assert (result["status"], result["build_id"]) == ("refused", record["build_id"])
    assert result["error"].startswith(
        f"demo:1.0.0 is on local already (build {record['build_id']}), but not with this content"
    )
    assert "bump the version" in result["hint"]
    assert [b["buildID"] for b in _builds(root, "demo")] == [record["build_id"]]
    entry = load_index(index_path, INDEX_FILE).entry("demo", "1.0.0")
    assert entry is not None
    assert entry.publishes == []

    # A release plans the version as new and passes publish's refusal on as its exit code.
    release = cli(root, "release", "--no-build", "--json")
    assert release.code == 2, release.err
    report = json.loads(release.out)
    assert {s["name"]: s["exit_code"] for s in report["stages"]}["publish"] == 2
    (row,) = report["templates"]
    assert (row["change"], row["publish"], row["channel"]) == ("new", "refused", "-")
    assert "error: demo:1.0.0: refused: demo:1.0.0 is on local already" in release.err
    assert [b["buildID"] for b in _builds(root, "demo")] == [record["build_id"]]


@pytest.mark.docker
def test_an_interrupted_publish_is_waited_for_not_built_twice(backend_project: Path) -> None:
    nonce = uuid.uuid4().hex
    root = _project(backend_project, slow=GATED.format(nonce=nonce))
    marker = root / ".boxsmith/publish/publish-local-slow-1.0.0.json"
    log = root / ".boxsmith/logs/publish-local-slow-1.0.0.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "boxsmith", "-C", str(root), "publish"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180  # a bound on a hang, not a race: the step waits
        while not (log.is_file() and "starting" in log.read_text()):
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err.decode()
    build_id = json.loads(marker.read_text())["build_id"]
    assert [(b["buildID"], b["status"]) for b in _builds(root, "slow")] == [(build_id, "building")]

    waited = _LetGoWhenWaited(nonce)
    code = publish.run(load_settings(root), [], [], out=io.StringIO(), err=waited)
    assert code == 0, waited.getvalue()
    assert (
        f"slow:1.0.0: build {build_id} of this version already runs on local (an earlier "
        "publish was interrupted); waiting for it instead of starting another"
    ) in waited.getvalue()
    assert [(b["buildID"], b["status"]) for b in _builds(root, "slow")] == [(build_id, "ready")]
    entry = load_index(root / "generated" / INDEX_FILE, INDEX_FILE).entry("slow", "1.0.0")
    assert entry is not None
    assert [p.build_id for p in entry.publishes] == [build_id]
    assert not marker.exists()


@pytest.mark.docker
def test_stopping_the_backend_cancels_its_builds_and_leaves_no_image(tmp_path: Path) -> None:
    write_tree(tmp_path, {"template_specs/.keep": ""})
    server = Backend(tmp_path, tmp_path / "data")
    server.start()
    params = {"api_key": server.key, "api_url": server.url, "retries": 0}
    try:
        info = Template.build_in_background(
            Template().from_image("debian:bookworm-slim").run_cmd("echo starting && sleep 300"),
            "cancelme:1.0.0",
            **params,
        )
        deadline = time.monotonic() + 180  # a bound on a hang, not a race
        while True:
            status = Template.get_build_status(info, logs_offset=0, **params)
            if any("starting" in e.message for e in status.log_entries):
                break
            assert str(status.status.value) == "building", status
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.2)
        server.stop()  # SIGTERM; fails after 30 s (the build would take 300)
        image = f"boxsmith-local/cancelme:{info.build_id}"
        assert docker.from_env().images.list(name=image) == []

        server.start()  # the build is recorded as failed, not left "building"
        status = Template.get_build_status(info, logs_offset=0, **params)
        assert str(status.status.value) == "error"
        assert status.reason is not None
        assert status.reason.message == "the backend stopped during the build"
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        server.remove_images()
