"""`boxsmith build` and `boxsmith smoke --local` end to end, on a real engine with real images.

Marked `docker`. Without an engine these tests skip, except under CI (`CI` set), where they fail.
Each test writes a small project in tmp_path (specs FROM the local `debian:bookworm-slim`), renders
it and drives the CLI in-process; behaviour is asserted through exit codes, stdout/stderr and the
JSON and JUnit reports. Template names carry a per-test token so tests share no images; the images
a test's project got (`boxsmith/<project id>/<name>:<version>`, found by their project label, the
ones a rebuild untagged too) are removed when it ends (never the stand-ins or `boxsmith/parity:*`).

The port and http checks need a server without extra packages: perl (Essential in Debian, so in
debian-slim) with IO::Socket::INET serves HTTP/1.0; `ss` for `wait_for_port` and `curl` for the
http check come from the parity layer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from boxsmith._internal.build.record import RECORD_FILE, BuildRecord
from boxsmith._internal.docker.client import LABEL, PROJECT_LABEL
from boxsmith._internal.render import stamp
from boxsmith.config import Settings, load_settings
from tests.helpers import Run, cli, write_tree

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"
# A python image no machine has and no registry serves (a minor version made up for this run), so
# it is never local and no pull finds it; Debian 12 has Python 3.11 only, so no stand-in either.
UNBUILDABLE_BASE = f"python:3.{uuid.uuid4().int % 10**8 + 10**8}-slim"

SERVER_PL = r"""#!/usr/bin/perl
# A one-file HTTP/1.0 server: what debian-slim can listen with, no packages needed.
use strict;
use warnings;
use IO::Socket::INET;
my $server = IO::Socket::INET->new(
    LocalAddr => '0.0.0.0', LocalPort => $ARGV[0], Listen => 5, ReuseAddr => 1,
) or die "cannot listen on $ARGV[0]: $!\n";
while (my $client = $server->accept) {
    while (my $line = <$client>) { last if $line =~ /^\r?\n$/ }
    my $body = "hello from perl\n";
    print $client "HTTP/1.0 200 OK\r\nContent-Length: " . length($body) . "\r\n\r\n" . $body;
    close $client;
}
"""


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The docker SDK client; skips (fails under CI) without an engine or the base image."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine answers: {exc}")
    try:
        try:
            client.images.get(BASE)
        except docker.errors.ImageNotFound:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"{BASE} is not local: run `boxsmith images ensure {BASE}`")
        yield client
    finally:
        client.close()


@pytest.fixture
def token() -> str:
    """A short suffix that makes this test's template names (and so its images) its own."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(autouse=True)
def _no_container_left(docker_client: docker.DockerClient, token: str) -> Iterator[None]:
    """At teardown: no boxsmith container of this test is left, running or not.

    Other sessions may use the same engine at the same time, so only containers that carry
    this test's token (in their labels, image or name) are this test's.
    """
    yield
    labelled = docker_client.containers.list(
        all=True, filters={"label": f"{LABEL}=1"}, ignore_removed=True
    )
    left = [
        f"{c.short_id} {c.name} {c.attrs['Config'].get('Image')}"
        for c in labelled
        if token
        in json.dumps([c.name, c.attrs["Config"].get("Image"), c.attrs["Config"].get("Labels")])
    ]
    assert left == []


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


