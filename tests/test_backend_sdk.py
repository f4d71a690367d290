"""The local backend end to end: the unchanged e2b SDK over real HTTP against `boxsmith backend
serve` (a real process), templates built on the real Docker engine, sandboxes as containers.

Marked `docker`. One backend serves the module (started with its own data folder on a free
port); a restart test starts a second one on the same folder.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    BuildException,
    CommandExitException,
    NotFoundException,
    Sandbox,
    SandboxException,
    SandboxQuery,
    Template,
    wait_for_file,
)

from tests.helpers import Backend

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"


@pytest.fixture(scope="module")
def template(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A template built through the SDK: COPY, RUN, ENV, WORKDIR, USER, start and ready."""
    context = tmp_path_factory.mktemp("context")
    (context / "hello.txt").write_text("hello from the build context\n")
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    tpl = (
        Template(file_context_path=str(context))
        .from_image(BASE)
        .copy("hello.txt", "/opt/app/")
        .run_cmd("echo built > /opt/app/built.txt")
        .set_envs({"GREETING": "hi there"})
        .run_cmd("whoami > /tmp/builder-user", user="user")
        .set_workdir("/opt/app")
        .set_user("user")
        .set_start_cmd(
            "sh -c 'echo \"$GREETING\" > /tmp/start-env; sleep 1; touch /tmp/started; sleep 1000'",
            wait_for_file("/tmp/started"),
        )
    )
    logs: list[str] = []
    info = Template.build(
        tpl, f"{name}:v1", tags=["extra", "default"], on_build_logs=lambda e: logs.append(e.message)
    )
    assert info.template_id
    assert any("Step" in line or "step" in line for line in logs), logs[-5:]
    return name


@pytest.fixture(scope="module")
def python_template(backend: Backend) -> str:
    """A template with Python, as the user's pattern needs (python:3.11-slim, nothing added)."""
    name = f"sdk-py-{uuid.uuid4().hex[:8]}"
    Template.build(Template().from_image("python:3.11-slim"), name)
    return name


def test_template_build_tags_and_exists(backend: Backend, template: str) -> None:
    assert Template.exists(template)
    assert not Template.exists(f"missing-{uuid.uuid4().hex[:6]}")
    tags = {t.tag for t in Template.get_tags(template)}
    assert {"v1", "extra", "default"} <= tags


def test_tags_follow_e2bs_rules(template: str) -> None:
    """Trimmed and lowercased, then ^[a-z0-9-_.]+$ and not a UUID (build ids), as on E2B."""
    Template.assign_tags(f"{template}:v1", [" Canary "])
    assert "canary" in {t.tag for t in Template.get_tags(template)}
    assert Template.exists(template.upper())  # names and tags are looked up as stored
    Template.assign_tags(f"{template.upper()}:V1", ["canary2"])
    Template.remove_tags(template, ["CANARY2"])
    assert "canary2" not in {t.tag for t in Template.get_tags(template)}
    for bad in ("bad tag!", str(uuid.uuid4())):
        with pytest.raises(Exception, match=r"breaks E2B.s rule|reserves for build ids"):
            Template.assign_tags(f"{template}:v1", [bad])
    with pytest.raises(Exception, match="breaks E2B's rule"):
        Template.build(Template().from_image(BASE), f"{template}:v1", tags=["no spaces"])


def test_sandbox_from_built_template_runs_start_cmd_and_sees_every_step(template: str) -> None:
    sbx = Sandbox.create(
        f"{template}:v1", metadata={"suite": "sdk"}, envs={"TOKEN": "t1"}, timeout=120
    )
    try:
        assert sbx.files.exists("/tmp/started")  # ready_cmd waited for the start command
        run = sbx.commands.run(
            "cat /opt/app/hello.txt /opt/app/built.txt; echo ${GREETING-unset} $TOKEN; pwd; whoami"
        )
        assert run.stdout.splitlines() == [
            "hello from the build context",
            "built",
            "unset t1",  # a template's ENV is build-time only on E2B; the sandbox's envs stay
            "/opt/app",
            "user",
        ]
        assert sbx.files.read("/tmp/start-env") == "hi there\n"  # the start command had it
        mine = sbx.commands.run("echo $GREETING", envs={"GREETING": "mine"})
        assert mine.stdout == "mine\n"
        assert sbx.commands.run("cat /tmp/builder-user").stdout.strip() == "user"
        assert sbx.commands.run("whoami", user="root").stdout.strip() == "root"
        assert sbx.commands.run("sudo -n true").exit_code == 0
    finally:
        assert sbx.kill()


def test_failing_build_names_the_step(backend: Backend) -> None:
    tpl = Template().from_image(BASE).run_cmd("echo fine").run_cmd("echo broken >&2 && exit 7")
    with pytest.raises(BuildException) as caught:
        Template.build(tpl, f"broken-{uuid.uuid4().hex[:6]}")
    assert "exit" in str(caught.value) or "non-zero" in str(caught.value)


