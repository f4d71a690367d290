"""Template builds v2 (`boxsmith._internal.backend.builds`) with the real e2b SDK's request and
uploads.

The SDK's own serialization (`Template.to_json`) gives the request body and its tar helper
(`tar_file_stream`, as `Template.build` uploads) gives the uploads, so no server is involved.
Marked `docker`: without an engine these tests skip, except under CI (`CI` set), where they fail.
Images are tagged `boxsmith-test/tpl-<token>:*` and removed at the end, with the parity bases made
from them.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from e2b import Template
from e2b.template.consts import GZIP
from e2b.template.types import InstructionType
from e2b.template.utils import read_dockerignore, tar_file_stream

from boxsmith._internal.backend.build_request import BuildRequest, BuildRequestError
from boxsmith._internal.backend.build_uploads import UploadStore
from boxsmith._internal.backend.builds import LogEntry, StepFailed, run_build
from boxsmith._internal.build.base_images import resolve_mirrors
from boxsmith._internal.build.e2b_dockerfile import create_user, dockerfile_for
from boxsmith._internal.build.parity import PARITY_OF_LABEL
from boxsmith._internal.docker.client import LABEL, Engine, EngineUnavailable
from boxsmith._internal.docker.host_ca import host_ca_bundle
from tests.helpers import write_tree

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"
HASH = "ab" * 32


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """An entered Engine; skips (fails under CI) without an engine or the base image."""
    engine = Engine()
    try:
        engine.__enter__()
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(exc.message)
    try:
        if engine.image(BASE) is None and not os.environ.get("CI"):
            pytest.skip(f"{BASE} is not local: run `boxsmith images ensure {BASE}`")
        yield engine
    finally:
        engine.__exit__(None, None, None)


@pytest.fixture
def repo(engine: Engine) -> Iterator[str]:
    """An image repository of this test's own; its images and their parity bases go at the end."""
    name = f"boxsmith-test/tpl-{uuid.uuid4().hex[:12]}"
    yield name
    client = engine.client
    for image in client.images.list(name=name):
        for tag in image.tags:
            parity = client.images.list(filters={"label": f"{PARITY_OF_LABEL}={tag}"})
            for child in parity:
                client.images.remove(child.id, force=True)
        client.images.remove(image.id, force=True)


def sdk_request(template: Any, uploads: UploadStore) -> BuildRequest:
    """The build request and uploads exactly as `Template.build` produces them."""
    base = template._template
    for step in base._instructions_with_hashes():
        if step["type"] != InstructionType.COPY:
            continue
        ignore = [*read_dockerignore(base._file_context_path), *base._file_ignore_patterns]
        gzipped = GZIP if step.get("gzip") is None else step["gzip"]
        symlinks = bool(step.get("resolveSymlinks"))
        context = base._file_context_path
        with tar_file_stream(step["args"][0], context, ignore, symlinks, gzipped) as archive:
            uploads.save(step["filesHash"], archive)
    return BuildRequest.from_json(json.loads(Template.to_json(template)))


def build(engine: Engine, request: BuildRequest, uploads: UploadStore, ref: str, **kw: Any) -> Any:
    entries: list[LogEntry] = []
    ca = host_ca_bundle()
    try:
        image_id = run_build(
            engine,
            request,
            image_ref=ref,
            labels={LABEL: "1"},
            uploads=uploads,
            mirrors=resolve_mirrors(),
            ca=ca.read_bytes() if ca else None,
            log=entries.append,
            **kw,
        )
    except StepFailed as exc:
        return exc, entries
    return image_id, entries


