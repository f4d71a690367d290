"""The sandbox data plane of the local backend is closed to whoever lacks the sandbox's token,
and the sandbox routes refuse bad bodies, long timeouts, too many sandboxes and huge uploads the
way E2B does. Each test drives a real `boxsmith backend serve` process over real HTTP (the e2b
SDK, or plain httpx requests as any local user could send) with real Docker sandboxes.

Two backends serve the module: one with the default settings, and one started with
BOXSMITH_BACKEND_ALLOW_INSECURE=1, BOXSMITH_BACKEND_MAX_SANDBOXES=1 and
BOXSMITH_BACKEND_MAX_UPLOAD_MB=1 on a data folder an older version left (its state file kept
sandbox envVars). SDK calls name their backend explicitly, since the SDK's environment points at
one of them only.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import struct
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from e2b import (
    AuthenticationException,
    RateLimitException,
    Sandbox,
    Template,
    wait_for_file,
)
from e2b.api.client_sync import get_envd_api
from e2b.connection_config import ConnectionConfig
from e2b.envd.api import ENVD_API_FILES_ROUTE
from e2b.sandbox_sync.commands.command import Commands
from packaging.version import Version

from boxsmith._internal.backend.runtime import ENVD_VERSION
from tests.helpers import Backend, serving_backend

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"
SECRET = "s3cr3t-" + uuid.uuid4().hex  # an envVars value: it must reach no log and no file
OLD_SECRET = "old-s3cr3t-" + uuid.uuid4().hex  # what an older version stored
LIMITS = {
    "BOXSMITH_BACKEND_ALLOW_INSECURE": "1",
    "BOXSMITH_BACKEND_MAX_SANDBOXES": "1",
    "BOXSMITH_BACKEND_MAX_UPLOAD_MB": "1",
}
WRONG_TOKENS = [None, "", "wrong-token"]
# envd's answer to a request without the right token, word for word
UNAUTHORIZED = (
    "unauthorized access, please provide a valid access token or method signing if supported"
)


# --- fixtures -----------------------------------------------------------------------------------


def sdk(backend: Backend) -> dict[str, Any]:
    """The SDK's connection parameters for `backend`."""
    return {"api_key": backend.key, "api_url": backend.url, "sandbox_url": backend.url}