def test_commands(template: str) -> None:
    sbx = Sandbox.create(template, timeout=120)
    try:
        with pytest.raises(CommandExitException) as failed:
            sbx.commands.run("echo out; echo err >&2; exit 3")
        assert failed.value.exit_code == 3
        assert failed.value.stdout == "out\n"
        assert failed.value.stderr == "err\n"

        chunks: list[str] = []
        stamps: list[float] = []

        def on_stdout(data: str) -> None:
            chunks.append(data)
            stamps.append(time.monotonic())

        sbx.commands.run("echo one; sleep 1; echo two", on_stdout=on_stdout)
        assert "".join(chunks) == "one\ntwo\n"
        assert len(stamps) >= 2
        assert stamps[-1] - stamps[0] > 0.5  # streamed, not buffered

        run = sbx.commands.run("echo $A-$B; pwd", envs={"A": "x", "B": "y"}, cwd="/tmp")
        assert run.stdout == "x-y\n/tmp\n"

        handle = sbx.commands.run("sleep 60", background=True)
        assert handle.pid in {p.pid for p in sbx.commands.list()}
        assert sbx.commands.kill(handle.pid)
        assert not sbx.commands.kill(999_999)
        with pytest.raises(CommandExitException):
            handle.wait()
    finally:
        sbx.kill()


def test_files(template: str) -> None:
    sbx = Sandbox.create(template, timeout=120)
    try:
        sbx.files.write("/home/user/notes/a.txt", "alpha")
        assert sbx.files.read("/home/user/notes/a.txt") == "alpha"
        binary = bytes(range(256)) * 4
        sbx.files.write("/home/user/notes/b.bin", binary)
        assert sbx.files.read("/home/user/notes/b.bin", format="bytes") == binary
        names = {entry.name for entry in sbx.files.list("/home/user/notes")}
        assert names == {"a.txt", "b.bin"}
        assert sbx.files.exists("/home/user/notes/a.txt")
        assert not sbx.files.exists("/home/user/notes/zzz")
        assert sbx.files.make_dir("/home/user/made/deep")
        assert not sbx.files.make_dir("/home/user/made/deep")
        sbx.files.rename("/home/user/notes/a.txt", "/home/user/made/a.txt")
        assert sbx.files.read("/home/user/made/a.txt") == "alpha"
        sbx.files.remove("/home/user/made")
        assert not sbx.files.exists("/home/user/made")
        assert sbx.commands.run("stat -c %U /home/user/notes/b.bin").stdout.strip() == "user"
        with pytest.raises(NotFoundException):
            sbx.files.read("/home/user/none.txt")

        big = os.urandom(50 * 1024 * 1024)
        sbx.files.write("/home/user/big.bin", big)
        assert sbx.files.read("/home/user/big.bin", format="bytes") == big
    finally:
        sbx.kill()


def test_lifecycle_list_info_timeout_connect_kill(template: str) -> None:
    marker = uuid.uuid4().hex[:8]
    sbx = Sandbox.create(template, metadata={"marker": marker}, timeout=120)
    try:
        listed = Sandbox.list(query=SandboxQuery(metadata={"marker": marker})).next_items()
        assert [s.sandbox_id for s in listed] == [sbx.sandbox_id]
        info = sbx.get_info()
        assert info.metadata == {"marker": marker}
        before = info.end_at
        sbx.set_timeout(600)
        assert sbx.get_info().end_at > before
        again = Sandbox.connect(sbx.sandbox_id)
        assert again.commands.run("echo connected").stdout == "connected\n"
        assert sbx.is_running()
    finally:
        assert sbx.kill()
    assert not sbx.is_running()
    assert not Sandbox.kill(sbx.sandbox_id)
    with pytest.raises(SandboxException):
        sbx.commands.run("true")


def test_timeout_expiry_kills_the_sandbox(template: str) -> None:
    sbx = Sandbox.create(template, timeout=2)
    deadline = time.monotonic() + 60  # only catches a sandbox that never expires
    while sbx.is_running() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sbx.is_running()


def test_wrong_api_key_is_an_authentication_error(template: str) -> None:
    with pytest.raises(AuthenticationException):
        Sandbox.create(template, api_key="e2b_wrong")


def test_async_sandbox(template: str) -> None:
    async def scenario() -> None:
        sbx = await AsyncSandbox.create(template, timeout=120)
        try:
            await sbx.files.write("/home/user/async.txt", "from asyncio")
            run = await sbx.commands.run("cat /home/user/async.txt")
            assert run.stdout == "from asyncio"
            handle = await sbx.commands.run("sleep 30", background=True)
            assert await sbx.commands.kill(handle.pid)
        finally:
            await sbx.kill()

    asyncio.run(scenario())


def test_the_users_pattern_runs_unchanged(python_template: str) -> None:
    """The integration pattern agent code follows: create with metadata and timeout, write
    files, run, close; the user's code runs and what it writes is there."""
    main = "answer = 6 * 7\nwith open('answer.txt', 'w') as out:\n    print(answer, file=out)\n"
    files = {"/home/user/main.py": main + "print(answer)\n"}
    sbx = Sandbox.create(
        python_template,
        metadata={"template": python_template, "userID": "u1", "teamID": "t1"},
        timeout=600,
    )
    try:
        for path, content in files.items():
            sbx.files.write(path, content)
        result = sbx.commands.run("python3 /home/user/main.py", cwd="/home/user")
        assert (result.exit_code, result.stdout, result.stderr) == (0, "42\n", "")
        assert sbx.files.read("/home/user/main.py") == files["/home/user/main.py"]
        assert sbx.files.read("/home/user/answer.txt") == "42\n"
    finally:
        sbx.kill()


def test_restart_keeps_templates(backend: Backend, template: str) -> None:
    backend.stop()
    backend.start()
    assert Template.exists(template)
    sbx = Sandbox.create(template, timeout=60)
    try:
        assert sbx.commands.run("cat /opt/app/built.txt").stdout == "built\n"
    finally:
        sbx.kill()