@dataclass
class Project:
    """A project in tmp_path whose templates are this test's own."""

    root: Path
    token: str
    names: list[str] = field(default_factory=list)
    image_ids: set[str] = field(default_factory=set)

    def spec(self, stem: str, body: str, *, base: str = BASE, **files: str) -> str:
        """Write `template_specs/<stem>-<token>.yaml` (plus `files`); returns the name."""
        name = f"{stem}-{self.token}"
        head = f'name: {name}\nversion: "1.0.0"\ndescription: {stem} test\nbase_image: {base}\n'
        tree: dict[str, str | bytes] = {f"template_specs/{name}.yaml": head + textwrap.dedent(body)}
        tree.update({f"template_specs/{rel}": text for rel, text in files.items()})
        write_tree(self.root, tree)
        self.names.append(name)
        return name

    def spec_line(self, name: str, text: str) -> int:
        """The 1-based line of the first spec line containing `text`."""
        lines = (self.root / f"template_specs/{name}.yaml").read_text().splitlines()
        return next(n for n, line in enumerate(lines, 1) if text in line)

    def dockerfile_line(self, name: str, text: str) -> int:
        """The 1-based line of the rendered e2b.Dockerfile that starts with `text`."""
        lines = (self.root / f"generated/{name}/1.0.0/e2b.Dockerfile").read_text().splitlines()
        return next(n for n, line in enumerate(lines, 1) if line.startswith(text))

    def image(self, name: str, version: str = "1.0.0") -> str:
        """The local tag of a template version of this project."""
        return f"boxsmith/{load_settings(self.root).project_id}/{name}:{version}"

    def cli(self, *args: str) -> Run:
        """`boxsmith -C root args...` in-process."""
        return cli(self.root, *args)

    def render(self) -> None:
        """`boxsmith render`, which must succeed."""
        run = self.cli("render")
        assert run.code == 0, run.err

    def build(self, name: str, *args: str) -> tuple[Run, dict[str, Any]]:
        """`boxsmith build NAME --json ARGS`: the run and the template's JSON entry."""
        run = self.cli("build", name, "--json", *args)
        (entry,) = json.loads(run.out)["builds"]
        if entry["image_id"]:
            self.image_ids.add(entry["image_id"])
        return run, entry


@pytest.fixture
def project(tmp_path: Path, token: str, docker_client: docker.DockerClient) -> Iterator[Project]:
    """An empty project; removes the images its templates got (tags and replaced builds)."""
    (tmp_path / "template_specs").mkdir()
    made = Project(tmp_path, token)
    yield made
    mine = f"{PROJECT_LABEL}={load_settings(tmp_path).project_id}"
    made.image_ids.update(
        str(image.id) for image in docker_client.images.list(filters={"label": mine})
    )
    for image_id in made.image_ids:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(image_id, force=True)


def _junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root


def _counts(node: ET.Element) -> dict[str, str]:
    return {key: node.attrib[key] for key in ("tests", "failures", "errors", "skipped")}


