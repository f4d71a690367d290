"""envd's filesystem on a container (`boxsmith._internal.backend.envd.files`, `envd.transfer`),
driven by the unchanged e2b SDK's own `Filesystem` classes over real HTTP: a uvicorn server in a
thread serves the Connect app and `/files` for one container of the parity base of
debian:bookworm-slim (made when missing, as a backend build makes it).

Marked `docker`: without an engine these tests skip, except under CI (`CI` set), where they fail.
The module shares one container and one server.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import docker.models.containers
import pytest
import uvicorn
from e2b.api.client_async import get_envd_api as get_async_envd_api
from e2b.api.client_sync import get_envd_api
from e2b.connection_config import ConnectionConfig
from e2b.exceptions import (
    AuthenticationException,
    FileNotFoundException,
    InvalidArgumentException,
    SandboxNotRunningException,
)
from e2b.sandbox.filesystem.filesystem import FileType, WriteEntry
from e2b.sandbox_async.filesystem.filesystem import Filesystem as AsyncFilesystem
from e2b.sandbox_sync.filesystem.filesystem import Filesystem
from packaging.version import Version

from boxsmith._internal.backend.envd import metadata
from boxsmith._internal.backend.envd.files import filesystem_app
from boxsmith._internal.backend.envd.transfer import files_app
from boxsmith._internal.backend.runtime import (
    ENVD_VERSION,
    Receive,
    SandboxGone,
    SandboxHandle,
    Scope,
    Send,
    guard_sandbox,
)
from boxsmith._internal.build.base_images import resolve_mirrors
from boxsmith._internal.build.parity import parity_base
from boxsmith._internal.docker.client import Engine
from boxsmith._internal.docker.host_ca import host_ca_bundle

pytestmark = pytest.mark.docker

SANDBOX = "ifilestest0000000000"
BASE = "debian:bookworm-slim"


@dataclass
class Registry:
    """The `Sandboxes` registry of one container."""

    handle: SandboxHandle

    def get(self, sandbox_id: str) -> SandboxHandle:
        if sandbox_id != self.handle.id:
            raise SandboxGone(sandbox_id)
        return self.handle

    def handles(self) -> list[SandboxHandle]:
        return [self.handle]


@dataclass
class Env:
    url: str
    container: docker.models.containers.Container


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _parity_image() -> str:
    """The parity base of BASE, built when missing."""
    ca_path = host_ca_bundle()
    with Engine() as engine:
        ca = ca_path.read_bytes() if ca_path else None
        return parity_base(engine, BASE, mirrors=resolve_mirrors(), ca=ca).tag


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
    container = client.containers.run(
        _parity_image(),
        "sleep infinity",
        detach=True,
        labels={"dev.boxsmith": "1", "dev.boxsmith.test": "files"},
    )
    try:
        home = "/home/user"
        registry = Registry(SandboxHandle(SANDBOX, str(container.id), "user", home, home))
        ledger = metadata.Ledger()
        rpc = guard_sandbox(filesystem_app(registry, client, ledger), registry)
        files = files_app(registry, client, max_upload_bytes=1 << 30, ledger=ledger)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"].startswith("/filesystem.Filesystem/"):
                await rpc(scope, receive, send)
            elif scope["path"] == "/files":
                await files(scope, receive, send)
            else:  # /health, which the SDK probes after some errors
                known = dict(scope["headers"]).get(b"e2b-sandbox-id") == SANDBOX.encode()
                await send({"type": "http.response.start", "status": 204 if known else 502})
                await send({"type": "http.response.body", "body": b""})

        port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60  # only catches a hang
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield Env(f"http://127.0.0.1:{port}", container)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        container.remove(force=True)
        client.close()


def _config(env: Env, sandbox_id: str) -> ConnectionConfig:
    headers = {"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983"}
    return ConnectionConfig(api_key="local", sandbox_url=env.url, extra_sandbox_headers=headers)


def _files(env: Env, sandbox_id: str = SANDBOX) -> Filesystem:
    """The SDK's Filesystem, built as `Sandbox.__init__` builds it."""
    config = _config(env, sandbox_id)
    return Filesystem(env.url, Version(ENVD_VERSION), config, get_envd_api(config, env.url))


def _sh(env: Env, command: str) -> str:
    code, output = env.container.exec_run(["sh", "-c", command])
    assert isinstance(output, bytes)
    assert code == 0, output
    return output.decode()


@pytest.fixture(scope="module")
def fs(env: Env) -> Filesystem:
    return _files(env)


def test_write_and_read_text_and_bytes(fs: Filesystem) -> None:
    info = fs.write("/home/user/notes/a.txt", "hello\nwörld\n")
    assert (info.name, info.path, info.type) == ("a.txt", "/home/user/notes/a.txt", FileType.FILE)
    assert fs.read("/home/user/notes/a.txt") == "hello\nwörld\n"
    fs.write("/home/user/notes/b.bin", bytes(range(256)))
    assert fs.read("/home/user/notes/b.bin", format="bytes") == bytearray(range(256))
    fs.write("/home/user/notes/a.txt", "")  # overwrite, empty
    assert fs.read("/home/user/notes/a.txt") == ""


