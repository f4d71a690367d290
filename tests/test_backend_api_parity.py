"""The local backend's REST control plane against E2B's API as the unchanged e2b SDK calls it:
`Sandbox.list` paging (`limit`, `x-next-token`) and filters, the v1 routes older SDK lines call, and
E2B's JSON error shape for what no route serves (404, 405 with every allowed method), and the API
key's form (one every SDK line accepts; an old key file kept; `backend reset` trusts both), over
real HTTP against `boxsmith backend serve` (a real process) with sandboxes as containers.

Marked `docker`. One backend serves the module.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import ConnectionConfig, Sandbox, SandboxQuery, SandboxState, Template
from e2b.api.client.api.sandboxes import (
    get_sandboxes,
    post_sandboxes,
    post_sandboxes_sandbox_id_connect,
)
from e2b.api.client.models import ConnectSandbox, NewSandbox
from e2b.api.client.models import Sandbox as ApiSandbox
from e2b.api.client_sync import get_api_client

from tests.helpers import Backend, cli, serving_backend

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def template(backend: Backend) -> str:
    """A template with nothing added to its base image."""
    name = f"parity-{uuid.uuid4().hex[:8]}"
    Template.build(Template().from_image("debian:bookworm-slim"), name)
    return name


@pytest.fixture(scope="module")
def three(template: str) -> Iterator[tuple[str, list[Sandbox]]]:
    """Three sandboxes sharing a marker in their metadata (the last also `role=odd`), started
    one after another."""
    marker = uuid.uuid4().hex[:8]
    started: list[Sandbox] = []
    try:
        for i in range(3):
            meta = {"marker": marker, **({"role": "odd"} if i == 2 else {})}
            started.append(Sandbox.create(template, metadata=meta, timeout=300))
        yield marker, started
    finally:
        for sbx in started:
            sbx.kill()


def test_list_pages_by_limit_and_next_token(three: tuple[str, list[Sandbox]]) -> None:
    marker, started = three
    pages = Sandbox.list(query=SandboxQuery(metadata={"marker": marker}), limit=2)
    first = pages.next_items()
    assert len(first) == 2
    assert pages.has_next
    token = pages.next_token
    assert token
    second = pages.next_items()
    assert not pages.has_next
    assert pages.next_token is None
    # newest first, as E2B lists them; every sandbox once
    newest_first = [s.sandbox_id for s in reversed(started)]
    assert [s.sandbox_id for s in first + second] == newest_first
    # the token resumes in another paginator too
    resumed = Sandbox.list(
        query=SandboxQuery(metadata={"marker": marker}), limit=2, next_token=token
    )
    assert [s.sandbox_id for s in resumed.next_items()] == newest_first[2:]
    oldest_first = Sandbox.list(
        query=SandboxQuery(metadata={"marker": marker}), limit=3, order="asc"
    ).next_items()
    assert [s.sandbox_id for s in oldest_first] == newest_first[::-1]


def test_list_filters(template: str, three: tuple[str, list[Sandbox]]) -> None:
    marker, started = three

    def ids(**query: object) -> list[str]:
        found = Sandbox.list(query=SandboxQuery(**query)).next_items()  # type: ignore[arg-type]
        return [s.sandbox_id for s in found if s.metadata.get("marker") == marker]

    assert ids(metadata={"marker": marker, "role": "odd"}) == [started[2].sandbox_id]
    assert ids(metadata={"marker": marker, "role": "none"}) == []
    assert ids(state=[SandboxState.PAUSED]) == []
    assert len(ids(state=[SandboxState.RUNNING, SandboxState.PAUSED])) == 3
    assert len(ids(template=template)) == 3
    assert ids(template="parity-no-such-template") == []
    later = started[1].get_info().started_at
    assert ids(started_after=later) == [started[2].sandbox_id, started[1].sandbox_id]


def test_v1_create_and_connect_routes(backend: Backend, template: str) -> None:
    """Older SDK lines create with POST /sandboxes and connect with POST /sandboxes/{id}/connect."""
    client = get_api_client(ConnectionConfig())
    created = post_sandboxes.sync_detailed(
        client=client, body=NewSandbox(template_id=template, timeout=60)
    )
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, ApiSandbox)
    sid = created.parsed.sandbox_id
    try:
        connected = post_sandboxes_sandbox_id_connect.sync_detailed(
            sid, client=client, body=ConnectSandbox(timeout=120)
        )
        assert connected.status_code == 200, connected.content
        assert isinstance(connected.parsed, ApiSandbox)
        assert connected.parsed.envd_access_token == created.parsed.envd_access_token
        assert Sandbox.connect(sid).commands.run("echo v1").stdout == "v1\n"
        missing = post_sandboxes_sandbox_id_connect.sync_detailed(
            "inosuchsandbox", client=client, body=ConnectSandbox(timeout=60)
        )
        assert missing.status_code == 404
        assert json.loads(missing.content)["code"] == 404
        for path in ("/sandboxes", f"/sandboxes/{sid}/connect"):  # the key is checked
            answer = httpx.post(backend.url + path, json={"templateID": template, "timeout": 60})
            assert answer.status_code == 401
            assert answer.json()["code"] == 401
    finally:
        assert Sandbox.kill(sid)


def test_v1_list_route(backend: Backend, three: tuple[str, list[Sandbox]]) -> None:
    marker, started = three
    client = get_api_client(ConnectionConfig())
    listed = get_sandboxes.sync_detailed(client=client, metadata=f"marker={marker}")
    assert listed.status_code == 200, listed.content
    assert isinstance(listed.parsed, list)
    assert {s.sandbox_id for s in listed.parsed} == {s.sandbox_id for s in started}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/v2/nope"),
        ("GET", "/templates/a/b/c/d/e"),
        ("GET", "/v9/sandboxes"),
        ("DELETE", "/_uploads"),
    ],
)
def test_unknown_routes_answer_e2bs_error_shape(backend: Backend, method: str, path: str) -> None:
    answer = httpx.request(method, backend.url + path, headers={"X-API-KEY": backend.key})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "code": 404,
        "message": f"the local backend has no route {method} {path}",
    }


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v2/sandboxes", "GET, HEAD, POST"),
        ("PUT", "/sandboxes", "GET, HEAD, POST"),
        ("PATCH", "/templates/some-id", "DELETE, GET, HEAD"),
        ("PUT", "/sandboxes/some-id", "DELETE, GET, HEAD"),
        ("GET", "/_uploads/some-token", "PUT"),
    ],
)
def test_wrong_methods_answer_405_naming_every_allowed_one(
    backend: Backend, method: str, path: str, allowed: str
) -> None:
    answer = httpx.request(method, backend.url + path, headers={"X-API-KEY": backend.key})
    assert answer.status_code == 405
    assert answer.json()["code"] == 405
    named = sorted(m.strip() for m in answer.headers["allow"].split(","))
    assert ", ".join(named) == allowed
    assert answer.json()["message"].startswith(f"method {method} is not allowed on {path} (")
    for each in allowed.split(", "):
        assert each in answer.json()["message"]


SDK_KEY_FORM = re.compile(r"^e2b_[0-9a-f]+$")  # what another e2b SDK line checks client-side


def test_a_new_key_has_the_form_every_sdk_line_accepts(backend: Backend) -> None:
    assert re.fullmatch(r"e2b_[0-9a-f]{40}", backend.key)
    assert SDK_KEY_FORM.match(backend.key)


def test_a_key_file_of_the_old_form_is_kept_and_served(tmp_path: Path) -> None:
    old = "e2b_local_" + "0123456789" * 4
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "data/api_key").write_text(old + "\n")
    with serving_backend(tmp_path) as server:
        assert server.key == old
        assert Sandbox.list().next_items() == []  # the SDK authenticates with it
        refused = httpx.get(server.url + "/v2/sandboxes", headers={"X-API-KEY": "e2b_" + "0" * 40})
        assert refused.status_code == 401


@pytest.mark.parametrize("key", ["e2b_" + "ab" * 20, "e2b_local_" + "ab" * 20])
def test_reset_trusts_a_key_of_either_form(tmp_path: Path, key: str) -> None:
    """A damaged state file: the key's form proves the folder."""
    folder = tmp_path / "data"
    (folder / "uploads").mkdir(parents=True)
    (folder / "api_key").write_text(key + "\n")
    (folder / "state.sqlite3").write_bytes(b"SQLite format 3\0" + b"\x07" * 40)
    reset = cli(tmp_path, "backend", "reset", "--yes", "--data-dir", str(folder))
    assert reset.code == 0, reset.err
    assert list(folder.iterdir()) == []


def test_reset_refuses_a_key_of_neither_form(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "api_key").write_text("e2b_" + "ab" * 19 + "\n")  # 38 hex digits
    refused = cli(tmp_path, "backend", "reset", "--yes", "--data-dir", str(folder))
    assert refused.code == 2
    assert "e2b_<40 hex digits> or e2b_local_<40 hex digits>" in refused.err
    assert (folder / "api_key").exists()
