"""Faults of the local backend as a user's machine produces them: two starts at once, kill -9,
a damaged state file, an image removed behind the backend's back, orphans, a client killed
while its sandbox starts.

Marked `docker`. Each test starts its own backend the way commands do (`backend serve --detach`
or `targets.connect`, a real detached process on a free port, data in the project), drives it
with the e2b SDK over real HTTP, and afterwards stops it (kill -9 when it does not stop) and
removes what its id label marks, asserting no container of it is left.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from e2b import BuildException, RateLimitException, Sandbox, SandboxException, Template

from tests.helpers import cli, free_port, remove_backend_images

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"
LABEL = "dev.boxsmith.backend"
WAIT = 60.0  # seconds a cleanup may take before a test gives up on it (the old code: 600 s)


@dataclass
class Local:
    """A project whose local backend the test starts, with its data folder and id."""

    root: Path
    data: Path
    port: int

    @property
    def id(self) -> str:
        from boxsmith._internal.backend.datadir import backend_id

        return backend_id(self.data)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the backend as commands do (`targets.connect`); its URL."""
        from boxsmith._internal.publish.targets import connect
        from boxsmith.config import load_settings

        target = connect(load_settings(self.root), "local", err=io.StringIO())
        url = str(target.params["api_url"])
        key = str(target.params["api_key"])
        os.environ.update({"E2B_API_URL": url, "E2B_SANDBOX_URL": url, "E2B_API_KEY": key})
        return url

    def pid(self) -> int:
        return int(json.loads((self.data / "server.json").read_text())["pid"])

    def containers(self) -> list[str]:
        found = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL}={self.id}"})
        return [str(c.id) for c in found]

    def get(self, path: str) -> tuple[int, Any]:
        """GET `path` with the API key: (status, JSON body); fails rather than hangs."""
        key = (self.data / "api_key").read_text().strip()
        request = urllib.request.Request(self.url + path, headers={"X-API-KEY": key})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Local]:
    from boxsmith._internal.backend.control import stop

    (tmp_path / "template_specs").mkdir()
    port = free_port()
    monkeypatch.setenv("BOXSMITH_BACKEND_PORT", str(port))
    monkeypatch.delenv("BOXSMITH_BACKEND_DIR", raising=False)
    for name in ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    project = Local(tmp_path, tmp_path / ".boxsmith/backend", port)
    yield project
    with contextlib.suppress(Exception):
        stop(project.data)
    for pid in _servers(project.data):  # one whose server.json a test removed, or a second one
        os.kill(pid, signal.SIGKILL)
    for container_id in project.containers():
        docker.from_env().containers.get(container_id).remove(force=True)
    remove_backend_images(project.data)
    assert project.containers() == []


def _servers(data: Path) -> list[int]:
    """Pids of the `backend serve` processes of data folder `data` (this test's only)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and b"serve" in argv and str(data).encode() in argv:
            found.append(int(entry.name))
    return found


def _build(name: str, template: Any = None) -> Any:
    """Build `template` (default: the bare base image) as `name:v1`; its BuildInfo."""
    return Template.build(template or Template().from_image(BASE), f"{name}:v1")


def _until(condition: Any, what: str) -> None:
    """Poll `condition` until it holds; fail after WAIT seconds (a cleanup that never comes)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT:g}s"
        time.sleep(0.2)