def test_write_files_sends_one_multipart_request(fs: Filesystem, env: Env) -> None:
    odd = '/home/user/multi/sp ace "q" back\\slash\nnew line.txt'
    long = "/home/user/multi/" + "d" * 120 + "/" + "n" * 120 + ".txt"
    entries: list[WriteEntry] = [
        {"path": "/home/user/multi/one.txt", "data": "1"},
        {"path": odd, "data": b"2"},
        {"path": long, "data": "3"},
    ]
    written = fs.write_files(entries)
    assert [w.path for w in written] == [e["path"] for e in entries]
    assert [fs.read(e["path"]) for e in entries] == ["1", "2", "3"]
    names = {e.name for e in fs.list("/home/user/multi")}
    assert names == {"one.txt", 'sp ace "q" back\\slash\nnew line.txt', "d" * 120}


def test_octet_stream_file_object_and_gzip(fs: Filesystem) -> None:
    data = os.urandom(300_000)
    info = fs.write("/home/user/octet/stream.bin", io.BytesIO(data))  # file-like: octet-stream
    assert info.path == "/home/user/octet/stream.bin"
    assert bytes(fs.read(info.path, format="bytes")) == data
    fs.write("/home/user/octet/zipped.txt", "z" * 100_000, gzip=True)
    assert fs.read("/home/user/octet/zipped.txt") == "z" * 100_000
    assert fs.read("/home/user/octet/zipped.txt", gzip=True) == "z" * 100_000
    fs.write("/home/user/octet/forced.txt", "plain", use_octet_stream=True)
    assert fs.read("/home/user/octet/forced.txt") == "plain"


def test_exists_and_get_info(fs: Filesystem, env: Env) -> None:
    fs.write("/home/user/info/f.txt", "12345")
    _sh(env, "ln -s /home/user/info/f.txt /home/user/info/link")
    assert fs.exists("/home/user/info/f.txt")
    assert not fs.exists("/home/user/info/missing")
    info = fs.get_info("/home/user/info/f.txt")
    assert (info.name, info.path, info.type, info.size) == (
        "f.txt",
        "/home/user/info/f.txt",
        FileType.FILE,
        5,
    )
    assert (info.mode, info.permissions, info.owner, info.group) == (
        0o644,
        "-rw-r--r--",
        "user",
        "user",
    )
    assert info.symlink_target is None
    now = datetime.now(UTC)
    assert now - timedelta(minutes=5) < info.modified_time < now + timedelta(minutes=5)
    folder = fs.get_info("/home/user/info")
    assert (folder.type, folder.permissions, folder.mode) == (FileType.DIR, "drwxr-xr-x", 0o755)
    link = fs.get_info("/home/user/info/link")
    assert (link.type, link.symlink_target) == (FileType.SYMLINK, "/home/user/info/f.txt")
    assert fs.read("/home/user/info/link") == "12345"  # downloads follow symlinks
    fs.write("/home/user/info/link", "new")  # and so do uploads, as envd's open(2)
    assert fs.get_info("/home/user/info/link").type == FileType.SYMLINK
    assert fs.read("/home/user/info/f.txt") == "new"
    assert fs.get_info("/tmp").permissions == "dtrwxrwxrwx"  # Go's FileMode.String(), as envd
    with pytest.raises(FileNotFoundException):
        fs.get_info("/home/user/info/missing")


def test_list_with_depth(fs: Filesystem) -> None:
    fs.write_files(
        [
            {"path": "/home/user/tree/b/deep/x.txt", "data": "x"},
            {"path": "/home/user/tree/a.txt", "data": "a"},
            {"path": "/home/user/tree/b/c.txt", "data": "c"},
        ]
    )
    one = fs.list("/home/user/tree")
    assert [(e.name, e.type) for e in one] == [("a.txt", FileType.FILE), ("b", FileType.DIR)]
    two = fs.list("/home/user/tree", depth=2)
    assert [e.path for e in two] == [
        "/home/user/tree/a.txt",
        "/home/user/tree/b",
        "/home/user/tree/b/c.txt",
        "/home/user/tree/b/deep",
    ]
    with pytest.raises(FileNotFoundException):
        fs.list("/home/user/tree/missing")
    with pytest.raises(InvalidArgumentException):
        fs.list("/home/user/tree/a.txt")