def api(backend: Backend, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A control-plane request with the API key."""
    headers = {"X-API-KEY": backend.key, **kwargs.pop("headers", {})}
    return httpx.request(method, backend.url + path, headers=headers, timeout=120, **kwargs)


def envd(
    backend: Backend, method: str, path: str, sandbox_id: str, token: str | None, **kwargs: Any
) -> httpx.Response:
    """A data-plane request for a sandbox, with `token` in X-Access-Token unless None."""
    headers = {"E2b-Sandbox-Id": sandbox_id, **kwargs.pop("headers", {})}
    if token is not None:
        headers["X-Access-Token"] = token
    return httpx.request(method, backend.url + path, headers=headers, timeout=60, **kwargs)


def token_of(sbx: Sandbox) -> str:
    """The access token the SDK sends for this sandbox."""
    return str(sbx.connection_config.sandbox_headers["X-Access-Token"])


def start_request(command: str) -> bytes:
    """A Connect streaming `process.Process/Start` body running `sh -c command`."""
    message = json.dumps({"process": {"cmd": "/bin/sh", "args": ["-c", command]}}).encode()
    return struct.pack(">BI", 0, len(message)) + message


def assert_unauthorized(response: httpx.Response, message: str = UNAUTHORIZED) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"code": 401, "message": message}


def exists(sbx: Sandbox, path: str) -> bool:
    """Whether `path` exists in the sandbox (asked with the token, as root)."""
    answer = sbx.commands.run(f"test -e {path} && echo yes || echo no", user="root")
    return answer.stdout == "yes\n"


def build(backend: Backend, name: str, template: Template | None = None) -> str:
    Template.build(template or Template().from_image(BASE), name, **sdk(backend))
    return name


@pytest.fixture(scope="module")
def template(backend: Backend) -> str:
    return build(backend, f"sec-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def sbx(backend: Backend, template: str) -> Iterator[Sandbox]:
    box = Sandbox.create(template, envs={"SECRET_VALUE": SECRET}, timeout=900, **sdk(backend))
    try:
        yield box
    finally:
        box.kill()


def _old_state_file(data: Path) -> None:
    """The state file of a version that kept sandbox envVars, with one sandbox left running."""
    data.mkdir(parents=True)
    with sqlite3.connect(data / "state.sqlite3") as db:
        db.execute(
            "CREATE TABLE sandboxes (id TEXT PRIMARY KEY, template_id TEXT NOT NULL,"
            " build_id TEXT NOT NULL, alias TEXT NOT NULL, container_id TEXT NOT NULL,"
            " metadata TEXT NOT NULL, env TEXT NOT NULL, started_at TEXT NOT NULL,"
            " end_at TEXT NOT NULL, cpu_count INTEGER NOT NULL, memory_mb INTEGER NOT NULL,"
            " user TEXT NOT NULL, workdir TEXT NOT NULL, state TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO sandboxes VALUES (?, 't1', 'b1', 'old', 'c1', '{}', ?,"
            " '2024-01-01T00:00:00Z', '2024-01-01T01:00:00Z', 2, 512, 'user', '/home/user',"
            " 'running')",
            ("iold0000000000000000", json.dumps({"API_KEY": OLD_SECRET})),
        )


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    root = tmp_path_factory.mktemp("limited-backend")
    _old_state_file(root / "data")
    with serving_backend(root, LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def limited_template(limited: Backend) -> str:
    return build(limited, f"lim-{uuid.uuid4().hex[:8]}")


# --- the access token ---------------------------------------------------------------------------


def test_create_connect_and_get_return_the_sandboxs_one_token(
    backend: Backend, sbx: Sandbox
) -> None:
    token = token_of(sbx)
    assert len(token) >= 32
    for _ in range(2):  # a reconnect returns the same token
        connected = api(backend, "POST", f"/v2/sandboxes/{sbx.sandbox_id}/connect", json={})
        assert connected.status_code == 200, connected.text
        assert connected.json()["envdAccessToken"] == token
        assert connected.json()["trafficAccessToken"] is None
    detail = api(backend, "GET", f"/sandboxes/{sbx.sandbox_id}")
    assert detail.json()["envdAccessToken"] == token
    again = Sandbox.connect(sbx.sandbox_id, **sdk(backend))
    assert again.commands.run("echo connected").stdout == "connected\n"


@pytest.mark.parametrize("token", WRONG_TOKENS)
def test_process_start_without_the_token_is_401_and_runs_nothing(
    backend: Backend, sbx: Sandbox, token: str | None
) -> None:
    marker = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    refused = envd(
        backend,
        "POST",
        "/process.Process/Start",
        sbx.sandbox_id,
        token,
        content=start_request(f"touch {marker}"),
        headers={"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"},
    )
    assert_unauthorized(refused)
    assert not exists(sbx, marker)
    # the very same request with the token runs: the token alone made the difference
    allowed = envd(
        backend,
        "POST",
        "/process.Process/Start",
        sbx.sandbox_id,
        token_of(sbx),
        content=start_request(f"touch {marker}"),
        headers={"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"},
    )
    assert allowed.status_code == 200, allowed.text
    assert exists(sbx, marker)


@pytest.mark.parametrize(
    ("path", "order"),
    [
        ("/process.Process/Start", "victim-first"),
        ("/files", "victim-first"),
        ("/process.Process/Start", "victim-last"),
    ],
)
def test_one_sandboxs_token_never_opens_another_through_repeated_headers(
    backend: Backend, template: str, sbx: Sandbox, path: str, order: str
) -> None:
    victim = Sandbox.create(template, timeout=300, **sdk(backend))
    try:
        marker = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
        ids = [("E2b-Sandbox-Id", victim.sandbox_id), ("E2b-Sandbox-Id", sbx.sandbox_id)]
        headers = [*(ids if order == "victim-first" else ids[::-1])]
        headers.append(("X-Access-Token", token_of(sbx)))  # the attacker's own sandbox's token
        if path == "/files":
            response = httpx.post(
                f"{backend.url}/files",
                params={"path": marker, "username": "root"},
                files={"file": ("x", b"pwned")},
                headers=headers,
                timeout=60,
            )
        else:
            headers += [("Content-Type", "application/connect+json")]
            headers += [("Connect-Protocol-Version", "1")]
            response = httpx.post(
                backend.url + path,
                content=start_request(f"touch {marker}"),
                headers=headers,
                timeout=60,
            )
        assert response.status_code == 400, response.text
        assert response.json() == {
            "code": 400,
            "message": "the e2b-sandbox-id header may be sent once",
        }
        assert not exists(victim, marker)
        assert not exists(sbx, marker)
    finally:
        victim.kill()


def test_the_sdk_without_the_token_gets_its_authentication_error(
    backend: Backend, sbx: Sandbox
) -> None:
    headers = {
        "E2b-Sandbox-Id": sbx.sandbox_id,
        "E2b-Sandbox-Port": "49983",
        "X-Access-Token": "not-the-token",
    }
    config = ConnectionConfig(
        api_key=backend.key, sandbox_url=backend.url, extra_sandbox_headers=headers
    )
    commands = Commands(
        backend.url, config, Version(ENVD_VERSION), get_envd_api(config, backend.url)
    )
    with pytest.raises(AuthenticationException):
        commands.run("touch /tmp/sdk-pwned")
    with pytest.raises(AuthenticationException):
        commands.list()
    assert not exists(sbx, "/tmp/sdk-pwned")


@pytest.mark.parametrize("token", WRONG_TOKENS)
def test_filesystem_rpcs_without_the_token_are_401_and_change_nothing(
    backend: Backend, sbx: Sandbox, token: str | None
) -> None:
    sbx.files.write("/home/user/keep.txt", "kept")
    made = f"/tmp/made-{uuid.uuid4().hex[:8]}"
    calls = {
        "MakeDir": {"path": made},
        "Remove": {"path": "/home/user/keep.txt"},
        "Move": {"source": "/home/user/keep.txt", "destination": "/tmp/moved.txt"},
        "Stat": {"path": "/etc/shadow"},
        "ListDir": {"path": "/root"},
    }
    for method, body in calls.items():
        refused = envd(
            backend, "POST", f"/filesystem.Filesystem/{method}", sbx.sandbox_id, token, json=body
        )
        assert_unauthorized(refused)
    assert sbx.files.read("/home/user/keep.txt") == "kept"
    assert not exists(sbx, made)
    allowed = envd(
        backend,
        "POST",
        "/filesystem.Filesystem/MakeDir",
        sbx.sandbox_id,
        token_of(sbx),
        json={"path": made},
    )
    assert allowed.status_code == 200, allowed.text
    assert exists(sbx, made)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing signature query parameter"),
        ("wrong-token", "access token present in header but does not match"),
    ],
)
def test_files_without_the_token_are_401_and_read_or_write_nothing(
    backend: Backend, sbx: Sandbox, token: str | None, message: str
) -> None:
    shadow = envd(
        backend,
        "GET",
        "/files",
        sbx.sandbox_id,
        token,
        params={"path": "/etc/shadow", "username": "root"},
    )
    assert_unauthorized(shadow, message)
    planted = f"/tmp/planted-{uuid.uuid4().hex[:8]}"
    upload = envd(
        backend,
        "POST",
        "/files",
        sbx.sandbox_id,
        token,
        params={"path": planted, "username": "root"},
        files={"file": ("planted", b"evil")},
    )
    assert_unauthorized(upload, message)
    assert not exists(sbx, planted)
    read = envd(
        backend,
        "GET",
        "/files",
        sbx.sandbox_id,
        token_of(sbx),
        params={"path": "/etc/shadow", "username": "root"},
    )
    assert read.status_code == 200
    assert read.content.startswith(b"root:")


def test_health_needs_no_token_as_in_envd(backend: Backend, sbx: Sandbox) -> None:
    assert envd(backend, "GET", "/health", sbx.sandbox_id, None).status_code == 204
    gone = envd(backend, "GET", "/health", "inotasandbox", None)
    assert gone.status_code == 502
    assert gone.json() == {"code": 502, "message": "The sandbox inotasandbox was not found"}


def test_the_sdk_round_trip_works_with_the_token(sbx: Sandbox) -> None:
    assert sbx.commands.run("echo $SECRET_VALUE").stdout == SECRET + "\n"
    sbx.files.write("/home/user/round.txt", "trip")
    assert sbx.files.read("/home/user/round.txt") == "trip"
    assert [e.name for e in sbx.files.list("/home/user") if e.name == "round.txt"] == ["round.txt"]


# --- signed URLs --------------------------------------------------------------------------------


def _with(url: str, **changes: str) -> str:
    """`url` with some query parameters replaced."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(changes)
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


def test_signed_urls_work_from_a_plain_http_client(sbx: Sandbox) -> None:
    upload = sbx.upload_url("/home/user/signed.txt")
    assert "signature=v1_" in upload
    written = httpx.post(upload, files={"file": ("signed.txt", b"signed upload")}, timeout=60)
    assert written.status_code == 200, written.text
    download = sbx.download_url("/home/user/signed.txt")
    assert httpx.get(download, timeout=60).content == b"signed upload"
    expiring = sbx.download_url("/home/user/signed.txt", use_signature_expiration=120)
    assert "signature_expiration=" in expiring
    assert httpx.get(expiring, timeout=60).content == b"signed upload"
    as_root = sbx.download_url("/etc/shadow", user="root", use_signature_expiration=120)
    assert httpx.get(as_root, timeout=60).content.startswith(b"root:")


def test_expired_and_bogus_signatures_are_refused(sbx: Sandbox) -> None:
    sbx.files.write("/home/user/secret.txt", "private")
    expired = sbx.download_url("/home/user/secret.txt", use_signature_expiration=-5)
    assert_unauthorized(httpx.get(expired, timeout=60), "signature is already expired")
    good = sbx.download_url("/home/user/secret.txt", use_signature_expiration=120)
    far = str(int(dict(urllib.parse.parse_qsl(good.split("?")[1]))["signature_expiration"]) + 9999)
    bogus = [
        _with(good, signature="v1_" + "A" * 43),  # made up
        _with(good, path="/etc/shadow"),  # another file
        _with(good, username="root"),  # another user
        _with(good, signature_expiration=far),  # a later expiry
        _with(good, signature_expiration="soon"),
    ]
    for url in bogus:
        assert_unauthorized(httpx.get(url, timeout=60), "invalid signature")
    # a read signature does not write
    written = httpx.post(good, files={"file": ("secret.txt", b"overwritten")}, timeout=60)
    assert_unauthorized(written, "invalid signature")
    assert sbx.files.read("/home/user/secret.txt") == "private"


# --- insecure sandboxes -------------------------------------------------------------------------


def test_secure_false_is_refused_by_default(backend: Backend, template: str) -> None:
    before = api(backend, "GET", "/v2/sandboxes").json()
    refused = api(backend, "POST", "/v2/sandboxes", json={"templateID": template, "secure": False})
    assert refused.status_code == 400
    assert refused.json()["code"] == 400
    assert "BOXSMITH_BACKEND_ALLOW_INSECURE=1" in refused.json()["message"]
    assert api(backend, "GET", "/v2/sandboxes").json() == before


def test_secure_false_opens_the_data_plane_when_the_backend_allows_it(
    limited: Backend, limited_template: str
) -> None:
    created = api(
        limited, "POST", "/v2/sandboxes", json={"templateID": limited_template, "secure": False}
    )
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["sandboxID"]
    try:
        assert "envdAccessToken" not in created.json()
        listed = envd(limited, "POST", "/process.Process/List", sandbox_id, None, json={})
        assert listed.status_code == 200, listed.text
        box = Sandbox.connect(sandbox_id, **sdk(limited))
        assert box.commands.run("echo open").stdout == "open\n"
        assert box.download_url("/etc/hostname") == (
            f"{limited.url}{ENVD_API_FILES_ROUTE}?path=%2Fetc%2Fhostname"
        )
    finally:
        assert api(limited, "DELETE", f"/sandboxes/{sandbox_id}").status_code == 204


# --- bodies, timeouts, limits -------------------------------------------------------------------


BAD_CREATES: list[Any] = [
    [],
    "a string",
    {"templateID": 5},
    {"timeout": "x"},
    {"timeout": True},
    {"timeout": 1.5},
    {"timeout": 0},
    {"timeout": -1},
    {"timeout": 86401},
    {"timeout": 100000000},
    {"timeout": 10**12},
    {"metadata": []},
    {"metadata": {"a": 1}},
    {"envVars": []},
    {"envVars": {"A=B": "x"}},
    {"envVars": {"A\0B": "x"}},
    {"envVars": {"": "x"}},
    {"envVars": {"A": "x\0y"}},
    {"envVars": {"A": 5}},
    {"secure": "no"},
]


@pytest.mark.parametrize("body", BAD_CREATES, ids=repr)
def test_a_bad_create_body_is_400_in_e2bs_shape(backend: Backend, template: str, body: Any) -> None:
    if isinstance(body, dict):
        body = {"templateID": template, **body}
    before = api(backend, "GET", "/v2/sandboxes").json()
    refused = api(backend, "POST", "/v2/sandboxes", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == 400
    assert isinstance(refused.json()["message"], str)
    assert api(backend, "GET", "/v2/sandboxes").json() == before


def test_env_var_errors_name_the_variable_never_its_value(backend: Backend, template: str) -> None:
    body = {"templateID": template, "envVars": {"KEY": f"{SECRET}\0"}}
    refused = api(backend, "POST", "/v2/sandboxes", json=body)
    assert refused.status_code == 400
    assert "KEY" in refused.json()["message"]
    assert SECRET not in refused.text


BAD_TIMEOUTS: list[Any] = [
    [],
    {"timeout": "x"},
    {"timeout": 86401},
    {"timeout": 100000000},
    {"timeout": 10**12},
    {"timeout": -5},
]


@pytest.mark.parametrize("body", BAD_TIMEOUTS, ids=repr)
def test_connect_and_set_timeout_keep_the_cap(backend: Backend, sbx: Sandbox, body: Any) -> None:
    end = api(backend, "GET", f"/sandboxes/{sbx.sandbox_id}").json()["endAt"]
    for path in (f"/v2/sandboxes/{sbx.sandbox_id}/connect", f"/sandboxes/{sbx.sandbox_id}/timeout"):
        refused = api(backend, "POST", path, json=body)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["code"] == 400
    assert api(backend, "GET", f"/sandboxes/{sbx.sandbox_id}").json()["endAt"] == end


def test_the_longest_timeout_is_allowed(backend: Backend, sbx: Sandbox) -> None:
    sbx.set_timeout(86400)
    connected = api(backend, "POST", f"/v2/sandboxes/{sbx.sandbox_id}/connect", json={})
    assert connected.status_code == 200
    sbx.set_timeout(900)


def test_set_timeout_needs_a_timeout(backend: Backend, sbx: Sandbox) -> None:
    refused = api(backend, "POST", f"/sandboxes/{sbx.sandbox_id}/timeout", json={})
    assert refused.status_code == 400
    assert refused.json() == {"code": 400, "message": refused.json()["message"]}


def test_past_max_sandboxes_a_create_is_429(limited: Backend, limited_template: str) -> None:
    first = Sandbox.create(limited_template, timeout=300, **sdk(limited))
    try:
        with pytest.raises(RateLimitException):
            Sandbox.create(limited_template, timeout=300, **sdk(limited))
        refused = api(limited, "POST", "/v2/sandboxes", json={"templateID": limited_template})
        assert refused.status_code == 429
        assert refused.json()["code"] == 429
        assert "BOXSMITH_BACKEND_MAX_SANDBOXES" in refused.json()["message"]
    finally:
        first.kill()


def test_concurrent_creates_share_the_limit(limited: Backend, limited_template: str) -> None:
    statuses: list[int] = []
    created: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3)

    def create() -> None:
        barrier.wait()
        response = api(limited, "POST", "/v2/sandboxes", json={"templateID": limited_template})
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 201:
                created.append(response.json()["sandboxID"])

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(statuses) == [201, 429, 429]
    finally:
        for sandbox_id in created:
            api(limited, "DELETE", f"/sandboxes/{sandbox_id}")


def test_a_failed_create_gives_its_place_back(limited: Backend, limited_template: str) -> None:
    failing = Template().from_image(BASE).set_start_cmd("exit 3", wait_for_file("/never"))
    doomed = build(limited, f"doomed-{uuid.uuid4().hex[:8]}", failing)
    failed = api(limited, "POST", "/v2/sandboxes", json={"templateID": doomed})
    assert failed.status_code == 500, failed.text
    assert "exited with code 3" in failed.json()["message"]
    assert failed.json()["code"] == 500
    box = Sandbox.create(limited_template, timeout=300, **sdk(limited))
    box.kill()


def test_an_upload_past_the_limit_is_413_and_writes_nothing(
    limited: Backend, limited_template: str
) -> None:
    box = Sandbox.create(limited_template, timeout=300, **sdk(limited))
    try:
        for framing in (f"Content-Length: {(1 << 20) + 1}", "Transfer-Encoding: chunked"):
            status, body = _raw_upload(limited, box, framing)
            assert status == 413, body
            assert json.loads(body)["code"] == 413
            assert "BOXSMITH_BACKEND_MAX_UPLOAD_MB" in json.loads(body)["message"]
        box.files.write("/home/user/small.bin", b"z" * ((1 << 20) - 4096))  # within the limit
        listing = box.commands.run("ls /home/user").stdout.split()
        assert "big.bin" not in listing
        assert "streamed.bin" not in listing
        assert "small.bin" in listing
    finally:
        box.kill()


def _raw_upload(backend: Backend, box: Sandbox, framing: str) -> tuple[int, bytes]:
    """The status of a raw octet-stream upload of a body over 1 MiB: with a Content-Length, the
    backend refuses on the headers (no body sent); chunked, it reads until past the limit
    (1 MiB + 64 KiB is sent, no end chunk: the refusal must not wait for the end)."""
    head = (
        f"POST /files?path=/home/user/streamed.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"E2b-Sandbox-Id: {box.sandbox_id}\r\nX-Access-Token: {token_of(box)}\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    ).encode()
    chunk = b"y" * 65536
    with socket.create_connection(("127.0.0.1", backend.port), timeout=60) as conn:
        conn.sendall(head)
        if "chunked" in framing:
            for _ in range(17):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = http.client.HTTPResponse(conn)
        response.begin()
        return response.status, response.read()


# --- no host paths, no secrets ------------------------------------------------------------------


def test_envd_errors_name_no_host_path(backend: Backend, sbx: Sandbox) -> None:
    long_path = "/home/user/" + "a" * 300 + "/x"
    download = envd(
        backend, "GET", "/files", sbx.sandbox_id, token_of(sbx), params={"path": long_path}
    )
    assert download.status_code == 400, download.text
    assert download.json()["code"] == 400
    for leak in ("overlay2", "/var/lib/docker", "merged"):
        assert leak not in download.text
    assert "/home/user/aaa" in download.json()["message"]


def test_env_values_reach_no_log_no_state_file_and_no_container_config(
    backend: Backend, sbx: Sandbox
) -> None:
    assert sbx.commands.run("echo $SECRET_VALUE").stdout == SECRET + "\n"
    for path in [backend.log, *sorted(p for p in backend.data.rglob("*") if p.is_file())]:
        assert SECRET.encode() not in path.read_bytes(), path
    label = f"dev.boxsmith.sandbox={sbx.sandbox_id}"
    (container,) = docker.from_env().containers.list(filters={"label": label})
    assert SECRET not in json.dumps(container.attrs)  # what `docker inspect` shows


def test_an_older_state_file_loses_its_env_column(limited: Backend) -> None:
    files = sorted(p for p in limited.data.rglob("*") if p.is_file())
    assert any(p.name == "state.sqlite3" for p in files)
    for path in [limited.log, *files]:
        assert OLD_SECRET.encode() not in path.read_bytes(), path
    with sqlite3.connect(f"{(limited.data / 'state.sqlite3').as_uri()}?mode=ro", uri=True) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(sandboxes)")}
    assert "env" not in columns
