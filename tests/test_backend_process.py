"""envd's process service over the real wire: the SDK's own `Commands` (and its generated Connect
client) against `guard_sandbox(process_app(...))` served by uvicorn in a thread, on a container
of the parity base of debian:bookworm-slim (made when missing, as a backend build makes it).

Marked `docker`: without an engine these tests skip, except under CI (`CI` set), where they fail.
One container and one server serve the module.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
import docker.models.containers
import pytest
import uvicorn
from e2b import CommandExitException
from e2b.api.client_sync import get_envd_api
from e2b.connection_config import ConnectionConfig
from e2b.envd.client_sync import create_rpc_client
from e2b.envd.process import process_connect, process_pb
from e2b.exceptions import InvalidArgumentException, SandboxNotRunningException
from e2b.sandbox_sync.commands.command import Commands
from packaging.version import Version

from boxsmith._internal.backend.envd.process import ProcessService, process_app
from boxsmith._internal.backend.runtime import SandboxGone, SandboxHandle, guard_sandbox
from boxsmith._internal.build.base_images import resolve_mirrors
from boxsmith._internal.build.parity import parity_base
from boxsmith._internal.docker.client import Engine, EngineUnavailable
from boxsmith._internal.docker.host_ca import host_ca_bundle

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"
SANDBOX_ID = "iprocesstest"
LABELS = {"dev.boxsmith": "1", "dev.boxsmith.test": "process"}


@dataclass
class Env:
    url: str
    container: docker.models.containers.Container
    service: ProcessService


class OneSandbox:
    """The test's `Sandboxes`: one id mapped to one container."""

    def __init__(self, container_id: str) -> None:
        self.handle = SandboxHandle(
            id=SANDBOX_ID,
            container_id=container_id,
            user="user",
            workdir="/home/user",
            home="/home/user",
            env={"FROM_SANDBOX": "yes"},
        )

    def get(self, sandbox_id: str) -> SandboxHandle:
        if sandbox_id != self.handle.id:
            raise SandboxGone(sandbox_id)
        return self.handle

    def handles(self) -> list[SandboxHandle]:
        return [self.handle]


def _parity_image() -> str:
    """The parity base of BASE, built when missing; skips without an engine (fails under CI)."""
    ca = host_ca_bundle()
    try:
        with Engine() as engine:
            mirrors = resolve_mirrors()
            return parity_base(
                engine, BASE, mirrors=mirrors, ca=ca.read_bytes() if ca else None
            ).tag
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(exc.message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    image = _parity_image()
    client = docker.from_env()
    container = client.containers.run(image, ["sleep", "infinity"], detach=True, labels=LABELS)
    port = _free_port()
    sandboxes = OneSandbox(container.id or "")
    served = process_app(sandboxes, client)
    app = guard_sandbox(served, sandboxes)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60  # only catches a hang
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield Env(f"http://127.0.0.1:{port}", container, served.service)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        container.remove(force=True)
        client.close()


def _config(url: str, sandbox_id: str = SANDBOX_ID) -> ConnectionConfig:
    return ConnectionConfig(
        api_key="local",
        sandbox_url=url,
        extra_sandbox_headers={"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983"},
    )


def _commands(url: str, sandbox_id: str = SANDBOX_ID) -> Commands:
    config = _config(url, sandbox_id)
    return Commands(url, config, Version("0.5.7"), get_envd_api(config, url))


@pytest.fixture
def commands(env: Env) -> Commands:
    return _commands(env.url)


def _count(container: docker.models.containers.Container, pattern: str) -> int:
    """Live processes whose command line starts with `pattern` (zombies have none)."""
    script = (
        'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done'
        f' | grep -c "^{pattern}" || true'
    )
    output = container.exec_run(["sh", "-c", script]).output
    assert isinstance(output, bytes)
    return int(output.decode().strip())


def _wait_gone(commands: Commands, pid: int, since: float) -> float:
    """Seconds from `since` (a monotonic time) until `pid` is no longer listed; fails after a
    minute (a hang, not a slow machine)."""
    while any(p.pid == pid for p in commands.list()):
        assert time.monotonic() - since < 60, f"process {pid} still listed"
        time.sleep(0.1)
    return time.monotonic() - since


def test_foreground_stdout_stderr_exit_zero(commands: Commands) -> None:
    result = commands.run("echo out; echo err >&2")
    assert (result.stdout, result.stderr, result.exit_code, result.error) == (
        "out\n",
        "err\n",
        0,
        None,
    )


def test_nonzero_exit_raises(commands: Commands) -> None:
    with pytest.raises(CommandExitException) as info:
        commands.run("echo partial; exit 3")
    assert (info.value.exit_code, info.value.error, info.value.stdout) == (
        3,
        "exit status 3",
        "partial\n",
    )


def test_output_streams_before_the_end(env: Env, commands: Commands) -> None:
    # The command ends only once the test has seen its first line: were output held back
    # until the end, it would never end (the 30 s timeout fails the test instead).
    gate = f"/tmp/gate-{uuid.uuid4().hex}"
    seen: list[str] = []

    def on_stdout(chunk: str) -> None:
        if not seen:
            assert env.container.exec_run(["touch", gate]).exit_code == 0
        seen.append(chunk)

    result = commands.run(
        f"echo one; while [ ! -e {gate} ]; do sleep 0.05; done; echo two",
        on_stdout=on_stdout,
        timeout=30,
    )
    assert result.stdout == "one\ntwo\n"
    assert seen == ["one\n", "two\n"]


def test_concurrent_commands(commands: Commands) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: commands.run(f"sleep 0.2; echo {i}"), range(8)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]


