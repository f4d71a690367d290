"""The Docker engine boundary and the base-image stand-ins, against a real engine.

Marked `docker`. Without an engine these tests skip, except under CI (`CI` set), where they fail:
CI runs `scripts/docker-up` first. The stand-ins are made once per session (from scratch on a new
machine: a few minutes) and reused; every test checks that no boxsmith container is left behind.
"""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker.errors
import pytest
import requests

from boxsmith._internal.build.base_images import (
    STAND_IN_LABEL,
    Ensured,
    ImageUnavailable,
    ensure_image,
)
from boxsmith._internal.cli import images as images_command
from boxsmith._internal.docker.build_stream import shutdown_of
from boxsmith._internal.docker.client import (
    LABEL,
    MIN_API,
    BuildFailed,
    Engine,
    EngineError,
    EngineUnavailable,
)
from boxsmith.config import load_settings

pytestmark = pytest.mark.docker

STAND_INS = [
    "debian:bookworm-slim",
    "debian:bookworm",
    "node:21-slim",
    "node:21",
    "python:3.11-slim",
    "python:3.11",
    "debian:trixie-slim",
    "python:3.13-slim",
]
CHECKS = {
    "debian:bookworm-slim": {"cat /etc/debian_version": r"^12\.\d+$"},
    "debian:bookworm": {"cat /etc/debian_version": r"^12\.\d+$"},
    "node:21-slim": {"node --version": r"^v21\.\d+\.\d+$", "npm --version": r"^10\."},
    "node:21": {"node --version": r"^v21\.\d+\.\d+$", "git --version": r"^git version"},
    "python:3.11-slim": {"python --version": r"^Python 3\.11\.\d+$", "pip --version": r"^pip "},
    "python:3.11": {"python --version": r"^Python 3\.11\.\d+$", "gcc --version": r"^gcc "},
    "debian:trixie-slim": {"cat /etc/debian_version": r"^13\.\d+$"},
    "python:3.13-slim": {"python --version": r"^Python 3\.13\.\d+$", "pip --version": r"^pip "},
}
# A system-wide `pip install` with no index: a wheel made on the spot. Debian's own pip refuses it
# (PEP 668, EXTERNALLY-MANAGED); the official images' pip, and the stand-ins', install it.
PIP_INSTALLS_OFFLINE = """\
set -e
python - <<'PY'
import zipfile
with zipfile.ZipFile("/tmp/boxsmith_probe-1.0-py3-none-any.whl", "w") as whl:
    whl.writestr("boxsmith_probe.py", "print('probe imported')\\n")
    info = "boxsmith_probe-1.0.dist-info/"
    whl.writestr(
        info + "METADATA", "Metadata-Version: 2.1\\nName: boxsmith-probe\\nVersion: 1.0\\n"
    )
    whl.writestr(
        info + "WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    )
    whl.writestr(info + "RECORD", "")
PY
pip install --no-index --no-cache-dir --root-user-action=ignore /tmp/boxsmith_probe-*.whl >&2
python -m boxsmith_probe
"""


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One engine connection for the session; skips (fails under CI) when none answers."""
    try:
        with Engine() as connected:
            yield connected
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{exc.message} ({exc.hint})")


@pytest.fixture(scope="session")
def built(engine: Engine) -> dict[str, Ensured]:
    """Every stand-in, made once per session: {reference: what ensure did}."""
    done: dict[str, Ensured] = {}
    for ref in STAND_INS:
        for item in ensure_image(engine, ref, log=lambda line: print(f"images: {line}")):
            done.setdefault(item.ref, item)
    for item in done.values():
        print(f"{item.action:<8} {item.ref:<28} {item.seconds:6.1f}s {item.size / 1e6:7.1f} MB")
    return done


@pytest.fixture(autouse=True)
def _no_container_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" in request.fixturenames:
        try:
            engine: Engine = request.getfixturevalue("engine")
        except pytest.skip.Exception:
            return
        # This session's containers only: other boxsmith processes may share the engine.
        assert engine.containers(engine.session) == []


def test_engine_answers_with_a_recent_api(engine: Engine) -> None:
    assert engine.version
    assert tuple(map(int, engine.api_version.split("."))) >= tuple(map(int, MIN_API.split(".")))


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as sock:  # bound, never listening: connection refused
        sock.bind(str(dead))
    with (
        pytest.raises(EngineUnavailable) as info,
        Engine(environ={"DOCKER_HOST": f"unix://{dead}"}),
    ):
        pass
    assert info.value.exit_code == 3
    assert f"no Docker engine answers at unix://{dead}: Connection refused" in info.value.message
    assert "scripts/docker-up" in info.value.hint
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_no_engine_on_tcp_is_translated_from_docker() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        pytest.raises(EngineUnavailable) as info,
        Engine(environ={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}),
    ):
        pass
    assert f"no Docker engine answers at tcp://127.0.0.1:{port}" in info.value.message
    assert isinstance(info.value.__cause__, docker.errors.DockerException)


def test_stand_ins_are_labelled(engine: Engine, built: dict[str, Ensured]) -> None:
    assert set(STAND_INS) <= set(built)
    for ref in STAND_INS:
        info = engine.image(ref)
        assert info is not None
        if STAND_IN_LABEL not in info.labels:
            continue  # a real image from a registry
        assert info.labels[STAND_IN_LABEL] == ref
        assert info.labels[LABEL] == "1"
        assert re.fullmatch(r"[a-z-]+/\d+", info.labels["dev.boxsmith.stand-in.recipe"])


def test_ensure_twice_has_nothing_to_do(
    engine: Engine, built: dict[str, Ensured], tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = images_command.run(load_settings(tmp_path), ["debian:bookworm-slim"], out=out, err=err)
    assert code == 0, err.getvalue()
    assert re.match(r"present\s+debian:bookworm-slim\s", out.getvalue())
    assert "nothing to do" in err.getvalue()


@pytest.mark.parametrize(
    ("ref", "command", "expected"),
    [(ref, cmd, pattern) for ref, checks in CHECKS.items() for cmd, pattern in checks.items()]
    + [(ref, "bash --version", r"^GNU bash, version 5\.2") for ref in STAND_INS],
)
def test_stand_in_runs_a_command(
    engine: Engine, built: dict[str, Ensured], ref: str, command: str, expected: str
) -> None:
    result = engine.run(ref, command.split())
    assert result.exit_code == 0, result.stderr
    first = (result.stdout or result.stderr).splitlines()[0]
    assert re.match(expected, first), first


def test_images_ensure_makes_python_3_13_from_trixie(engine: Engine, tmp_path: Path) -> None:
    """Debian 13 ships Python 3.13: `images ensure` makes trixie and python:3.13 stand-ins
    (old main refused 3.13: Debian 12 has 3.11 only), where pip installs system-wide."""
    out, err = io.StringIO(), io.StringIO()
    refs = ["debian:trixie-slim", "python:3.13-slim"]
    code = images_command.run(load_settings(tmp_path), refs, out=out, err=err)
    assert code == 0, err.getvalue()
    for ref in refs:
        assert re.search(rf"^(built|present|pulled)\s+{re.escape(ref)}\s", out.getvalue(), re.M)

    def run(command: str) -> str:
        result = engine.run("python:3.13-slim", ["sh", "-c", command])
        assert result.exit_code == 0, result.stderr
        return result.stdout

    for ref in refs:
        release = engine.run(ref, ["cat", "/etc/os-release"])
        assert "VERSION_CODENAME=trixie" in release.stdout.splitlines()
    assert re.fullmatch(r"Python 3\.13\.\d+\n", run("python --version"))
    assert re.fullmatch(  # dist-packages: the stand-in (Debian's layout); site-: a pulled one
        r"pip \S+ from /usr/local/lib/python3\.13/(dist|site)-packages/pip \(python 3\.13\)\n",
        run("pip --version"),
    )
    assert run("ls /usr/lib/python3*/EXTERNALLY-MANAGED 2>/dev/null || echo none") == "none\n"
    assert run(PIP_INSTALLS_OFFLINE) == "probe imported\n"


def test_an_image_no_recipe_can_make_says_how_to_provide_it(engine: Engine) -> None:
    # A python minor version made up for this run: never local, no registry has it.
    ref = f"python:3.{uuid.uuid4().int % 10**8 + 10**8}-slim"
    with pytest.raises(ImageUnavailable) as info:
        ensure_image(engine, ref, pull_timeout=10)
    message = info.value.format()
    assert info.value.exit_code == 3
    assert ref in message
    assert "provides Python 3.11 only" in message
    assert "docker tag" in message
    assert "[tool.boxsmith.mirrors]" in message


def test_a_mirror_entry_is_pulled_or_taken_locally_and_tagged(
    engine: Engine, built: dict[str, Ensured]
) -> None:
    alias = "boxsmith-test/debian:bookworm-slim"
    with pytest.raises(ImageUnavailable, match="its mirror bookworm-slim-stand-in failed"):
        ensure_image(engine, alias, mirrors={"boxsmith-test/*": "{tag}-stand-in"}, pull_timeout=5)
    try:
        done = ensure_image(
            engine, alias, mirrors={"boxsmith-test/*": "debian:{tag}"}, pull_timeout=5
        )
        assert [(d.ref, d.action) for d in done] == [(alias, "mirrored")]
        info = engine.image(alias)
        assert info is not None
        assert info.id == (engine.image("debian:bookworm-slim") or info).id
    finally:
        engine.remove_image(alias)


def test_a_failing_command_still_removes_its_container(
    engine: Engine, built: dict[str, Ensured]
) -> None:
    with pytest.raises(EngineError, match="no exit within 1s"):
        engine.run("debian:bookworm-slim", ["sleep", "30"], timeout=1)
    # This session's only: other runs may share the engine.
    assert engine.containers(engine.session) == []


def _until(what: str, condition: Callable[[], bool], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"not within {limit:g}s: {what}"
        time.sleep(0.5)


def _context(dockerfile: str) -> io.BytesIO:
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    body.seek(0)
    return body


def test_cancelling_a_build_stops_it_in_the_engine(
    engine: Engine, built: dict[str, Ensured]
) -> None:
    """What Ctrl-C does to a running `boxsmith build` (`Engine.abort`): the build ends at once
    with BuildFailed "cancelled", and the engine stops it (its step's container goes, no image)."""
    token = uuid.uuid4().hex[:12]
    ref = f"boxsmith-test/cancel:{token}"
    dockerfile = f"FROM debian:bookworm-slim\nRUN echo cancel-{token} && sleep 600\n"
    running = threading.Event()
    outcome: list[BaseException] = []

    def on_line(line: str) -> None:
        if line.startswith(" ---> Running in "):
            running.set()

    def build() -> None:
        try:
            engine.build(
                _context(dockerfile), ref, labels={}, dockerfile="Dockerfile", on_line=on_line
            )
        except BaseException as exc:
            outcome.append(exc)

    def step_containers() -> list[str]:
        listed = engine.client.api.containers(all=True)
        return [c["Id"] for c in listed if f"cancel-{token}" in c.get("Command", "")]

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    try:
        assert running.wait(120), "the RUN step never started"
        _until("the step's container runs", lambda: bool(step_containers()))
        engine.abort()
        thread.join(60)  # the step sleeps 600 s: only the cancel ends the build this soon
        assert not thread.is_alive(), "the build stream did not end"
        (error,) = outcome
        assert isinstance(error, BuildFailed)
        assert error.message == f"building {ref} was cancelled"
        _until("the engine removed the step's container", lambda: not step_containers())
        assert engine.image(ref) is None
    finally:
        for container_id in step_containers():
            engine.remove_container(container_id)
        engine.remove_image(ref)


def test_a_urllib3_without_the_cancel_hook_fails_loudly() -> None:
    """The cancel needs the socket under a streamed response; a urllib3 that hides it is an
    error when the build starts, not a Ctrl-C that silently cancels nothing."""

    class Hidden:
        connection = None

    response = requests.Response()
    response.raw = Hidden()
    with pytest.raises(EngineError, match=r"cannot cancel builds with urllib3 .*is None"):
        shutdown_of(response)
