"""Connect to the Docker engine: check that one answers and speaks a recent enough API.

`connect` raises `EngineUnavailable` (exit 3, naming `scripts/docker-up`) when no engine answers
at DOCKER_HOST (default: the unix socket), or when it is older than Docker 20.10 (`MIN_API`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import docker

from boxsmith._internal.docker.engine_errors import FOREIGN, HINT, EngineUnavailable, reason

__all__ = ["MIN_API", "connect"]

MIN_API = "1.41"  # Docker 20.10, the engine Debian 12 ships as docker.io


def _api_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def connect(environ: Mapping[str, str] | None = None) -> tuple[docker.DockerClient, str, str]:
    """(client, engine version, API version) of the engine at `environ`'s DOCKER_HOST (default:
    `os.environ`'s); the caller closes the client."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        # Checked here first: docker-py leaks the socket of a refused unix connection.
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(5)
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError as exc:
                raise EngineUnavailable(
                    f"no Docker engine answers at {host}: {exc.strerror or exc}", HINT
                ) from exc
    try:
        client = docker.DockerClient.from_env(environment=environ, timeout=15)
        info = client.version()
    except FOREIGN as exc:
        raise EngineUnavailable(f"no Docker engine answers at {host}: {reason(exc)}", HINT) from exc
    version = str(info.get("Version", "?"))
    api_version = str(info.get("ApiVersion", "0"))
    if _api_tuple(api_version) < _api_tuple(MIN_API):
        client.close()
        raise EngineUnavailable(
            f"Docker engine {version} speaks API {api_version}; "
            f"boxsmith needs API {MIN_API} (Docker 20.10) or newer",
            "upgrade Docker, or run `scripts/docker-up` on a Debian 12 machine",
        )
    return client, version, api_version