def test_good_template_builds_with_e2b_parity_and_passes_its_checks(
    project: Project, docker_client: docker.DockerClient
) -> None:
    name = project.spec(
        "ok",
        """\
        resources:
          cpu_count: 1
          memory_mb: 256
        files:
          - src: srv/server.pl
            dest: /usr/local/bin/boxsmith-server
            mode: "0755"
        steps:
          - run: mkdir -p /opt/app && echo hello-app > /opt/app/greeting
        start_cmd: /usr/local/bin/boxsmith-server 8080
        ready_cmd:
          wait_for_port: 8080
        smoke:
          - name: debian release
            command: cat /etc/debian_version
            stdout: "^12\\\\."
          - name: greeting baked in
            file: /opt/app/greeting
            contains: ^hello-app$
          - name: server process
            process: ^/usr/bin/perl /usr/local/bin/boxsmith-server
            full: true
          - port: 8080
          - name: server answers
            http: http://localhost:8080/
            body: hello from perl
        """,
        **{"srv/server.pl": SERVER_PL},
    )
    project.render()

    run, entry = project.build(name)
    assert run.code == 0, run.err
    assert entry["status"] == "built"
    assert "ok: 1 template(s): 1 built" in run.err
    image = docker_client.images.get(project.image(name))
    assert image.id == entry["image_id"]
    assert entry["image"] == project.image(name)
    labels = image.labels
    assert labels["dev.boxsmith.template"] == name
    assert labels[PROJECT_LABEL] == load_settings(project.root).project_id
    assert labels["dev.boxsmith.build-key"] == entry["build_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", entry["build_key"])

    # E2B parity: what E2B's provisioning and finalize leave in every sandbox.
    assert image.attrs["Config"]["User"] == "user"
    assert image.attrs["Config"]["WorkingDir"] == "/home/user"
    probe = (
        "id -un; pwd; sudo -n true && echo sudo-ok; stat -c '%U %G' /home/user; "
        "stat -c '%a' /code /usr/local/bin/boxsmith-server"
    )
    output = docker_client.containers.run(entry["image_id"], ["sh", "-c", probe], remove=True)
    assert output.decode().splitlines() == [
        "user",
        "/home/user",
        "sudo-ok",
        "user user",
        "777",
        "777",
    ]

    smoke = project.cli(
        "smoke", "--local", name, "--junit", "out/smoke.xml", "--report", "out/smoke.json"
    )
    assert smoke.code == 0, smoke.err
    assert re.search(rf"^passed +{name}:1\.0\.0 +checks 5/5 ", smoke.out, re.MULTILINE)
    assert "ok: 1 template(s): 1 passed, 0 failed, 0 skipped" in smoke.err

    suites = _junit(project.root / "out/smoke.xml")
    expected_counts = {"tests": "5", "failures": "0", "errors": "0", "skipped": "0"}
    assert _counts(suites) == expected_counts
    (suite,) = suites.iter("testsuite")
    assert suite.attrib["name"] == f"{name}:1.0.0"
    assert _counts(suite) == expected_counts
    cases = suite.findall("testcase")
    assert [c.attrib["name"] for c in cases] == [
        "debian release",
        "greeting baked in",
        "server process",
        "port: 8080",
        "server answers",
    ]
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)

    report = json.loads((project.root / "out/smoke.json").read_text())
    assert report["ok"] is True
    (data,) = report["suites"]
    assert data["status"] == "passed"
    checks = {c["name"]: c for c in data["checks"]}
    assert {c["status"] for c in checks.values()} == {"passed"}
    assert {c["kind"] for c in checks.values()} == {"command", "file", "process", "port", "http"}
    # The perl server itself, not the shell that boxsmith starts start_cmd in.
    assert "boxsmith-server 8080" in checks["server process"]["actual"]
    assert "sh -c" not in checks["server process"]["actual"]
    assert checks["server answers"]["actual"] == "status 200, body: 'hello from perl'"


def test_template_env_is_there_for_build_and_start_but_not_for_later_commands(
    project: Project, docker_client: docker.DockerClient
) -> None:
    """E2B's rule (the SDK's set_envs: "available only during template build"): the build and
    the start and ready commands see the template's ENV; checks run once ready do not."""
    name = project.spec(
        "env",
        """\
        env:
          GREETING: hi there
        steps:
          - run: echo "$GREETING" > /opt/built
        start_cmd: sh -c 'echo "${GREETING-unset}" > /tmp/start-env; exec sleep infinity'
        ready_cmd: test "$GREETING" = "hi there" && test -s /tmp/start-env
        smoke:
          - name: build saw it
            file: /opt/built
            contains: ^hi there$
          - name: start saw it
            file: /tmp/start-env
            contains: ^hi there$
          - name: commands do not
            command: echo "${GREETING-unset}"
            stdout: ^unset$
          - name: their own envs do
            command: echo "${GREETING-unset}"
            env: {GREETING: mine}
            stdout: ^mine$
        """,
    )
    project.render()
    run, entry = project.build(name)
    assert run.code == 0, run.err
    image = docker_client.images.get(entry["image_id"])
    assert json.loads(image.labels["dev.boxsmith.build-env"]) == {"GREETING": None}
    smoke = project.cli("smoke", "--local", name)
    assert smoke.code == 0, smoke.out + smoke.err
    assert re.search(rf"^passed +{name}:1\.0\.0 +checks 4/4 ", smoke.out, re.MULTILINE)