def test_envs_cwd_and_sandbox_env(commands: Commands) -> None:
    result = commands.run("echo $FOO $FROM_SANDBOX $USER; pwd", envs={"FOO": "bar"}, cwd="/tmp")
    assert result.stdout == "bar yes user\n/tmp\n"
    assert commands.run("pwd").stdout == "/home/user\n"


def test_user_default_and_root(commands: Commands) -> None:
    assert commands.run("id -un; echo $HOME").stdout == "user\n/home/user\n"
    assert commands.run("id -un; echo $HOME", user="root").stdout == "root\n/root\n"


def test_background_list_kill(commands: Commands) -> None:
    handle = commands.run("sleep 100", background=True, envs={"K": "v"}, cwd="/tmp")
    listed = {p.pid: p for p in commands.list()}
    info = listed[handle.pid]
    assert (info.cmd, info.args, info.envs, info.cwd) == (
        "/bin/bash",
        ["-l", "-c", "sleep 100"],
        {"K": "v"},
        "/tmp",
    )
    assert commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as ended:
        handle.wait()
    assert (ended.value.exit_code, ended.value.error) == (-1, "signal: killed")
    assert handle.pid not in {p.pid for p in commands.list()}
    assert commands.kill(handle.pid) is False
    assert commands.kill(999_999) is False


def test_kill_takes_the_process_group(env: Env, commands: Commands) -> None:
    handle = commands.run("sleep 1001 & sleep 1002", background=True)
    deadline = time.monotonic() + 60  # only catches a hang
    while _count(env.container, "sleep 100[12]") < 2:
        assert time.monotonic() < deadline, "the sleeps did not start"
        time.sleep(0.05)
    assert commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException):
        handle.wait()
    assert _count(env.container, "sleep 100[12]") == 0


def test_connect_gets_new_output_and_the_end(commands: Commands) -> None:
    handle = commands.run("sleep 0.5; echo later", background=True)
    attached = commands.connect(handle.pid)
    result = attached.wait()
    assert (result.stdout, result.exit_code) == ("later\n", 0)


def test_timeout_is_the_process_lifetime(env: Env, commands: Commands) -> None:
    start = time.monotonic()
    # 600 s alone: only the 2 s lifetime ends it within _wait_gone's minute
    handle = commands.run("sleep 600", background=True, timeout=2)
    elapsed = _wait_gone(commands, handle.pid, since=start)
    assert elapsed > 1.5  # killed by the 2 s lifetime, not before it
    assert _count(env.container, "sleep 600") == 0
    handle.disconnect()


def test_keepalive_when_silent(env: Env) -> None:
    rpc = create_rpc_client(process_connect.ProcessClientSync, env.url, _config(env.url))
    request = process_pb.StartRequest(
        process=process_pb.ProcessConfig(cmd="/bin/sh", args=["-c", "sleep 1.2; echo done"])
    )
    stream = rpc.start(
        request,
        headers={"E2b-Sandbox-Id": SANDBOX_ID, "Keepalive-Ping-Interval": "0.4"},
        timeout_ms=10_000,
    )
    kinds = [
        response.event.event.field for response in stream if response.event and response.event.event
    ]
    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    assert kinds.count("keepalive") >= 2
    assert "data" in kinds


def test_stdin_send_and_close(commands: Commands) -> None:
    handle = commands.run("cat", background=True, stdin=True)
    commands.send_stdin(handle.pid, "hello\n")
    commands.send_stdin(handle.pid, b"world\n")
    commands.close_stdin(handle.pid)
    assert handle.wait().stdout == "hello\nworld\n"


def test_unknown_sandbox_is_502_not_running(env: Env) -> None:
    with pytest.raises(SandboxNotRunningException, match="was not found"):
        _commands(env.url, "inope").run("true")
    request = urllib.request.Request(
        env.url + "/process.Process/List",
        data=b"{}",
        headers={"Content-Type": "application/json", "E2b-Sandbox-Id": "inope"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 502
    assert json.loads(info.value.read()) == {
        "code": 502,
        "message": "The sandbox inope was not found",
    }
    info.value.close()


def test_start_failure_is_an_error_not_a_process(commands: Commands) -> None:
    with pytest.raises(InvalidArgumentException, match="/nonexistent"):
        commands.run("true", cwd="/nonexistent")


def test_forget_ends_followers_as_not_running(env: Env, commands: Commands) -> None:
    handle = commands.run("sleep 1003", background=True)
    env.service.forget(SANDBOX_ID)  # from this thread, as the sandbox reaper calls it
    with pytest.raises(SandboxNotRunningException, match="was not found"):
        handle.wait()
    assert commands.list() == []
    # The process itself runs on (the container outlives this test); its pid is the real one.
    assert env.container.exec_run(["sh", "-c", f"kill -9 {handle.pid}"]).exit_code == 0