def probe(engine: Engine, image: str, script: str) -> dict[str, str]:
    """Run `script` as root in `image`; its `key: value` lines as a dict."""
    output = engine.client.containers.run(
        image, ["sh", "-c", script], user="root", remove=True, labels={LABEL: "1"}
    )
    lines = output.decode().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def test_sdk_template_builds_as_e2b_runs_it(engine: Engine, tmp_path: Path, repo: str) -> None:
    ctx = write_tree(
        tmp_path / "ctx",
        {"hello.txt": "hello from the sdk\n", "conf/app.ini": "[app]\n", "conf/sub/deep.txt": "x"},
    )
    uploads = UploadStore(tmp_path / "uploads")
    template = (
        Template(file_context_path=ctx)
        .from_image(BASE)
        .copy("hello.txt", "/opt/app/", user="user", mode=0o640)  # 1
        .copy("conf", "/etc/demo", gzip=False)  # 2: a plain tar, owned by the current user
        .run_cmd("whoami > /tmp/root-step && echo root step ran")  # 3
        .run_cmd("whoami > /tmp/user-step", user="user")  # 4
        .set_envs({"GREETING": 'say "hi" \\ `back`', "EMPTY": ""})  # 5
        .set_user("alice")  # 6: created, with sudo
        .set_workdir("/home/alice/work")  # 7: created by alice
        .run_cmd(['printf "%s" "$GREETING" > greeting.txt', "[[ -n $BASH_VERSION ]]"])  # 8
        .set_start_cmd("sleep infinity", "true")
    )
    request = sdk_request(template, uploads)
    assert (request.start_cmd, request.ready_cmd) == ("sleep infinity", "true")
    image_id, entries = build(engine, request, uploads, f"{repo}:v1")
    assert isinstance(image_id, str), image_id

    found = probe(
        engine,
        f"{repo}:v1",
        """
        echo "hello: $(stat -c '%U:%G %a' /opt/app/hello.txt) $(cat /opt/app/hello.txt)"
        echo "conf: $(stat -c '%U:%G' /etc/demo/app.ini /etc/demo/sub/deep.txt | sort -u)"
        echo "who: $(cat /tmp/root-step) $(cat /tmp/user-step)"
        echo "greeting: $(cat /home/alice/work/greeting.txt)"
        echo "work: $(stat -c '%U' /home/alice/work /home/alice/work/greeting.txt | sort -u)"
        echo "sudo: $(su -s /bin/sh alice -c 'sudo -n id -un')"
        echo "parity: $(id -un user) $(stat -c '%a' /code)"
        """,
    )
    assert found == {
        "hello": "user:user 640 hello from the sdk",
        "conf": "root:root",
        "who": "root user",
        "greeting": 'say "hi" \\ `back`',
        "work": "alice",
        "sudo": "root",
        "parity": "user 777",
    }
    config = engine.image_config(f"{repo}:v1")
    assert (config["User"], config["WorkingDir"]) == ("alice", "/home/alice/work")
    assert {'GREETING=say "hi" \\ `back`', "EMPTY="} <= set(config["Env"])  # type: ignore[arg-type]

    assert all(e.timestamp.tzinfo is UTC for e in entries)
    assert {e.step for e in entries} == {"base", *map(str, range(1, 9)), "finalize"}
    heads = [(e.step, e.message) for e in entries if e.message.startswith("[")]
    assert ("3", "[builder 3/8] RUN whoami > /tmp/root-step && echo root step ran") in heads
    assert ("base", f"[base] FROM {BASE}") in heads
    assert ("3", "info", "root step ran") in [(e.step, e.level, e.message) for e in entries]

    # A child starts from the parent's image with E2B's `USER root` + `WORKDIR /` prefix, and
    # keeps the parent's final user and workdir when it sets none.
    child = Template().from_template("parent").run_cmd("id -un > who.txt")
    image_id, _ = build(
        engine, sdk_request(child, uploads), uploads, f"{repo}:child", template_image=f"{repo}:v1"
    )
    assert isinstance(image_id, str), image_id
    script = 'echo "child: $(cat /who.txt) $(cat /home/alice/work/greeting.txt)"'
    assert probe(engine, f"{repo}:child", script) == {"child": 'root say "hi" \\ `back`'}
    config = engine.image_config(f"{repo}:child")
    assert (config["User"], config["WorkingDir"]) == ("alice", "/home/alice/work")


def test_failing_step_is_named_as_e2b_names_it(engine: Engine, tmp_path: Path, repo: str) -> None:
    uploads = UploadStore(tmp_path / "uploads")
    template = (
        Template(file_context_path=tmp_path)
        .from_image(BASE)
        .set_envs({"A": "1"})
        .run_cmd("echo fine")
        .run_cmd("echo boom && false")
        .run_cmd("echo never")
    )
    error, entries = build(engine, sdk_request(template, uploads), uploads, f"{repo}:bad")
    assert isinstance(error, StepFailed)
    assert error.step == "3"
    assert str(error) == (
        "step 3 (RUN echo boom && false) failed: "
        "The command 'echo boom && false' returned a non-zero code: 1"
    )
    assert ("3", "boom") in [(e.step, e.message) for e in entries]
    assert not any(e.step == "4" for e in entries)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.client.images.get(f"{repo}:bad")


def test_unknown_run_user_fails_with_e2bs_wording(
    engine: Engine, tmp_path: Path, repo: str
) -> None:
    """E2B's envd refuses a command for a user that does not exist: the build fails at that
    step with envd's words, which the SDK raises as its BuildException."""
    uploads = UploadStore(tmp_path / "uploads")
    template = Template().from_image(BASE).run_cmd("echo fine").run_cmd("whoami", user="root123")
    error, _ = build(engine, sdk_request(template, uploads), uploads, f"{repo}:nouser")
    assert isinstance(error, StepFailed)
    assert error.step == "2"
    assert str(error) == (
        "failed to run command 'whoami': command failed: unauthenticated: "
        "invalid username: 'root123'"
    )


def test_base_and_upload_failures(engine: Engine, tmp_path: Path, repo: str) -> None:
    uploads = UploadStore(tmp_path / "uploads")
    missing = BuildRequest.from_json({"fromImage": f"{repo}-nobody:v1", "steps": []})
    error, _ = build(engine, missing, uploads, f"{repo}:x", pull_timeout=2)
    assert isinstance(error, StepFailed)
    assert error.step == "base"
    assert str(error).startswith(f"base (FROM {repo}-nobody:v1) failed: cannot provide base image")

    never_uploaded = BuildRequest.from_json(
        {
            "fromImage": BASE,
            "steps": [
                {"type": "RUN", "args": ["true"]},
                {"type": "COPY", "args": ["a.txt", "/a.txt", "", ""], "filesHash": HASH},
            ],
        }
    )
    error, _ = build(engine, never_uploaded, uploads, f"{repo}:x")
    assert isinstance(error, StepFailed)
    assert (error.step, str(error).split(":")[0]) == ("2", "step 2 (COPY a.txt /a.txt) failed")