def test_failing_run_step_names_the_instruction_and_shows_its_output(project: Project) -> None:
    command = "echo step-says-hello && echo step-complains >&2 && exit 7"
    name = project.spec(
        "runfail",
        f"""\
        steps:
          - run: mkdir -p /opt/app
          - run: {command}
          - run: echo never-reached
        """,
    )
    project.render()
    spec_line = project.spec_line(name, "step-says-hello")
    docker_line = project.dockerfile_line(name, f"RUN {command}")

    run, entry = project.build(name)
    assert run.code == 3
    where = (
        f"template_specs/{name}.yaml:{spec_line}:5 "
        f"(generated/{name}/1.0.0/e2b.Dockerfile:{docker_line}): RUN {command}"
    )
    assert f"{name}:1.0.0: build failed: " in run.err
    assert "returned a non-zero code: 7" in run.err
    assert f"  failing instruction: {where}\n" in run.err
    assert "    step-says-hello\n" in run.err
    assert "    step-complains\n" in run.err
    assert "never-reached" not in run.err
    assert "build: 1 template(s): 1 failed" in run.err

    assert entry["status"] == "failed"
    assert entry["failed_step"] == where
    assert "returned a non-zero code: 7" in entry["reason"]
    assert entry["image_id"] == ""
    log = project.root / entry["log"]
    assert "step-says-hello" in log.read_text()


def test_start_cmd_that_never_gets_ready_times_out_quickly(project: Project) -> None:
    name = project.spec(
        "neverready",
        """\
        start_cmd: sleep infinity
        ready_cmd: test -e /tmp/never-there
        smoke:
          - command: "true"
        """,
    )
    project.render()
    run, _entry = project.build(name)
    assert run.code == 0, run.err

    start = time.monotonic()
    smoke = project.cli("smoke", "--local", name, "--ready-timeout", "5")
    elapsed = time.monotonic() - start
    assert smoke.code == 1
    assert elapsed < 120  # the message below says the 5 s timeout ended it; this catches a hang
    message = re.search(
        rf"^error: {name}:1\.0\.0: ready: not ready after 5s: "
        r"ready_cmd `test -e /tmp/never-there` never passed "
        r"\((\d+) attempts; last attempt: exit 1\)$",
        smoke.err,
        re.MULTILINE,
    )
    assert message, smoke.err
    assert 2 <= int(message[1]) <= 4
    assert "smoke: 1 template(s): 0 passed, 1 failed, 0 skipped" in smoke.err

    reports = project.root / ".boxsmith/reports"
    suites = _junit(reports / "smoke-container.xml")
    assert _counts(suites) == {"tests": "1", "failures": "0", "errors": "1", "skipped": "0"}
    (case,) = suites.iter("testcase")
    assert case.attrib["name"] == "ready"
    error = case.find("error")
    assert error is not None
    assert "never passed" in error.attrib["message"]

    (data,) = json.loads((reports / "smoke-container.json").read_text())["suites"]
    assert data["status"] == "error"
    assert data["stage"] == "ready"
    assert data["checks"] == []


def test_failing_check_says_what_was_expected_and_what_came(project: Project) -> None:
    name = project.spec(
        "badcheck",
        """\
        start_cmd: sleep 1000; echo nginx-never-started
        ready_cmd: "true"
        smoke:
          - name: runs as the sandbox user
            command: id -un
            stdout: "^user$"
          - name: wrong debian release
            command: cat /etc/debian_version
            stdout: "^11\\\\."
          - name: missing marker
            file: /opt/marker
            retries: 1
            interval: 0.5
          - name: nginx runs
            process: nginx
        """,
    )
    project.render()
    run, _entry = project.build(name)
    assert run.code == 0, run.err

    smoke = project.cli("smoke", "--local", name, "--json")
    assert smoke.code == 1
    assert re.search(
        rf"^error: {name}:1\.0\.0: check 'wrong debian release' failed: "
        r"expected exit 0, stdout matching /\^11\\\./; got exit 0, stdout: '12\.\d+'$",
        smoke.err,
        re.MULTILINE,
    ), smoke.err
    assert (
        f"error: {name}:1.0.0: check 'missing marker' failed: expected exists; got missing\n"
        in smoke.err
    )
    assert "runs as the sandbox user" not in smoke.err
    # The text of start_cmd is in the command line of the shell that runs it; a process check
    # looks at process names, so it does not mistake that shell for nginx.
    assert f"error: {name}:1.0.0: check 'nginx runs' failed: expected a process whose name" in (
        smoke.err
    )

    (data,) = json.loads(smoke.out)["suites"]
    assert data["status"] == "failed"
    assert data["counts"] == {"tests": 4, "passed": 1, "failed": 3, "errors": 0, "skipped": 0}
    assert [c["attempts"] for c in data["checks"]] == [1, 1, 2, 1]

    suites = _junit(project.root / ".boxsmith/reports/smoke-container.xml")
    assert _counts(suites) == {"tests": "4", "failures": "3", "errors": "0", "skipped": "0"}
    failures = [c for c in suites.iter("testcase") if c.find("failure") is not None]
    assert [c.attrib["name"] for c in failures] == [
        "wrong debian release",
        "missing marker",
        "nginx runs",
    ]


