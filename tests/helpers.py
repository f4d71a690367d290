"""Test helpers: build a project tree inline and run the CLI in-process."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from boxsmith._internal.cli.app import main

MINIMAL = """\
name: {name}
version: "1.0.0"
description: test template
base_image: debian:bookworm-slim
"""


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `{relative path: content}` under root (text is dedented); return root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes (to assert nothing was written)."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class Run:
    """Result of an in-process CLI run."""

    code: int
    out: str
    err: str


def cli(root: Path, *args: str) -> Run:
    """Run `boxsmith -C root args...` in-process."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["-C", str(root), *args], out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def remove_backend_images(data: Path) -> None:
    """Remove the template images the backend of data folder `data` built (after it stopped)."""
    import docker

    from boxsmith._internal.backend.datadir import backend_id

    client = docker.from_env()
    for image in client.images.list(filters={"label": f"dev.boxsmith.backend={backend_id(data)}"}):
        for tag in image.tags or [image.id]:
            client.images.remove(tag, force=True)


class Backend:
    """A `boxsmith backend serve` process (a real one, on a free port) for tests; `env` adds to
    its environment (limits such as BOXSMITH_BACKEND_MAX_SANDBOXES)."""

    def __init__(self, root: Path, data: Path, env: Mapping[str, str] | None = None) -> None:
        self.root, self.data = root, data
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = self.data.parent / f"backend-{self.port}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "boxsmith",
                    "-C",
                    str(self.root),
                    "backend",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=self.env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the backend did not answer within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    @property
    def backend_id(self) -> str:
        """The label value on every container and image this backend makes."""
        from boxsmith._internal.backend.datadir import backend_id

        return backend_id(self.data)

    def remove_images(self) -> None:
        """Remove the template images this backend built (call after `stop`)."""
        remove_backend_images(self.data)

    @property
    def key(self) -> str:
        return (self.data / "api_key").read_text().strip()


@contextlib.contextmanager
def serving_backend(root: Path, env: Mapping[str, str] | None = None) -> Iterator[Backend]:
    """A backend serving from `root` (with `env` added to its environment), the e2b SDK's
    environment pointed at it; afterwards stopped, its images removed, and no sandbox container
    of it left (asserted). Skips without a Docker engine (fails under CI)."""
    import docker
    import pytest

    try:
        docker.from_env().ping()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
    server = Backend(root, root / "data", env)
    server.start()
    saved = {k: os.environ.get(k) for k in ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY")}
    os.environ.update(
        {"E2B_API_URL": server.url, "E2B_SANDBOX_URL": server.url, "E2B_API_KEY": server.key}
    )
    try:
        yield server
    finally:
        server.stop()
        server.remove_images()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        label = f"dev.boxsmith.backend={server.backend_id}"
        left = docker.from_env().containers.list(all=True, filters={"label": label})
        assert left == [], "the backend left sandbox containers behind"