def _serve(local: Local, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "boxsmith", "-C", str(local.root), "backend", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


# -- one data folder, one backend ----------------------------------------------------------------


def test_two_commands_starting_the_backend_at_once_end_with_one_server(local: Local) -> None:
    other = free_port()
    starts = [_serve(local, "--detach", "--port", str(p)) for p in (local.port, other)]
    results = [p.communicate(timeout=120) for p in starts]
    assert [p.returncode for p in starts] == [0, 0], [r[1] for r in results]
    # the loser attached to the winner: both print the same server's export lines
    assert results[0][0] == results[1][0]
    status = cli(local.root, "backend", "status", "--json")
    assert status.code == 0, status.err
    url = json.loads(status.out)["url"]
    assert f"export E2B_API_URL={url}".encode() in results[0][0]
    loser = other if url.endswith(f":{local.port}") else local.port
    with pytest.raises(urllib.error.URLError, match="refused"):  # nothing on the loser's port
        urllib.request.urlopen(f"http://127.0.0.1:{loser}/health", timeout=5)
    assert _servers(local.data) == [local.pid()]
    stopped = cli(local.root, "backend", "stop")
    assert "backend stopped" in stopped.err
    assert _servers(local.data) == []


def test_a_second_server_on_another_port_never_starts_on_a_folder_in_use(local: Local) -> None:
    local.start()
    _build(name := f"lock-{uuid.uuid4().hex[:6]}")
    sandbox = Sandbox.create(f"{name}:v1", timeout=120)
    # the state the old race left: the running server's server.json deleted by the loser
    (local.data / "server.json").unlink()
    second = _serve(local, "--port", str(free_port()))
    try:
        _, err = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert second.returncode == 2, err
    assert b"a backend already runs for" in err
    assert sandbox.commands.run("echo alive").stdout == "alive\n"  # its start-up killed nothing
    sandbox.kill()


# -- a damaged state file ------------------------------------------------------------------------


def test_a_damaged_state_file_is_named_with_the_way_out_and_reset_clears_it(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    from boxsmith._internal.publish.targets import live_builds
    from boxsmith.config import load_settings

    local.start()
    info = _build(f"dmg-{uuid.uuid4().hex[:6]}")
    assert live_builds(load_settings(local.root), "local") == {info.build_id}
    assert cli(local.root, "backend", "stop").code == 0
    with (local.data / "state.sqlite3").open("r+b") as state:
        state.truncate(10)

    started = cli(local.root, "backend", "serve", "--detach", "--port", str(local.port))
    assert started.code == 3, started.err
    assert "state (state.sqlite3 in its data folder) is damaged" in started.err
    assert "boxsmith backend reset" in started.err
    assert "internal error" not in started.err
    # releases plan the versions it had as new, never as released
    assert live_builds(load_settings(local.root), "local") == frozenset()

    asked = cli(local.root, "backend", "reset")  # no terminal here, no --yes
    assert asked.code == 2
    assert "add --yes" in asked.err
    assert (local.data / "state.sqlite3").exists()

    reset = cli(local.root, "backend", "reset", "--yes")
    assert reset.code == 0, reset.err
    assert "removed 0 container(s) and 1 image(s)" in reset.err
    assert list(local.data.iterdir()) == []
    images = docker.from_env().images.list(filters={"label": f"{LABEL}={local.id}"})
    assert images == []
    local.start()  # a fresh backend
    assert local.get("/templates") == (200, [])


def test_reset_refuses_a_folder_that_is_not_a_backends(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    refused = cli(tmp_path, "backend", "reset", "--yes", "--data-dir", str(tmp_path))
    assert refused.code == 2
    assert "does not look like a backend's data folder" in refused.err
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_state_file_damaged_under_a_running_backend_is_a_clear_500(local: Local) -> None:
    local.start()
    _build(name := f"run-{uuid.uuid4().hex[:6]}")
    with (local.data / "state.sqlite3").open("r+b") as state:
        state.truncate(10)
    for path in ("/templates", f"/templates/aliases/{name}"):
        status, body = local.get(path)
        assert status == 500
        assert set(body) == {"code", "message"}
        assert "is damaged" in body["message"]
        assert "boxsmith backend reset" in body["message"]
    with pytest.raises(SandboxException, match="boxsmith backend reset"):
        Sandbox.create(f"{name}:v1", timeout=60)
    stopped = cli(local.root, "backend", "stop")  # it still stops
    assert "backend stopped" in stopped.err


# -- images removed behind the backend's back, orphans --------------------------------------------


def test_a_removed_image_marks_its_build_broken_at_create_and_at_start(local: Local) -> None:
    from boxsmith._internal.publish.targets import live_builds
    from boxsmith.config import load_settings

    local.start()
    first, second = (f"img-{uuid.uuid4().hex[:6]}" for _ in range(2))
    one = _build(first)
    two = _build(second, Template().from_image(BASE).run_cmd("echo second > /tmp/second"))
    engine = docker.from_env()
    engine.images.remove(f"boxsmith-local/{first}:{one.build_id}")
    settings = load_settings(local.root)
    assert live_builds(settings, "local") == {two.build_id}  # publish/release: new again

    with pytest.raises(SandboxException) as refused:
        Sandbox.create(f"{first}:v1", timeout=60)
    assert one.build_id in str(refused.value)
    assert "its image was removed outside the backend" in str(refused.value)
    assert "pull" not in str(refused.value)
    status, body = local.get(f"/templates/{one.template_id}/builds/{one.build_id}/status")
    assert (status, body["status"]) == (200, "error")
    assert one.build_id in body["reason"]["message"]

    engine.images.remove(f"boxsmith-local/{second}:{two.build_id}")
    assert cli(local.root, "backend", "stop").code == 0
    local.start()  # the check at start
    status, body = local.get(f"/templates/{two.template_id}/builds/{two.build_id}/status")
    assert body["status"] == "error"
    assert "its image was removed outside the backend" in body["reason"]["message"]
    assert live_builds(settings, "local") == frozenset()


def test_orphan_images_and_containers_of_this_backend_only_are_removed_at_start(
    local: Local, tmp_path: Path
) -> None:
    local.start()
    kept = _build(f"kept-{uuid.uuid4().hex[:6]}")
    assert cli(local.root, "backend", "stop").code == 0
    engine = docker.from_env()
    other = f"other{uuid.uuid4().hex[:7]}"  # another backend's id on the same engine
    made: dict[str, tuple[str, str]] = {}
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {BASE}\nLABEL orphan-of=test\n")
    try:
        for owner in (local.id, other):
            image, _ = engine.images.build(
                path=str(context), labels={LABEL: owner, "case": uuid.uuid4().hex}, rm=True
            )
            container = engine.containers.run(
                BASE, ["sleep", "600"], labels={LABEL: owner}, detach=True
            )
            made[owner] = (str(image.id), str(container.id))
        local.start()
        mine_image, mine_container = made[local.id]
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(mine_image)
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(mine_container)
        theirs_image, theirs_container = made[other]
        assert engine.images.get(theirs_image).id == theirs_image
        assert engine.containers.get(theirs_container).status == "running"
        sandbox = Sandbox.create(kept.name, timeout=60)  # the known build's image stayed
        sandbox.kill()
    finally:
        for image_id, container_id in made.values():
            with contextlib.suppress(docker.errors.NotFound):
                engine.containers.get(container_id).remove(force=True)
            with contextlib.suppress(docker.errors.ImageNotFound):
                engine.images.remove(image_id, force=True)


# -- sandboxes whose client or backend dies ------------------------------------------------------

_CLIENT = """
import sys
from e2b import Sandbox
Sandbox.create(sys.argv[1], timeout=60)
"""


def test_a_create_whose_client_is_killed_removes_its_container_and_frees_its_place(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOXSMITH_BACKEND_MAX_SANDBOXES", "1")
    local.start()
    never = f"never-{uuid.uuid4().hex[:6]}"
    _build(never, Template().from_image(BASE).set_start_cmd("sleep 3600", "false"))
    _build(ready := f"ready-{uuid.uuid4().hex[:6]}")
    client = subprocess.Popen([sys.executable, "-c", _CLIENT, f"{never}:v1"])
    try:
        _until(lambda: local.containers() != [], "the sandbox container's start")
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    _until(lambda: local.containers() == [], "the removal of the abandoned sandbox's container")

    def created() -> bool:
        try:
            Sandbox.create(f"{ready}:v1", timeout=60).kill()
        except RateLimitException:
            return False
        return True

    _until(created, "the return of its place under BOXSMITH_BACKEND_MAX_SANDBOXES=1")


def test_the_next_start_reaps_the_sandbox_of_a_backend_killed_with_kill_9(local: Local) -> None:
    from boxsmith._internal.backend.datadir import read_info

    local.start()
    _build(name := f"reap-{uuid.uuid4().hex[:6]}")
    sandbox = Sandbox.create(f"{name}:v1", timeout=600)
    (container,) = local.containers()
    os.kill(local.pid(), signal.SIGKILL)
    _until(lambda: read_info(local.data) is None, "the killed backend's exit")
    assert local.containers() == [container]  # nobody reaped it yet
    local.start()
    assert local.containers() == []
    assert local.get("/v2/sandboxes") == (200, [])
    assert not sandbox.is_running()


# -- reset deletes only a folder shown to be a backend's -----------------------------------------


def _app_folder(folder: Path) -> Path:
    """A web app's folder: its own SQLite state file named like the backend's, and uploads."""
    import sqlite3

    (folder / "uploads").mkdir(parents=True)
    (folder / "uploads/photo.jpg").write_bytes(b"\xff\xd8 a user's photo")
    with contextlib.closing(sqlite3.connect(folder / "state.sqlite3")) as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ada')")
        db.commit()
    return folder


def test_reset_refuses_a_web_apps_folder_with_its_own_state_and_uploads(tmp_path: Path) -> None:
    from tests.helpers import snapshot

    app = _app_folder(tmp_path / "myapp")
    (app / "api_key").write_text("sk-the-apps-own-key\n")  # not of the backend's form
    before = snapshot(app)
    refused = cli(tmp_path, "backend", "reset", "--yes", "--data-dir", str(app))
    assert refused.code == 2, refused.err
    assert "does not look like a backend's data folder" in refused.err
    assert snapshot(app) == before


def test_reset_refuses_project_home_and_git_folders_even_with_a_backends_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import snapshot

    key = "e2b_local_" + "ab" * 20
    home = tmp_path / "home"
    project = home / "proj"
    checkout = tmp_path / "checkout"
    (project / "template_specs").mkdir(parents=True)
    (checkout / ".git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    cases = {
        project: "the project's root",
        home: "your home folder",
        checkout: "a git checkout",
    }
    for folder, why in cases.items():
        _app_folder(folder / "data").rename(folder / "appdata")  # something of the user's
        (folder / "api_key").write_text(key + "\n")
        before = snapshot(folder)
        refused = cli(project, "backend", "reset", "--yes", "--data-dir", str(folder))
        assert refused.code == 2, (folder, refused.err)
        assert why in refused.err
        assert snapshot(folder) == before


def test_reset_clears_a_backend_folder_whose_state_file_is_damaged(tmp_path: Path) -> None:
    """A damaged state file: the key's form proves the folder."""
    folder = tmp_path / "data"
    (folder / "uploads").mkdir(parents=True)
    (folder / "uploads/ctx.tar").write_bytes(b"context")
    (folder / "api_key").write_text("e2b_local_" + "0123456789" * 4 + "\n")
    (folder / "state.sqlite3").write_bytes(b"SQLite format 3\0" + b"\x07" * 40)
    reset = cli(tmp_path, "backend", "reset", "--yes", "--data-dir", str(folder))
    assert reset.code == 0, reset.err
    assert list(folder.iterdir()) == []


def test_reset_clears_a_backend_folder_shown_by_its_state_tables(tmp_path: Path) -> None:
    from boxsmith._internal.backend.store import Store

    folder = tmp_path / "data"
    folder.mkdir()
    Store(folder / "state.sqlite3")  # the backend's tables, no key
    reset = cli(tmp_path, "backend", "reset", "--yes", "--data-dir", str(folder))
    assert reset.code == 0, reset.err
    assert list(folder.iterdir()) == []


_BOXSMITH = (sys.executable, "-m", "boxsmith", "-C")


def test_the_reset_prompt_names_the_uploads_it_deletes(tmp_path: Path) -> None:
    import pty

    from boxsmith._internal.backend.datadir import api_key, make_private

    folder = tmp_path / "data"
    make_private(folder)
    key = api_key(folder)
    primary, secondary = pty.openpty()
    with os.fdopen(primary, "wb", buffering=0) as terminal:
        asked = subprocess.Popen(
            [*_BOXSMITH, str(tmp_path), "backend", "reset", "--data-dir", str(folder)],
            stdin=secondary,
            stderr=subprocess.PIPE,
        )
        os.close(secondary)
        terminal.write(b"n\n")
        _, err = asked.communicate(timeout=60)
    assert asked.returncode == 2, err
    assert f"{folder / 'uploads'}/".encode() in err
    assert b"reset cancelled: nothing was changed" in err
    assert (folder / "api_key").read_text().strip() == key


# -- server.json of a killed server --------------------------------------------------------------


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process, as one the kernel gave a dead server's pid to."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def _stale_info(folder: Path, pid: int) -> None:
    from boxsmith._internal.backend.datadir import make_private

    make_private(folder)
    info = {"pid": pid, "url": "http://127.0.0.1:9", "started": 0, "data_dir": str(folder)}
    (folder / "server.json").write_text(json.dumps(info))


def test_stop_never_signals_a_pid_that_is_not_the_lock_holders(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    from boxsmith._internal.backend.datadir import acquire

    folder = tmp_path / "data"
    _stale_info(folder, bystander.pid)
    # a server starting meanwhile holds the lock (its pid in it), before it wrote server.json
    lock = acquire(folder / "server.lock", wait=5)
    assert lock is not None
    try:
        os.write(lock, f"{os.getpid()}\n".encode())
        status = cli(tmp_path, "backend", "status", "--data-dir", str(folder))
        stopped = cli(tmp_path, "backend", "stop", "--data-dir", str(folder))
    finally:
        os.close(lock)
    assert status.code == 3, status.out
    assert "no backend runs for this data folder" in stopped.err
    assert bystander.poll() is None  # never SIGTERMed


def test_a_starting_server_removes_a_stale_server_json_once_it_holds_the_lock(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    import socket

    folder = tmp_path / "data"
    _stale_info(folder, bystander.pid)
    with socket.socket() as busy:  # the start fails after the lock, before reconcile
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        served = subprocess.run(
            [
                *_BOXSMITH,
                str(tmp_path),
                "backend",
                "serve",
                "--data-dir",
                str(folder),
                "--port",
                port,
            ],
            check=False,
            capture_output=True,
            timeout=60,
        )
    assert served.returncode == 3, served.stderr
    assert not (folder / "server.json").exists()
    assert bystander.poll() is None


# -- state writes that fail --------------------------------------------------------------------


@contextlib.contextmanager
def _writer(local: Local) -> Iterator[Any]:
    """A connection to the served backend's state file, as another writer's; open until the
    test is done (the file's WAL is shared while it is)."""
    import sqlite3

    db = sqlite3.connect(local.data / "state.sqlite3", isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def _build_in_thread(name: str) -> tuple[Any, list[BaseException]]:
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            _build(name)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)  # the old code polls forever
    thread.start()
    return thread, errors


def test_a_build_whose_failure_cannot_be_logged_still_ends_failed(local: Local) -> None:
    local.start()
    with _writer(local) as db:
        db.execute(
            "CREATE TRIGGER no_logs BEFORE INSERT ON build_logs BEGIN"
            " SELECT RAISE(ABORT, 'the log table refuses writes'); END"
        )
        thread, errors = _build_in_thread(name := f"nolog-{uuid.uuid4().hex[:6]}")
        thread.join(WAIT)
        assert not thread.is_alive(), "the build stayed `building`"
        (build,) = db.execute(
            "SELECT builds.* FROM builds JOIN templates ON templates.id = template_id"
            " WHERE templates.name = ?",
            (name,),
        ).fetchall()
    (error,) = errors
    assert isinstance(error, BuildException)
    assert "internal error in the local backend" in str(error)
    assert build[2] == "error"  # status


def test_corruption_sqlite_reports_at_a_new_build_is_named_damaged(local: Local) -> None:
    local.start()
    with _writer(local) as db:
        # the builds' id index pointed at a free page: SQLite says "database disk image is
        # malformed" when a build is added, while the reads before it work
        db.execute("CREATE TABLE scratch (x)")
        (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'scratch'").fetchone()
        db.execute("DROP TABLE scratch")
        (version,) = db.execute("PRAGMA schema_version").fetchone()
        db.execute("PRAGMA writable_schema=ON")
        db.execute(
            "UPDATE sqlite_master SET rootpage = ? WHERE name = 'sqlite_autoindex_builds_1'",
            (page,),
        )
        db.execute(f"PRAGMA schema_version = {version + 1}")
        with pytest.raises(BuildException) as refused:
            _build(f"corrupt-{uuid.uuid4().hex[:6]}")
    assert "is damaged (database disk image is malformed)" in str(refused.value)
    assert "boxsmith backend reset" in str(refused.value)
    status, body = local.get("/templates")  # from then on, every request says so
    assert status == 500
    assert "is damaged" in body["message"]


def test_a_sandbox_whose_record_cannot_be_written_leaves_no_container(local: Local) -> None:
    import threading

    local.start()
    _build(name := f"locked-{uuid.uuid4().hex[:6]}")
    errors: list[BaseException] = []

    def create() -> None:
        try:
            Sandbox.create(f"{name}:v1", timeout=120, request_timeout=120)
        except BaseException as exc:
            errors.append(exc)

    with _writer(local) as db:
        db.execute("BEGIN IMMEDIATE")  # the record waits, then "database is locked"
        try:
            thread = threading.Thread(target=create)
            thread.start()
            _until(lambda: local.containers() != [], "the sandbox container's start")
            thread.join(WAIT + 60)
            assert not thread.is_alive()
        finally:
            db.execute("ROLLBACK")
    (error,) = errors
    assert isinstance(error, SandboxException)
    assert local.containers() == []  # removed before the answer, not left running untracked
    assert local.get("/v2/sandboxes") == (200, [])


# -- a sandbox whose container died ----------------------------------------------------------------


def test_a_sandbox_whose_container_was_removed_frees_its_place(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOXSMITH_BACKEND_MAX_SANDBOXES", "1")
    local.start()
    _build(name := f"died-{uuid.uuid4().hex[:6]}")
    sandbox = Sandbox.create(f"{name}:v1", timeout=3600)
    (container,) = local.containers()
    docker.from_env().containers.get(container).remove(force=True)  # OOM, `docker rm`
    _until(
        lambda: local.get(f"/sandboxes/{sandbox.sandbox_id}")[0] == 404,
        "the backend noticing the sandbox is gone",
    )
    assert not sandbox.is_running()
    assert local.get("/v2/sandboxes") == (200, [])
    Sandbox.create(f"{name}:v1", timeout=60).kill()  # its place is free again