def test_lint_findings_point_at_the_spec_line(project: Project) -> None:
    name = project.spec(
        "lintme",
        """\
        steps:
          - run: mkdir -p /opt/app
          - run: apt-get update && apt-get install curl && rm -rf /var/lib/apt/lists/*
        """,
    )
    project.render()
    line = project.spec_line(name, "apt-get install curl")
    docker_line = project.dockerfile_line(name, "RUN apt-get update")

    run = project.cli("lint", "--json")
    assert run.code == 1
    report = json.loads(run.out)
    assert report["ok"] is False
    findings = {f["code"]: f for f in report["findings"]}
    assert {"DL3014", "DL3015"} <= set(findings)
    for code in ("DL3014", "DL3015"):
        finding = findings[code]
        assert finding["template"] == f"{name}:1.0.0"
        assert finding["spec"] == {"file": f"template_specs/{name}.yaml", "line": line, "column": 5}
        assert finding["generated"]["file"] == f"generated/{name}/1.0.0/e2b.Dockerfile"
        assert finding["generated"]["line"] == docker_line
    assert findings["DL3014"]["level"] == "warning"
    assert findings["DL3014"]["fails"] is True


def test_unchanged_template_is_cached_and_force_or_a_change_rebuilds(
    project: Project, docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = """\
        steps:
          - run: echo first > /opt/marker
        smoke:
          - file: /opt/marker
            contains: "{marker}"
        """
    name = project.spec("cached", body.format(marker="first"))
    project.render()
    first, built = project.build(name)
    assert first.code == 0, first.err
    assert built["status"] == "built"

    second, cached = project.build(name)
    assert second.code == 0, second.err
    assert cached["status"] == "cached"
    assert cached["image_id"] == built["image_id"]
    assert cached["build_key"] == built["build_key"]
    # Answered from the build record, without the engine building or even the spec models
    # loading: what made it fast (a wall-clock bound here only flaked on a busy machine).
    assert cached["seconds"] == 0.0
    assert "ok: 1 template(s): 1 cached (unchanged since .boxsmith/build-record.json)" in second.err
    assert "step 1/" not in second.err  # no docker build ran
    assert docker_client.images.get(project.image(name)).id == built["image_id"]

    # Without the record, the full run finds the image's build-key label equal: cached too.
    with monkeypatch.context() as env:
        env.setenv("BOXSMITH_NO_CACHE", "1")
        full, full_entry = project.build(name)
    assert full.code == 0, full.err
    assert full_entry["status"] == "cached"
    assert full_entry["image_id"] == built["image_id"]
    assert "ok: 1 template(s): 1 cached\n" in full.err
    assert "step 1/" not in full.err  # no docker build ran

    forced, rebuilt = project.build(name, "--force")
    assert forced.code == 0, forced.err
    assert rebuilt["status"] == "built"
    assert rebuilt["build_key"] == built["build_key"]

    # A no-change build is answered from the build record; once an image it names is gone (or
    # has another id), the record is not trusted and the full run rebuilds.
    recorded, _entry = project.build(name)
    assert "cached (unchanged since .boxsmith/build-record.json)" in recorded.err
    docker_client.images.remove(project.image(name))
    after_rmi, again = project.build(name)
    assert after_rmi.code == 0, after_rmi.err
    assert again["status"] == "built"
    assert "unchanged since" not in after_rmi.err

    project.spec("cached", body.replace("first", "second").format(marker="second"))
    project.render()
    changed_run, changed = project.build(name)
    assert changed_run.code == 0, changed_run.err
    assert changed["status"] == "built"
    assert changed["build_key"] != built["build_key"]
    assert changed["image_id"] != built["image_id"]
    image = docker_client.images.get(project.image(name))
    assert image.id == changed["image_id"]
    assert image.labels["dev.boxsmith.build-key"] == changed["build_key"]

    smoke = project.cli("smoke", "--local", name)
    assert smoke.code == 0, smoke.err


def test_start_cmd_that_fails_before_ready_reports_its_exit_code_and_output(
    project: Project,
) -> None:
    name = project.spec(
        "startfail",
        """\
        start_cmd: sh -c 'echo booting up; echo cannot bind port 9 >&2; exit 42'
        ready_cmd: test -e /tmp/never-there
        """,
    )
    project.render()
    run, _entry = project.build(name)
    assert run.code == 0, run.err

    start = time.monotonic()
    smoke = project.cli("smoke", "--local", name, "--ready-timeout", "600")
    elapsed = time.monotonic() - start
    assert smoke.code == 1
    # The start command's exit ended the wait (the message below names it), not the timeout: a
    # bound far under the 600 s catches a wait for the timeout without flaking on a slow machine.
    assert elapsed < 300
    assert (
        f"error: {name}:1.0.0: ready: start_cmd exited with code 42 before ready_cmd passed\n"
        "  start_cmd output (last lines):\n"
        "    booting up\n"
        "    cannot bind port 9\n"
    ) in smoke.err

    (data,) = json.loads((project.root / ".boxsmith/reports/smoke-container.json").read_text())[
        "suites"
    ]
    assert data["status"] == "error"
    assert data["stage"] == "ready"
    assert "code 42" in data["error"]
    assert data["output"] == "booting up\ncannot bind port 9"


def test_template_that_cannot_be_built_here_is_skipped_only_when_allowed(
    project: Project, docker_client: docker.DockerClient
) -> None:
    name = project.spec("unbuildable", "", base=UNBUILDABLE_BASE)
    project.render()

    allowed, entry = project.build(name, "--allow-skip")
    assert allowed.code == 0, allowed.err
    assert entry["status"] == "skipped"
    assert f"cannot provide base image {UNBUILDABLE_BASE}" in entry["reason"]
    assert "Python 3.11 only" in entry["reason"]
    assert "ok: 1 template(s): 1 skipped" in allowed.err

    refused = project.cli("build", name)
    assert refused.code == 3
    assert re.search(rf"^{name} +1\.0\.0 +failed ", refused.out, re.MULTILINE), refused.out
    assert (
        f"{name}:1.0.0: cannot build here: cannot provide base image {UNBUILDABLE_BASE}"
        in refused.err
    )
    assert "or pass --allow-skip to report it as skipped" in refused.err
    assert "fix the failing step" not in refused.err
    assert "build: 1 template(s): 1 failed" in refused.err
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(project.image(name))


def test_a_build_run_computes_the_project_fingerprint_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`answer` (the record no longer matches) and then `save` of one run: one fingerprint."""
    name = project.spec("once", "")
    settings = load_settings(project.root)
    context = [str(project.root / "template_specs" / f"{name}.yaml")]
    BuildRecord(settings, [name], [], False).save(context=context, rows=[], images={})
    project.spec("once", "steps:\n  - run: echo changed\n")  # the recorded fingerprint is stale
    computed: list[list[str]] = []
    real = stamp.fingerprint

    def counted(settings: Settings, files: Iterable[str]) -> str:
        computed.append(list(files))
        return real(settings, computed[-1])

    monkeypatch.setattr(stamp, "fingerprint", counted)
    run = BuildRecord(settings, [name], [], False)
    out, err = io.StringIO(), io.StringIO()
    assert run.answer(out=out, err=err, as_json=False) is None
    run.save(context=context, rows=[], images={})
    assert computed == [context]
    saved = json.loads((project.root / RECORD_FILE).read_text())
    assert saved["fingerprint"] == real(settings, context)