# -- no engine needed ----------------------------------------------------------------------------


def test_request_validation_names_the_problem() -> None:
    def problem(body: dict[str, Any]) -> str:
        with pytest.raises(BuildRequestError) as info:
            BuildRequest.from_json(body)
        assert isinstance(info.value, ValueError)
        return info.value.message

    registry = {"type": "registry", "username": "u", "password": "p"}
    assert "not supported" in problem({"fromImage": "x", "fromImageRegistry": registry})
    assert "exactly one" in problem({"fromImage": "x", "fromTemplate": "y"})
    assert "unknown type 'HEALTHCHECK'" in problem(
        {"fromImage": "x", "steps": [{"type": "HEALTHCHECK", "args": []}]}
    )
    copy = {"type": "COPY", "args": ["a", "/a", "", ""]}
    assert (
        problem({"fromImage": "x", "steps": [copy]})
        == "step 1: COPY: filesHash is missing or invalid"
    )
    escape = {**copy, "args": ["../a", "/a", "", ""], "filesHash": HASH}
    assert "relative path inside" in problem({"fromImage": "x", "steps": [escape]})
    env = {"type": "ENV", "args": ["A"]}
    assert "key1, value1" in problem({"fromImage": "x", "steps": [env]})
    # a user that would end COPY's line and start another instruction, or continue it
    for user in ("root\nRUN echo injected #", "root\\", "a b"):
        chown = {**copy, "args": ["a", "/a", user, ""], "filesHash": HASH}
        assert "must be one word" in problem({"fromImage": "x", "steps": [chown]})
        run = {"type": "RUN", "args": ["true", user]}
        assert "[command, user]" in problem({"fromImage": "x", "steps": [run]})
    newline_src = {**copy, "args": ["a\nRUN x", "/a", "", ""], "filesHash": HASH}
    assert "one-line src" in problem({"fromImage": "x", "steps": [newline_src]})


def test_dockerfile_mirrors_e2b_step_semantics() -> None:
    request = BuildRequest.from_json(
        {
            "fromImage": "debian:bookworm-slim",
            "steps": [
                {"type": "COPY", "args": ["src/*.py", "app/", "", "0755"], "filesHash": HASH},
                {"type": "USER", "args": ["bob"]},
                {"type": "WORKDIR", "args": ["/srv/$NAME"]},
                {"type": "RUN", "args": ["apt-get update", "root"], "force": True},
                {"type": "ENV", "args": ["K", 'a "b" $X']},
            ],
        }
    )
    text, origins = dockerfile_for(
        request.steps, title="FROM debian:bookworm-slim", base_ref="parity:x", ca=False, nonce="n0"
    )
    run = 'RUN ["/bin/sh", "-c", "exec \\"$(command -v bash || echo /bin/sh)\\" -c \\"$0\\"", '
    assert text.splitlines() == [
        "FROM parity:x",
        "USER root",
        "WORKDIR /",
        'COPY --chown=root:root ["copy-1/src", "app/"]',
        'RUN ["/bin/sh", "-c", "' + _create_user_script("bob") + '"]',
        "USER bob",
        'RUN ["/bin/sh", "-c", "mkdir -p -- \\"/srv/$NAME\\""]',
        "WORKDIR /srv/$NAME",
        "ARG BOXSMITH_SKIP_CACHE=n0",
        "USER root",
        run + '"apt-get update"]',
        "USER bob",
        'ENV K="a \\"b\\" $X"',
        "USER root",
        "RUN sh /usr/local/share/boxsmith/parity.sh finalize",
        "USER bob",
        "WORKDIR /srv/$NAME",
    ]
    steps = ["base"] * 3 + ["1"] + ["2"] * 2 + ["3"] * 2 + ["4"] * 4 + ["5"] + ["finalize"] * 4
    assert [o.step for o in origins] == steps
    assert (origins[10].title, origins[10].command) == ("RUN apt-get update", "apt-get update")


def _create_user_script(login: str) -> str:
    return json.dumps(create_user(login))[1:-1]


def test_upload_store_keeps_uploads_as_received(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    plain = buffer.getvalue()
    store = UploadStore(tmp_path / "up")
    store.save(HASH, io.BytesIO(gzip.compress(plain)))
    store.save("cd" * 32, io.BytesIO(plain))
    assert store.has(HASH)
    assert not store.has("ef" * 32)
    assert store.path(HASH).read_bytes()[:2] == b"\x1f\x8b"
    for files_hash in (HASH, "cd" * 32):
        with store.open(files_hash) as stream:
            assert stream.read() == plain
    assert sorted(p.name for p in store.root.iterdir()) == sorted([HASH, "cd" * 32])
    with pytest.raises(BuildRequestError):
        store.path("../escape")
