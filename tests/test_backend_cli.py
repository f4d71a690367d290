"""`boxsmith backend serve --detach | env | status | stop`, and what serve refuses.

Marked `docker`: serve talks to the engine (it reconciles containers of an earlier run).
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import cli

pytestmark = pytest.mark.docker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_detached_backend_env_status_and_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = str(_free_port())
    started = cli(tmp_path, "backend", "serve", "--detach", "--port", port, "--data-dir", str(data))
    try:
        assert started.code == 0, started.err
        url = f"http://127.0.0.1:{port}"
        key = (data / "api_key").read_text().strip()
        assert started.out.splitlines() == [
            f"export E2B_API_URL={url}",
            f"export E2B_SANDBOX_URL={url}",
            f"export E2B_API_KEY={key}",
        ]
        assert stat.S_IMODE(os.stat(data / "api_key").st_mode) == 0o600
        assert re.fullmatch(r"e2b_[0-9a-f]{40}", key)  # the form every SDK line accepts

        env = cli(tmp_path, "backend", "env", "--data-dir", str(data))
        assert env.code == 0
        assert env.out == started.out

        status = cli(tmp_path, "backend", "status", "--json", "--data-dir", str(data))
        assert status.code == 0, status.err
        info = json.loads(status.out)
        assert info["healthy"] is True
        assert info["url"] == url

        # The control plane refuses requests without the key, in E2B's error shape.
        request = urllib.request.Request(f"{url}/v2/sandboxes")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        assert set(json.loads(refused.value.read())) == {"code", "message"}

        again = cli(
            tmp_path, "backend", "serve", "--detach", "--port", port, "--data-dir", str(data)
        )
        assert again.code == 0
        assert "already running" in again.err
    finally:
        stopped = cli(tmp_path, "backend", "stop", "--data-dir", str(data))
    assert stopped.code == 0, stopped.err
    assert "backend stopped" in stopped.err
    gone = cli(tmp_path, "backend", "status", "--data-dir", str(data))
    assert gone.code == 3
    assert "no backend runs" in gone.err


def test_serve_refuses_all_interfaces_and_a_busy_port(tmp_path: Path) -> None:
    wide = cli(tmp_path, "backend", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"))
    assert wide.code == 2
    assert "refusing to listen on 0.0.0.0" in wide.err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = cli(tmp_path, "backend", "serve", "--port", port, "--data-dir", str(tmp_path / "d"))
    assert taken.code == 3
    assert f"cannot listen on 127.0.0.1:{port}" in taken.err


def test_the_local_target_takes_a_free_port_when_another_process_has_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from boxsmith._internal.backend.control import DEFAULT_PORT, stop
    from boxsmith._internal.backend.datadir import data_dir
    from boxsmith._internal.publish.targets import connect
    from boxsmith.config import load_settings

    monkeypatch.delenv("BOXSMITH_BACKEND_DIR", raising=False)
    settings = load_settings(tmp_path)
    with socket.socket() as other:  # say, the backend of another checkout
        # as a server binds: connections of an earlier backend there (TIME_WAIT) do not stop it
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("127.0.0.1", DEFAULT_PORT))
            other.listen()
        except OSError:
            pass  # something has it already: the same situation
        monkeypatch.delenv("BOXSMITH_BACKEND_PORT", raising=False)
        try:
            errors = io.StringIO()
            target = connect(settings, "local", err=errors)
            url = target.params["api_url"]
            assert url.startswith("http://127.0.0.1:")
            assert not url.endswith(f":{DEFAULT_PORT}")
            assert "started the local backend on " + url in errors.getvalue()
            again = connect(settings, "local", err=io.StringIO())  # found, not started again
            assert again.params == target.params
        finally:
            stop(data_dir(tmp_path))


def test_a_busy_port_asked_for_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boxsmith._internal.publish.targets import connect
    from boxsmith.config import load_settings
    from boxsmith.errors import BoxsmithError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("BOXSMITH_BACKEND_PORT", str(busy.getsockname()[1]))
        with pytest.raises(BoxsmithError) as refused:
            connect(load_settings(tmp_path), "local", err=io.StringIO())
    assert refused.value.exit_code == 3
    assert "is in use by another process" in refused.value.format()
    monkeypatch.setenv("BOXSMITH_BACKEND_PORT", "high")
    with pytest.raises(BoxsmithError) as bad:
        connect(load_settings(tmp_path), "local", err=io.StringIO())
    assert bad.value.exit_code == 2
