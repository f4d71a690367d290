"""Security of the local backend's control plane and of its state on disk (issue 10, sections 2
and 3): a real `boxsmith backend serve`, real HTTP and the real e2b SDK.

- The data folder and everything the backend keeps there are the owner's only (700/600), also
  when the folder was made looser by an older version; nothing outside it is touched.
- Every request of the wrong shape is a 400 in E2B's error shape, unknown routes a 404, wrong
  methods a 405, E2B cloud features the backend lacks a 501 (the SDK raises its own exception
  types), an unexpected failure a generic 500; never a traceback, plain text or a host path.
- Build-context uploads are bounded (413, nothing left on disk).

Marked `docker`: serve talks to the engine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import Sandbox, Template, Volume
from e2b.exceptions import BuildException, SandboxException, VolumeException

from tests.helpers import Backend, cli, free_port, serving_backend

pytestmark = pytest.mark.docker

UPLOAD_MB = 1  # the upload limit of this module's backend
HASH = "ab" * 32


def mode(path: Path) -> str:
    """`stat -c %a` of `path` (not following a symlink)."""
    return format(stat.S_IMODE(os.lstat(path).st_mode), "o")


def e2b_error(response: httpx.Response, status: int) -> str:
    """The message of an error response in E2B's shape with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "Traceback" not in body["message"]
    return str(body["message"])


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One backend for the module, with an upload limit of 1 MB."""
    saved = os.environ.get("BOXSMITH_BACKEND_MAX_UPLOAD_MB")
    os.environ["BOXSMITH_BACKEND_MAX_UPLOAD_MB"] = str(UPLOAD_MB)
    try:
        with serving_backend(tmp_path_factory.mktemp("security")) as server:
            yield server
    finally:
        if saved is None:
            os.environ.pop("BOXSMITH_BACKEND_MAX_UPLOAD_MB", None)
        else:
            os.environ["BOXSMITH_BACKEND_MAX_UPLOAD_MB"] = saved


@pytest.fixture
def api(backend: Backend) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend.url, headers={"X-API-KEY": backend.key}) as client:
        yield client


def new_build(api: httpx.Client, name: str) -> tuple[str, str]:
    """(template id, build id) of a new build in `waiting`."""
    response = api.post("/v3/templates", json={"name": name})
    assert response.status_code == 202, response.text
    return response.json()["templateID"], response.json()["buildID"]


def upload_url(api: httpx.Client, template_id: str, files_hash: str = HASH) -> str:
    """The path of a fresh one-time upload URL for `files_hash`."""
    response = api.get(f"/templates/{template_id}/files/{files_hash}")
    assert response.status_code == 201, response.text
    return str(httpx.URL(response.json()["url"]).path)


# -- state on disk ---------------------------------------------------------------------------


def start_detached(root: Path, *data_dir: str) -> tuple[str, str]:
    """(url, key) of a backend `boxsmith backend serve --detach` started (the local target's
    path); stop it with `boxsmith backend stop`."""
    port = str(free_port())
    started = cli(root, "backend", "serve", "--detach", "--port", port, *data_dir)
    assert started.code == 0, started.err
    lines = dict(line.removeprefix("export ").split("=", 1) for line in started.out.splitlines())
    return lines["E2B_API_URL"], lines["E2B_API_KEY"]


def upload_one(url: str, key: str, name: str) -> None:
    """One build-context upload, so uploads/ holds a file."""
    with httpx.Client(base_url=url, headers={"X-API-KEY": key}) as client:
        template_id, _ = new_build(client, name)
        response = client.put(upload_url(client, template_id), content=b"context")
        assert response.status_code == 200, response.text


def test_a_fresh_data_folder_and_everything_in_it_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOXSMITH_BACKEND_DIR", raising=False)
    monkeypatch.delenv("BOXSMITH_BACKEND_MAX_UPLOAD_MB", raising=False)
    data = tmp_path / ".boxsmith" / "backend"
    url, key = start_detached(tmp_path)  # the default data folder, and .boxsmith, are new
    try:
        upload_one(url, key, "fresh")
        status = cli(tmp_path, "backend", "status")
        assert status.code == 0, status.err
        assert f"limits: max_timeout=86400, max_sandboxes=20, max_upload_mb={1024}" in status.out
        folders = [tmp_path / ".boxsmith", data, data / "uploads"]
        files = ["api_key", "state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"]
        files += ["server.json", "server.log", "server.lock", "start.lock", f"uploads/{HASH}"]
        assert {str(p): mode(p) for p in folders} == {str(p): "700" for p in folders}
        assert {f: mode(data / f) for f in files} == dict.fromkeys(files, "600")
        assert sorted(p.name for p in data.iterdir()) == sorted([*files[:-1], "uploads"])
    finally:
        assert cli(tmp_path, "backend", "stop").code == 0


def test_a_loose_folder_of_an_older_version_is_made_private_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "uploads").mkdir(parents=True)
    os.chmod(data, 0o755)
    os.chmod(data / "uploads", 0o755)
    (data / "api_key").write_text("e2b_local_" + "0" * 40 + "\n")
    (data / "server.log").write_text("an older run\n")
    (data / "uploads" / HASH).write_bytes(b"old upload")
    outside = tmp_path / "not-the-backends.txt"
    outside.write_text("someone else's\n")
    (data / "uploads" / "link").symlink_to(outside)
    for path in (data / "api_key", data / "server.log", data / "uploads" / HASH, outside):
        os.chmod(path, 0o644)
    previous = os.umask(0o022)
    try:
        older = sqlite3.connect(data / "state.sqlite3")  # as an older version left it: 0644,
        older.execute("PRAGMA journal_mode=WAL")  # its WAL and SHM open while the backend starts
        older.execute("CREATE TABLE IF NOT EXISTS older (x)")
    finally:
        os.umask(previous)
    assert {
        mode(data / n) for n in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm")
    } == {"644"}
    try:
        start_detached(tmp_path, "--data-dir", str(data))
        try:
            assert (mode(data), mode(data / "uploads")) == ("700", "700")
            files = ["api_key", "server.log", "server.json", f"uploads/{HASH}"]
            files += ["state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"]
            assert {f: mode(data / f) for f in files} == dict.fromkeys(files, "600")
            assert (data / "uploads" / "link").is_symlink()
            assert mode(outside) == "644"  # the symlink was not followed
            assert (data / "api_key").read_text().strip() == "e2b_local_" + "0" * 40
        finally:
            assert cli(tmp_path, "backend", "stop", "--data-dir", str(data)).code == 0
    finally:
        older.close()


# -- bodies of the wrong shape ---------------------------------------------------------------

TEMPLATE_BODIES: list[tuple[Any, str]] = [
    ([1], "must be a JSON object, not a list"),
    ("x", "must be a JSON object, not a string"),
    ({"name": 5}, "name must be a string"),
    ({"name": "ok", "tags": "x"}, "tags must be a list of strings"),
    ({"name": "ok", "tags": [1]}, "tags must be a list of strings"),
    ({"name": "ok", "cpuCount": [1]}, "cpuCount must be a whole number"),
    ({"name": "ok", "cpuCount": "2"}, "cpuCount must be a whole number"),
    ({"name": "ok", "cpuCount": True}, "cpuCount must be a whole number"),
    ({"name": "ok", "cpuCount": 0}, "cpuCount must be between 1 and 32"),
    ({"name": "ok", "cpuCount": -2}, "cpuCount must be between 1 and 32"),
    ({"name": "ok", "cpuCount": 64}, "cpuCount must be between 1 and 32"),
    ({"name": "ok", "cpuCount": 3}, "cpuCount must be 1 or an even number"),
    ({"name": "ok", "memoryMB": 0}, "memoryMB must be between 128 and 65536"),
    ({"name": "ok", "memoryMB": -512}, "memoryMB must be between 128 and 65536"),
    ({"name": "ok", "memoryMB": 10**12}, "memoryMB must be between 128 and 65536"),
    ({"name": "ok", "memoryMB": 129}, "memoryMB must be an even number"),
    ({"name": "ok", "memoryMB": 1.5}, "memoryMB must be a whole number"),
    ({"name": "a" * 129}, "(129 characters) breaks E2B's rule"),
    ({"name": "ok", "tags": ["t" * 129]}, "longer than 128 characters"),
    ({"name": "ok:" + "t" * 129}, "longer than 128 characters"),
]


@pytest.mark.parametrize(("body", "expected"), TEMPLATE_BODIES)
def test_template_requests_of_the_wrong_shape_are_400(
    api: httpx.Client, body: Any, expected: str
) -> None:
    assert expected in e2b_error(api.post("/v3/templates", json=body), 400)


def test_bodies_that_are_not_json_are_400(api: httpx.Client) -> None:
    for path in ("/v3/templates", "/templates/tags"):
        assert "not valid JSON" in e2b_error(api.post(path, content=b"{"), 400)


def test_128_character_names_and_tags_are_accepted(api: httpx.Client) -> None:
    body = {"name": "n" * 128 + ":" + "t" * 128, "cpuCount": 2, "memoryMB": 1024}
    response = api.post("/v3/templates", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["tags"] == ["t" * 128]


BUILD_BODIES: list[tuple[Any, str]] = [
    ([], "must be a JSON object"),
    ({"fromImage": 5}, "fromImage must be a string"),
    ({"fromImage": "debian:bookworm-slim", "steps": "x"}, "steps must be a list"),
    ({"fromImage": "debian:bookworm-slim", "steps": [5]}, "step 1: must be an object"),
    ({"fromImage": "debian:bookworm-slim", "steps": [{"type": 5}]}, "unknown type 5"),
    ({"fromImage": "debian:bookworm-slim", "steps": [{"type": ["RUN"]}]}, "unknown type"),
    ({"fromImage": "x", "steps": [{"type": "RUN", "args": [1]}]}, "args must be a list"),
    ({"fromImage": "x", "steps": [{"type": "RUN", "args": "ls"}]}, "args must be a list"),
    ({"fromImage": "x", "steps": [{"type": "RUN", "args": ["a\x00b"]}]}, "NUL"),
    ({"fromImage": "x", "steps": [{"type": "ENV", "args": ["A", "b\x00"]}]}, "NUL"),
    ({"fromImage": "x", "steps": [{"type": "RUN", "args": ["ls"], "force": "y"}]}, "boolean"),
    ({"fromImage": "x", "force": 1}, "force must be a boolean"),
    ({"fromImage": "x", "startCmd": ["ls"]}, "startCmd must be a string"),
]


@pytest.mark.parametrize(("body", "expected"), BUILD_BODIES)
def test_build_starts_of_the_wrong_shape_are_400(
    api: httpx.Client, body: Any, expected: str
) -> None:
    template_id, build_id = new_build(api, "sec-start")
    response = api.post(f"/v2/templates/{template_id}/builds/{build_id}", json=body)
    assert expected in e2b_error(response, 400)
    status = api.get(f"/templates/{template_id}/builds/{build_id}/status")
    assert status.json()["status"] == "waiting"  # refused before anything ran


def test_tag_requests_of_the_wrong_shape_are_400(api: httpx.Client) -> None:
    cases: list[tuple[str, Any, str]] = [
        ("POST", [1], "must be a JSON object"),
        ("POST", {"target": 5, "tags": ["a"]}, "target must be a string"),
        ("POST", {"tags": ["a"]}, "target is required"),
        ("POST", {"target": "x", "tags": "a"}, "tags must be a list of strings"),
        ("POST", {"target": "x", "tags": ["Bad Tag"]}, "breaks E2B's rule"),
        ("DELETE", "x", "must be a JSON object"),
        ("DELETE", {"name": ["x"], "tags": ["a"]}, "name must be a string"),
        ("DELETE", {"name": "x", "tags": [1]}, "tags must be a list of strings"),
        ("DELETE", {"name": "x", "tags": ["t" * 129]}, "longer than 128"),
    ]
    for method, body, expected in cases:
        response = api.request(method, "/templates/tags", json=body)
        assert expected in e2b_error(response, 400), (method, body)


def test_template_requests_for_an_unknown_template_are_404(api: httpx.Client) -> None:
    cases: list[tuple[str, str, Any]] = [
        ("GET", "/templates/sec-nobody", None),
        ("DELETE", "/templates/sec-nobody", None),
        ("GET", "/templates/sec-nobody/tags", None),
        ("POST", "/templates/tags", {"target": "sec-nobody:v1", "tags": ["a"]}),
        ("DELETE", "/templates/tags", {"name": "sec-nobody", "tags": ["a"]}),
    ]
    for method, path, body in cases:
        response = api.request(method, path, json=body)
        assert e2b_error(response, 404) == "template not found", (method, path)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("logsOffset=x", "logsOffset='x' is not a whole number"),
        ("logsOffset=-5", "logsOffset='-5' is not a whole number"),
        ("logsOffset=1e3", "is not a whole number"),
        ("limit=abc", "limit='abc' is not a whole number"),
        ("limit=5000", "limit must be between 0 and 1000"),
    ],
)
def test_build_status_query_of_the_wrong_type_is_400(
    api: httpx.Client, query: str, expected: str
) -> None:
    template_id, build_id = new_build(api, "sec-status")
    response = api.get(f"/templates/{template_id}/builds/{build_id}/status?{query}")
    assert expected in e2b_error(response, 400)


# -- routes that do not exist ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("GET", "/nothing/here", 404, "no route GET /nothing/here"),
        ("POST", "/v9/sandboxes", 404, "no route POST /v9/sandboxes"),
        ("GET", "/v3/templates", 405, "method GET is not allowed on /v3/templates (POST)"),
        ("PUT", "/templates/tags", 405, "not allowed on /templates/tags"),
        ("PATCH", "/templates/abc", 405, "not allowed on /templates/abc (DELETE, GET, HEAD)"),
        ("POST", "/sandboxes/abc/pause", 501, "pausing and resuming sandboxes"),
        ("POST", "/sandboxes/abc/resume", 501, "pausing and resuming sandboxes"),
        ("POST", "/sandboxes/abc/snapshots", 501, "snapshots"),
        ("GET", "/snapshots", 501, "snapshots"),
        ("GET", "/volumes", 501, "volumes"),
        ("POST", "/volumes", 501, "volumes"),
        ("GET", "/secrets", 501, "secrets"),
        ("GET", "/v2/sandboxes/abc/logs", 501, "sandbox logs"),
    ],
)
def test_unknown_routes_and_methods_answer_in_e2b_shape(
    backend: Backend, method: str, path: str, status: int, expected: str
) -> None:
    for headers in ({"X-API-KEY": backend.key}, {}):
        response = httpx.request(method, backend.url + path, headers=headers)
        assert expected in e2b_error(response, status)


def test_the_sdk_raises_its_own_exceptions_for_what_the_backend_lacks(backend: Backend) -> None:
    with pytest.raises(SandboxException, match="501: pausing and resuming sandboxes"):
        Sandbox.beta_pause("sbx-that-does-not-matter")
    with pytest.raises(SandboxException, match="501: pausing and resuming sandboxes"):
        Sandbox.pause("sbx-that-does-not-matter")
    with pytest.raises(SandboxException, match="501: snapshots"):
        Sandbox.create_snapshot("sbx-that-does-not-matter")
    with pytest.raises(SandboxException, match="501: snapshots"):
        Sandbox.list_snapshots().next_items()
    with pytest.raises(VolumeException, match="501: volumes"):
        Volume.create("vol")


def test_the_sdk_raises_build_exception_for_refused_resources(backend: Backend) -> None:
    template = Template().from_image("debian:bookworm-slim")
    for kwargs, expected in (
        ({"cpu_count": 3}, "cpuCount must be 1 or an even number"),
        ({"memory_mb": 127}, "memoryMB must be between 128"),
        ({"cpu_count": 0}, "cpuCount must be between 1 and 32"),
    ):
        with pytest.raises(BuildException, match=expected):
            Template.build(template, "sec-sdk", **kwargs)


# -- uploads ---------------------------------------------------------------------------------


def upload_leftovers(backend: Backend) -> list[str]:
    return sorted(p.name for p in (backend.data / "uploads").iterdir())


def test_an_upload_over_the_limit_by_its_length_is_413_before_a_byte_is_read(
    backend: Backend, api: httpx.Client
) -> None:
    template_id, _ = new_build(api, "sec-upload")
    before = upload_leftovers(backend)
    path = upload_url(api, template_id, "cd" * 32)
    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=30)
    try:
        connection.putrequest("PUT", path)
        connection.putheader("Content-Length", str((UPLOAD_MB << 20) + 1))
        connection.endheaders()  # and no body: the answer must not wait for it
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413
    assert body == {
        "code": 413,
        "message": f"the upload is larger than this backend's limit of {UPLOAD_MB} MB "
        "(BOXSMITH_BACKEND_MAX_UPLOAD_MB)",
    }
    assert upload_leftovers(backend) == before
    again = api.put(path, content=b"x")  # the URL was used up
    assert "unknown or used upload URL" in e2b_error(again, 404)


def test_a_streamed_upload_stops_at_the_limit_and_leaves_nothing(
    backend: Backend, api: httpx.Client
) -> None:
    template_id, _ = new_build(api, "sec-stream")
    before = upload_leftovers(backend)
    path = upload_url(api, template_id, "ef" * 32)
    chunk = b"z" * (64 << 10)
    with socket.create_connection(("127.0.0.1", backend.port), timeout=30) as sock:
        sock.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range((UPLOAD_MB << 20) // len(chunk)):  # exactly the limit,
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b"1\r\nz\r\n")  # one byte past it, and no end chunk
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert json.loads(body)["code"] == 413
    assert upload_leftovers(backend) == before  # no partial file, no temp file


def test_an_upload_within_the_limit_is_kept_private(backend: Backend, api: httpx.Client) -> None:
    template_id, _ = new_build(api, "sec-small")
    response = api.put(upload_url(api, template_id, "12" * 32), content=b"y" * (UPLOAD_MB << 20))
    assert response.status_code == 200, response.text
    assert mode(backend.data / "uploads" / ("12" * 32)) == "600"


# -- unexpected failures and host paths ------------------------------------------------------


def test_an_unexpected_failure_is_a_generic_500_logged_by_the_backend(
    backend: Backend, api: httpx.Client
) -> None:
    template_id, _ = new_build(api, "sec-boom")
    path = upload_url(api, template_id, "34" * 32)
    uploads = backend.data / "uploads"
    uploads.rename(backend.data / "uploads-away")  # the upload can no longer be stored
    try:
        response = httpx.put(backend.url + path, content=b"x")
    finally:
        (backend.data / "uploads-away").rename(uploads)
    message = e2b_error(response, 500)
    assert message.startswith("internal error in the local backend")
    assert str(backend.data) not in message
    assert "FileNotFoundError" in backend.log.read_text()  # the details are in the log


def test_build_errors_show_paths_inside_the_image_not_on_the_host(backend: Backend) -> None:
    long_dir = "/" + "d" * 300  # longer than a file name may be
    template = Template().from_image("debian:bookworm-slim").set_workdir(long_dir)
    with pytest.raises(BuildException) as failed:
        Template.build(template, "sec-paths")
    message = str(failed.value)
    assert long_dir in message  # the path inside the image, as it is
    assert "file name too long" in message
    for host in ("overlay2", "/var/lib/docker", str(backend.data)):
        assert host not in message


def test_scrub_keeps_paths_in_the_image_and_hides_the_hosts() -> None:
    from boxsmith._internal.backend.wire import scrub

    layer = "/var/lib/docker/overlay2/" + "0f" * 32 + "/merged"
    assert scrub(f"mkdir {layer}/home/user/x: denied") == "mkdir /home/user/x: denied"
    assert scrub(f"stat {layer}: gone") == "stat /: gone"
    context = "COPY failed: stat /var/lib/docker/tmp/docker-builder123/ab/c: no such file"
    assert scrub(context) == "COPY failed: stat <build context>/ab/c: no such file"
    data = "/home/me/proj/.boxsmith/backend"
    text = f"open {data}/uploads/.upload-1: no space; /home/me/proj/.boxsmith/backend2 stays"
    assert scrub(text, [data]) == (
        "open <host folder>/uploads/.upload-1: no space; /home/me/proj/.boxsmith/backend2 stays"
    )
