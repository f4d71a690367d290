"""One command as a `docker exec` attached over Docker's hijacked socket, for the envd process
service: create and attach it, read its multiplexed output frames, wait for its exit code, run
a root helper (signals), close the socket; docker's errors as Connect errors (`in_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import docker
import docker.errors
import requests.exceptions
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from boxsmith._internal.backend.wire import scrub

__all__ = [
    "DOCKER_ERRORS",
    "attach",
    "close",
    "exit_code",
    "frames",
    "in_thread",
    "raw",
    "run_root",
]

DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


async def in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking docker call in a worker thread, its errors as Connect errors."""
    try:
        return await asyncio.to_thread(func, *args)
    except docker.errors.APIError as exc:
        text = scrub(str(exc))
        if exc.status_code in (404, 409):  # the container is gone or stopped: so is the sandbox
            raise ConnectError(Code.UNAVAILABLE, f"the sandbox was not found ({text})") from exc
        raise ConnectError(Code.INTERNAL, f"docker: {text}") from exc
    except DOCKER_ERRORS as exc:
        raise ConnectError(Code.INTERNAL, f"docker: {scrub(str(exc))}") from exc
    except OSError as exc:
        raise ConnectError(Code.FAILED_PRECONDITION, f"the process ended ({exc})") from exc


def attach(
    client: docker.DockerClient,
    container_id: str,
    *,
    cmd: Sequence[str],
    user: str,
    cwd: str,
    env: dict[str, str],
    stdin: bool,
) -> tuple[str, Any]:
    """(exec id, attached socket) of a new exec of `cmd`."""
    api = client.api
    exec_id = api.exec_create(
        container_id, cmd, stdin=stdin, user=user, workdir=cwd, environment=env
    )["Id"]
    sock = api.exec_start(exec_id, socket=True)
    # docker-py leaves the client's read timeout (60 s) on the socket; output may pause longer.
    raw(sock).settimeout(None)
    return str(exec_id), sock


def run_root(client: docker.DockerClient, container_id: str, cmd: Sequence[str]) -> None:
    """Run `cmd` as root in the container (a helper such as kill), not waiting for output."""
    exec_id = client.api.exec_create(container_id, cmd, user="root")["Id"]
    client.api.exec_start(exec_id)


def exit_code(
    client: docker.DockerClient, exec_id: str, given_up: Callable[[], bool]
) -> int | None:
    """The exec's exit code once it stopped; None when the container went away or the caller
    gave up on it."""
    delay = 0.02
    while not given_up():
        try:
            info = client.api.exec_inspect(exec_id)
        except DOCKER_ERRORS:
            return None
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        # Output closed before the process exited (it closed stdout and stderr): back off.
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    return None


def frames(sock: Any) -> Iterator[tuple[int, bytes]]:
    """Docker's multiplexed exec stream: frames of an 8-byte header [stream, 0, 0, 0, size u32
    BE] and a payload, yielded piecewise as it arrives; ends at EOF."""
    while True:
        header = b""
        while len(header) < 8:
            got = sock.read(8 - len(header))
            if not got:
                return
            header += got
        stream, left = header[0], int.from_bytes(header[4:8], "big")
        while left:
            got = sock.read(min(left, 65536))
            if not got:
                return
            left -= len(got)
            yield stream, got


def raw(sock: Any) -> Any:
    """The socket under docker's SocketIO (writes, shutdown and timeouts need it)."""
    return getattr(sock, "_sock", sock)


def close(sock: Any) -> None:
    """Close docker's exec socket: the SocketIO, the socket under it, and the HTTP response."""
    under = raw(sock)  # SocketIO.close() forgets it
    with contextlib.suppress(OSError):
        sock.close()
        under.close()
    response = getattr(sock, "_response", None)
    if response is not None:
        with contextlib.suppress(Exception):  # best effort: the connection is already closed
            response.close()
