"""`docker build` as a stream boxsmith can follow and cut: the engine side of builds and Ctrl-C.

`BuildStreams.open` POSTs /build and decodes the engine's stream (docker-py's `api.build` hides the
response, which a cancel needs); `follow` turns the stream into output lines and a `BuildFailed`
naming the last step; `BuildStreams.abort` shuts down the socket of every stream in flight, and the
engine then cancels those builds (and `forcerm` removes their intermediate containers).

The socket is found through urllib3's `HTTPResponse.connection` and its `sock`. When the installed
urllib3 does not expose them, opening a build stream raises `EngineError` at once rather than
leaving a Ctrl-C that silently cancels nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import tarfile
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import requests
import requests.exceptions
import urllib3
import urllib3.exceptions

from boxsmith._internal.docker.engine_errors import BuildFailed, EngineError

__all__ = ["BuildStreams", "follow", "shutdown_of"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the legacy builder colours a step's stderr


def shutdown_of(response: requests.Response) -> Callable[[int], object]:
    """The `shutdown` of the socket under a streamed response (`response.raw.connection.sock`).

    Raises EngineError when the installed urllib3 does not expose it: without it a Ctrl-C could
    not cancel the build.
    """
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    shutdown: object = getattr(sock, "shutdown", None)
    if not callable(shutdown):
        raise EngineError(
            f"cannot cancel builds with urllib3 {getattr(urllib3, '__version__', '?')}: "
            f"a streamed response's `raw.connection.sock` is {sock!r}",
            "install a urllib3 2.x, which exposes it, and report this to boxsmith",
        )
    return shutdown


class BuildStreams:
    """The build streams in flight on one engine connection. Thread-safe."""

    def __init__(self) -> None:
        self._shutdowns: dict[requests.Response, Callable[[int], object]] = {}
        self._aborted: weakref.WeakSet[requests.Response] = weakref.WeakSet()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def open(
        self,
        api: Any,
        context: Path | BinaryIO,
        ref: str,
        labels: Mapping[str, str],
        dockerfile: str | None,
    ) -> Iterator[Iterator[dict[str, object]]]:
        """POST /build; yields its decoded stream, which `abort` cuts (BuildFailed "cancelled").
        The response is closed on leaving.

        `api` is docker-py's low-level client: its private `_post`, `_url` and `_stream_helper`
        are what its own `api.build` uses, with the same parameters as here.
        """
        response = api._post(
            api._url("/build"),
            data=_body(context),
            params={
                "t": ref,
                "rm": True,
                "forcerm": True,
                "pull": False,
                "dockerfile": dockerfile,
                "labels": json.dumps(dict(labels)),
            },
            headers={"Content-Type": "application/tar"},
            stream=True,
            timeout=None,
        )
        try:
            shutdown = shutdown_of(response)
            with self._lock:
                self._shutdowns[response] = shutdown
            yield self._decoded(api, response, ref)
        finally:
            with self._lock:
                self._shutdowns.pop(response, None)
            response.close()

    def _decoded(
        self, api: Any, response: requests.Response, ref: str
    ) -> Iterator[dict[str, object]]:
        try:
            yield from api._stream_helper(response, decode=True)
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,  # a cut mid-chunk: ProtocolError, which requests leaves
            OSError,
            ValueError,
        ) as exc:
            if response not in self._aborted:
                raise
            raise BuildFailed(f"building {ref} was cancelled", "run it again") from exc
        if response in self._aborted:
            raise BuildFailed(f"building {ref} was cancelled", "run it again")

    def abort(self) -> None:
        """Cut every build stream in flight; the engine then cancels those builds."""
        with self._lock:
            streams = list(self._shutdowns.items())
        for response, shutdown in streams:
            self._aborted.add(response)
            with contextlib.suppress(OSError):  # the build ended and its connection closed
                shutdown(socket.SHUT_RDWR)


def _body(context: Path | BinaryIO) -> BinaryIO:
    """The build context as an uncompressed tar stream (a folder is packed here)."""
    if not isinstance(context, Path):
        return context
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        tar.add(str(context), arcname=".")
    body.seek(0)
    return body


def follow(
    stream: Iterable[dict[str, object]],
    ref: str,
    *,
    on_step: Callable[[str], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Read a build stream to its end: each output line to `on_line`, each `Step n/m : ...` line
    to `on_step`; an error in the stream raises `BuildFailed` with the last step and lines."""
    tail: deque[str] = deque(maxlen=40)
    step = ""
    pending = ""  # output arrives in pieces; a line is whole at its newline

    def emit(line: str) -> None:
        nonlocal step
        tail.append(line)
        if on_line is not None:
            on_line(line)
        if line.startswith("Step "):
            step = line
            if on_step is not None:
                on_step(line)

    for chunk in stream:
        *lines, pending = (pending + str(chunk.get("stream", ""))).split("\n")
        for line in lines:
            emit(_ANSI.sub("", line).rstrip("\r"))
        if "error" in chunk and pending:
            emit(_ANSI.sub("", pending))
            pending = ""
        if "error" in chunk:
            reason = _ANSI.sub("", str(chunk["error"])).strip()
            raise BuildFailed(
                f"building {ref} failed: {reason}",
                "fix the failing step; the output above is its end",
                step=step,
                tail=tuple(tail),
                reason=reason,
            )
