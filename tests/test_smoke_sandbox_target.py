"""The smoke checks in a booted sandbox of the local backend, through the e2b SDK: the very same
runner and check kinds as in a local container, behind `SandboxTarget`.

Marked `docker`: a real backend process, a template built through the SDK, a real sandbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from e2b import Sandbox, Template, wait_for_port

from boxsmith._internal.smoke.protocol import TargetError
from boxsmith._internal.smoke.runner import run_checks
from boxsmith._internal.smoke.sandbox_target import SandboxTarget
from boxsmith._internal.spec.models import (
    CommandCheck,
    FileCheck,
    HttpCheck,
    PortCheck,
    ProcessCheck,
)
from tests.helpers import serving_backend
from tests.test_build_smoke import SERVER_PL

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("checks-backend")
    context = root / "context"
    context.mkdir()
    (context / "server.pl").write_text(SERVER_PL)
    with serving_backend(root):
        tpl = (
            Template(file_context_path=str(context))
            .from_image("debian:bookworm-slim")
            .copy("server.pl", "/usr/local/bin/boxsmith-server", mode=0o755)
            .run_cmd("echo 'greeting=hello' > /opt/greeting.txt", user="root")
            .set_start_cmd("/usr/local/bin/boxsmith-server 8080", wait_for_port(8080))
        )
        name = f"checks-{uuid.uuid4().hex[:8]}"
        Template.build(tpl, name)
        box = Sandbox.create(name, timeout=300)
        try:
            yield box
        finally:
            box.kill()


def test_every_check_kind_runs_in_a_sandbox(sandbox: Sandbox) -> None:
    target = SandboxTarget(sandbox, f"sandbox {sandbox.sandbox_id}")
    checks = [
        CommandCheck(command="whoami; echo oops >&2", stdout="^user$", stderr="oops"),
        CommandCheck(command="exit 4", exit_code=4),
        FileCheck(file="/opt/greeting.txt", contains="greeting=hello"),
        FileCheck(file="/opt/none", exists=False),
        PortCheck(port=8080),
        HttpCheck(http="http://localhost:8080/", body="hello from perl"),
        ProcessCheck(process="boxsmith-server", full=True),
    ]
    results = run_checks(target, checks)
    assert [r.status for r in results] == ["passed"] * len(checks), results


def test_a_failing_check_says_what_came(sandbox: Sandbox) -> None:
    target = SandboxTarget(sandbox, "sandbox")
    (wrong,) = run_checks(target, [CommandCheck(command="echo 12", stdout="^11$")])
    assert wrong.status == "failed"
    assert "12" in wrong.actual


def test_a_command_past_its_timeout_is_reported_as_such(sandbox: Sandbox) -> None:
    result = SandboxTarget(sandbox, "sandbox").run("sleep 10", timeout=1)
    assert result.timed_out


def test_reading_files_and_pseudo_files(sandbox: Sandbox) -> None:
    target = SandboxTarget(sandbox, "sandbox")
    assert target.read_file("/opt/greeting.txt") == b"greeting=hello\n"
    assert target.read_file("/opt/none") is None
    assert b"local_address" in (target.read_file("/proc/net/tcp") or b"")


def test_a_killed_sandbox_is_a_target_error(sandbox: Sandbox) -> None:
    other = Sandbox.create(sandbox.get_info().template_id, timeout=60)
    target = SandboxTarget(other, f"sandbox {other.sandbox_id}")
    assert target.run("true").exit_code == 0
    other.kill()
    with pytest.raises(TargetError, match="is gone"):
        target.run("true")
