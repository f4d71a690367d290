"""Faults around runs: two at once, a run killed with kill -9, a backend that dies mid-check.

Every run here is a real CLI process (`python -m boxsmith`), so that it can wait on another
process's lock or be killed. The lock is held from this test process with
`boxsmith._internal.lock.hold`, which makes "the other run holds it" a fact before the CLI starts,
not a race. Tests that need
Docker only touch containers and images they made: template names carry a per-test token, and
containers are found by labels that carry it (or by the id the test got).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import docker
import docker.errors
import pytest

from boxsmith._internal.docker.client import EXPIRES_LABEL, LABEL, PROJECT_LABEL
from boxsmith._internal.lock import hold
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith.config import load_settings
from tests.helpers import Backend, remove_backend_images, write_tree

BASE = "debian:bookworm-slim"


def _command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "boxsmith", "-C", str(root), *args]


def _run(
    root: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`boxsmith -C root args...` as a process of its own, to its end."""
    return subprocess.run(
        _command(root, *args),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def _start(root: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """`boxsmith -C root args...` started in the background, stderr piped."""
    return subprocess.Popen(
        _command(root, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _until(condition: str, probe: object, limit: float = 180.0) -> None:
    """Poll `probe()` until it is true; fail naming `condition` after `limit` seconds (a bound
    for a hung engine, far above the time the condition needs)."""
    assert callable(probe)
    deadline = time.monotonic() + limit
    while not probe():
        assert time.monotonic() < deadline, f"not within {limit:g}s: {condition}"
        time.sleep(0.2)


def _line_with(stream: object, text: str, limit: float = 60.0) -> str:
    """Read lines from `stream` until one contains `text` (it is printed before the process
    blocks, so this returns); fail at end of stream, or after `limit` seconds without it (a
    bound on a hang: a process that blocks without saying so would keep the stream open)."""
    assert hasattr(stream, "readline")
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        while line := stream.readline():
            lines.put(str(line))
        lines.put("")  # end of stream

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if not line:
            break
        if text in line:
            return line
        seen.append(line)
    raise AssertionError(f"{text!r} never came; stderr was:\n{''.join(seen)}")


# -- the project lock --------------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True], ids=["normal", "quiet"])
def test_a_second_run_waits_for_the_holder_named_on_stderr(
    minimal_project: Path, quiet: bool
) -> None:
    """Also under -q, which holds other lines until the end: a wait is said while it lasts."""
    settings = load_settings(minimal_project)
    with hold(settings, "test-holder"):
        render = _start(minimal_project, *(["-q"] if quiet else []), "render")
        assert render.stderr is not None
        line = _line_with(render.stderr, "waiting for")
        assert f"pid {os.getpid()} (test-holder) since " in line
        assert ".boxsmith/lock" in line
        assert render.poll() is None  # still waiting: nothing written while we hold it
        assert not (minimal_project / "generated").exists()
    out, rest = render.communicate(timeout=120)
    assert render.returncode == 0, rest
    if not quiet:
        assert "create    generated/app/1.0.0/e2b.toml" in out


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_wait_refuses_with_exit_3_and_a_fix(minimal_project: Path, how: str) -> None:
    args, env = (["--no-wait"], {}) if how == "flag" else ([], {"BOXSMITH_NO_WAIT": "1"})
    with hold(load_settings(minimal_project), "test-holder"):
        refused = _run(minimal_project, *args, "render", env=env)
    assert refused.returncode == 3, refused.stderr
    assert f"error: pid {os.getpid()} (test-holder) since " in refused.stderr
    assert "holds this project's lock (.boxsmith/lock)" in refused.stderr
    assert "  fix: wait for that run to finish" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (minimal_project / "generated").exists()


def test_every_state_changing_command_takes_the_lock(minimal_project: Path) -> None:
    assert _run(minimal_project, "render").returncode == 0
    commands = (
        ["render"],
        ["build", "--force"],
        ["publish", "--target", "e2b"],
        ["smoke", "--target", "e2b"],
        ["release", "--target", "e2b"],
        ["promote", "app", "--target", "e2b"],
        ["rollback", "app", "--target", "e2b"],
    )
    with hold(load_settings(minimal_project), "test-holder"):
        for args in commands:
            refused = _run(minimal_project, "--no-wait", *args)
            assert refused.returncode == 3, (args, refused.stderr)
            assert "(test-holder)" in refused.stderr, (args, refused.stderr)


def test_read_only_commands_take_no_lock(minimal_project: Path) -> None:
    assert _run(minimal_project, "render").returncode == 0
    with hold(load_settings(minimal_project), "test-holder"):
        for args in (
            ["validate"],
            ["check"],
            ["list"],
            ["render", "--dry-run"],
            ["schema", "--stdout"],
        ):
            done = _run(minimal_project, "--no-wait", *args)
            assert done.returncode == 0, (args, done.stderr)


def test_the_lock_goes_with_a_holder_killed_with_kill_9(minimal_project: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from boxsmith.config import load_settings\n"
            "from boxsmith._internal.lock import hold\n"
            "with hold(load_settings(sys.argv[1]), 'doomed'):\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.read()\n",
            str(minimal_project),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        refused = _run(minimal_project, "--no-wait", "render")
        assert refused.returncode == 3
        assert f"pid {holder.pid} (doomed)" in refused.stderr
    finally:
        holder.kill()  # SIGKILL: no clean-up code of its runs
        holder.communicate()
    done = _run(minimal_project, "--no-wait", "render")
    assert done.returncode == 0, done.stderr


# -- two releases at once ----------------------------------------------------------------------

RELEASE_SPEC = """\
name: {name}
version: "1.0.0"
description: two releases at once
base_image: debian:bookworm-slim
steps:
  - run: echo 1 > /opt/v
smoke:
  - command: cat /opt/v
    stdout: "^1$"
"""


@pytest.mark.docker
def test_two_releases_at_once_publish_each_version_once(backend_project: Path) -> None:
    token = uuid.uuid4().hex[:8]
    names = [f"twice-{token}", f"again-{token}"]
    write_tree(
        backend_project,
        {f"template_specs/{n}.yaml": RELEASE_SPEC.format(name=n) for n in names},
    )
    logs = [(backend_project / f"out{n}", backend_project / f"err{n}") for n in (1, 2)]
    try:
        runs = []
        for out, err in logs:  # to files: a pipe nobody reads would stall the holder
            with out.open("w") as stdout, err.open("w") as stderr:
                runs.append(
                    subprocess.Popen(
                        _command(backend_project, "release", "--json"),
                        stdout=stdout,
                        stderr=stderr,
                    )
                )
        codes = [run.wait(timeout=900) for run in runs]
    finally:
        client = docker.from_env()
        mine = f"{PROJECT_LABEL}={load_settings(backend_project).project_id}"
        for image in client.images.list(filters={"label": mine}):  # the proof builds
            client.images.remove(image.id, force=True)
    outcomes = [(out.read_text(), err.read_text()) for out, err in logs]
    for (_out, err), code in zip(outcomes, codes, strict=True):
        assert code == 0, err
    index = load_index(backend_project / "generated" / INDEX_FILE, INDEX_FILE)
    for name in names:
        entry = index.entry(name, "1.0.0")
        assert entry is not None
        assert len(entry.records("local")) == 1, entry.records("local")
    changes = sorted(
        tuple(sorted(row["change"] for row in json.loads(out)["templates"]))
        for out, _err in outcomes
    )
    assert changes == [("new", "new"), ("released", "released")]


# -- smoke --local killed with kill -9 ---------------------------------------------------------

SLOW_SMOKE = """\
name: {name}
version: "1.0.0"
description: a check that runs long
base_image: debian:bookworm-slim
smoke:
  - command: sleep 300
    timeout: 600
"""


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.images.get(BASE)  # the base every spec here uses (the setup job made it)
    yield client
    client.close()


def _mine(client: docker.DockerClient, label: str, status: str | None = None) -> list[str]:
    filters = {"label": label, **({"status": status} if status else {})}
    return [str(c.id) for c in client.containers.list(all=True, filters=filters)]


@pytest.mark.docker
def test_a_killed_smoke_local_leaves_no_container_past_its_deadline(
    project: Path, docker_client: docker.DockerClient
) -> None:
    name = f"slow-{uuid.uuid4().hex[:8]}"
    write_tree(project, {f"template_specs/{name}.yaml": SLOW_SMOKE.format(name=name)})
    mine = f"dev.boxsmith.template={name}:1.0.0"
    try:
        assert _run(project, "render").returncode == 0
        built = _run(project, "build")
        assert built.returncode == 0, built.stderr
        smoke = _start(project, "smoke", "--local", env={"BOXSMITH_CONTAINER_LIFETIME": "15"})
        try:
            # running, not only created: a run killed between the engine's create and start
            # leaves a container that never starts its deadline (the next command's sweep of
            # expired containers removes that one; test_the_next_command_removes_...)
            _until("the smoke container runs", lambda: _mine(docker_client, mine, "running"))
            (container_id,) = _mine(docker_client, mine)
            labels = docker_client.containers.get(container_id).labels
            assert labels[PROJECT_LABEL] == load_settings(project).project_id
            assert float(labels[EXPIRES_LABEL]) <= time.time() + 16
        finally:
            smoke.send_signal(signal.SIGKILL)
            smoke.communicate()
        assert smoke.returncode == -signal.SIGKILL
        _until("the container is gone after its 15 s", lambda: not _mine(docker_client, mine))
    finally:
        for container_id in _mine(docker_client, mine):
            docker_client.containers.get(container_id).remove(force=True)
        own = f"{PROJECT_LABEL}={load_settings(project).project_id}"
        for image in docker_client.images.list(filters={"label": own}):
            docker_client.images.remove(image.id, force=True)


@pytest.mark.docker
def test_the_next_command_removes_expired_containers_of_its_project(
    project: Path, docker_client: docker.DockerClient
) -> None:
    """A container left past its expiry (its main process did not end it) is removed by the
    next command of the project that uses the engine; one not yet expired, or of another
    project, is left alone."""
    settings = load_settings(project)
    past, future = str(int(time.time()) - 5), str(int(time.time()) + 3600)
    token = uuid.uuid4().hex[:8]

    def leftover(project_id: str, expires: str) -> str:
        labels = {
            LABEL: "1",
            PROJECT_LABEL: project_id,
            EXPIRES_LABEL: expires,
            "dev.boxsmith.test": token,
        }
        container = docker_client.containers.run(BASE, ["sleep", "600"], labels=labels, detach=True)
        return str(container.id)

    made = [
        leftover(settings.project_id, past),
        leftover(settings.project_id, future),
        leftover("0" * 12, past),
    ]
    try:
        done = _run(project, "images", "ensure", BASE)
        assert done.returncode == 0, done.stderr
        left = set(_mine(docker_client, f"dev.boxsmith.test={token}"))
        assert left == set(made[1:])
    finally:
        for container_id in made:
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.containers.get(container_id).remove(force=True)


# -- the backend dies while a sandbox smoke runs -----------------------------------------------


@pytest.mark.docker
def test_the_backend_dying_mid_check_is_exit_3_not_a_failed_check(
    project: Path, docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"dies-{uuid.uuid4().hex[:8]}"
    write_tree(project, {f"template_specs/{name}.yaml": SLOW_SMOKE.format(name=name)})
    data = project / ".boxsmith" / "backend"
    data.mkdir(parents=True)
    server = Backend(project, data)
    monkeypatch.setenv("BOXSMITH_BACKEND_PORT", str(server.port))
    monkeypatch.delenv("BOXSMITH_BACKEND_DIR", raising=False)
    sandboxes = f"dev.boxsmith.backend={server.backend_id}"
    server.start()
    try:
        assert _run(project, "render").returncode == 0
        published = _run(project, "publish")
        assert published.returncode == 0, published.stderr
        smoke = _start(project, "smoke", "--target", "local")

        def check_runs() -> bool:
            for container_id in _mine(docker_client, sandboxes):
                container = docker_client.containers.get(container_id)
                if container.status == "running":
                    top = container.top()
                    if any("sleep 300" in row[-1] for row in top.get("Processes") or []):
                        return True
            return False

        _until("the smoke check runs in a sandbox", check_runs)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        out, err = smoke.communicate(timeout=120)
        assert smoke.returncode == 3, out + err
        assert f"local backend {server.url} stopped answering while `sleep 300` ran" in err
        assert "  fix: check that the backend runs" in err
        assert "no exit within" not in out + err
    finally:
        server.stop()
        for container_id in _mine(docker_client, sandboxes):  # a killed backend reaps nothing
            docker_client.containers.get(container_id).remove(force=True)
        remove_backend_images(data)