def test_make_dir_rename_remove(fs: Filesystem) -> None:
    assert fs.make_dir("/home/user/mk/a/b") is True
    assert fs.make_dir("/home/user/mk/a/b") is False
    assert fs.get_info("/home/user/mk/a").owner == "user"
    fs.write("/home/user/mk/a/b/f.txt", "moved")
    entry = fs.rename("/home/user/mk/a/b/f.txt", "/home/user/mk/new/dir/g.txt")
    assert (entry.name, entry.path, entry.type) == (
        "g.txt",
        "/home/user/mk/new/dir/g.txt",
        FileType.FILE,
    )
    assert not fs.exists("/home/user/mk/a/b/f.txt")
    assert fs.read("/home/user/mk/new/dir/g.txt") == "moved"
    with pytest.raises(FileNotFoundException):
        fs.rename("/home/user/mk/nothing", "/home/user/mk/else")
    fs.remove("/home/user/mk")
    assert not fs.exists("/home/user/mk")
    fs.remove("/home/user/mk")  # a missing path is fine, as in envd


def test_read_errors(fs: Filesystem) -> None:
    with pytest.raises(FileNotFoundException):
        fs.read("/home/user/does/not/exist.txt")
    with pytest.raises(InvalidArgumentException, match="is a directory"):
        fs.read("/home/user")
    with pytest.raises(InvalidArgumentException, match="is a directory"):
        fs.write("/home/user", "no")
    with pytest.raises(AuthenticationException):
        fs.read("/etc/hostname", user="nobody-by-that-name")
    with pytest.raises(AuthenticationException):
        fs.exists("/etc/hostname", user="nobody-by-that-name")


def test_relative_paths_resolve_against_home(fs: Filesystem) -> None:
    info = fs.write("rel/x.txt", "relative")
    assert info.path == "/home/user/rel/x.txt"
    assert fs.read("/home/user/rel/x.txt") == "relative"
    assert fs.exists("rel/x.txt")
    assert fs.get_info("~/rel/x.txt").path == "/home/user/rel/x.txt"
    assert [e.path for e in fs.list("rel")] == ["/home/user/rel/x.txt"]
    assert fs.write("/tmp/x.txt", "x", user="root").path == "/tmp/x.txt"
    assert fs.write("r.txt", "r", user="root").path == "/root/r.txt"


def test_ownership_follows_the_requesting_user(fs: Filesystem, env: Env) -> None:
    fs.write("/home/user/own/mine.txt", "u")
    fs.write("/home/user/own/sub/roots.txt", "r", user="root")
    fs.write("/opt/app/conf.txt", "as user in a root folder")  # envd writes as root and chowns
    fs.make_dir("/srv/made/here", user="root")
    listing = _sh(
        env,
        "cd /home/user/own && stat -c '%U:%G %a %n' mine.txt sub sub/roots.txt"
        " /opt/app /opt/app/conf.txt /srv/made",
    ).splitlines()
    assert listing == [
        "user:user 644 mine.txt",
        "root:root 755 sub",
        "root:root 644 sub/roots.txt",
        "user:user 755 /opt/app",
        "user:user 644 /opt/app/conf.txt",
        "root:root 755 /srv/made",
    ]
    _sh(env, "chmod 600 /home/user/own/mine.txt")
    fs.write("/home/user/own/mine.txt", "kept mode")  # an overwrite keeps the mode, as envd
    assert _sh(env, "stat -c %a /home/user/own/mine.txt").strip() == "600"


def test_large_file_round_trip(fs: Filesystem, env: Env, tmp_path: Path) -> None:
    data = os.urandom(50 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    started = time.monotonic()
    with source.open("rb") as handle:
        fs.write("/home/user/big/big.bin", handle)
    uploaded = time.monotonic()
    back = fs.read("/home/user/big/big.bin", format="bytes")
    done = time.monotonic()
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()
    print(f"50 MB: upload {uploaded - started:.2f} s, download {done - uploaded:.2f} s")
    fs.write("/home/user/big/multipart.bin", data)  # bytes: one multipart part, parsed streaming
    digest = _sh(env, "sha256sum /home/user/big/multipart.bin").split()[0]
    assert digest == hashlib.sha256(data).hexdigest()
    fs.remove("/home/user/big")


def test_unknown_sandbox_is_not_running(env: Env) -> None:
    gone = _files(env, "inosuchsandbox000000")
    with pytest.raises(SandboxNotRunningException, match="was not found"):
        gone.read("/etc/hostname")
    with pytest.raises(SandboxNotRunningException, match="was not found"):
        gone.write("/tmp/x", "x")
    with pytest.raises(SandboxNotRunningException, match="was not found"):
        gone.exists("/etc/hostname")


def test_async_filesystem(env: Env) -> None:
    async def scenario() -> None:
        config = _config(env, SANDBOX)
        api = get_async_envd_api(config, env.url)
        fs = AsyncFilesystem(env.url, Version(ENVD_VERSION), config, api)
        await fs.write("/home/user/async/a.txt", "async")
        assert await fs.read("/home/user/async/a.txt") == "async"
        assert await fs.exists("/home/user/async/a.txt")
        assert [e.name for e in await fs.list("/home/user/async")] == ["a.txt"]
        assert await fs.make_dir("/home/user/async") is False
        await fs.remove("/home/user/async")
        assert not await fs.exists("/home/user/async")

    asyncio.run(scenario())
