"""One proxied HTTP request: its own connection to the container's port, spoken with h11.

A preview request is one exchange on a fresh connection to a port on Docker's bridge (a local
connect costs less than a pool's bookkeeping, and a dev server that closes after each answer
needs nothing else). h11 does the framing both ways, so the client's body is streamed up as it
arrives and the answer streamed down event by event: a server-sent event stream flows, and a
HEAD, a 204 or a close-delimited body each end where HTTP says they do. A full HTTP client
(httpx) cost over a millisecond per request here, more than the request itself.

Once the request is sent, the client's disconnect is watched for until the answer ends: a
client that leaves ends the exchange at once, whether the server has not answered yet (a stuck
dev server, a long poll) or streams without end (server-sent events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import cast

import anyio
import h11

from boxsmith._internal.backend.runtime import Receive, Scope, Send

__all__ = ["ClientLeft", "UpstreamFailed", "exchange", "open_upstream"]

READ_SIZE = 64 * 1024
MAX_HEAD = 64 * 1024  # the largest status line plus headers taken from a container
_log = logging.getLogger(__name__)


class ClientLeft(Exception):
    """The client went away while its request's body was sent on."""


class UpstreamFailed(Exception):
    """The container's server broke the exchange before its answer began."""


class _Upstream:
    """h11's client side of one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)

    async def send(self, *events: h11.Event) -> None:
        """`events` in one write (a request without a body is one packet)."""
        data = b"".join(self.h11.send(event) or b"" for event in events)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.reader.read(READ_SIZE))
            else:
                return cast("h11.Event | type[h11.PAUSED]", event)

    def close(self) -> None:
        self.writer.close()


async def open_upstream(address: str, port: int, timeout: float) -> _Upstream:
    """A connection to `address`:`port`; OSError or TimeoutError when nothing answers."""
    async with asyncio.timeout(timeout):  # no task of its own, as wait_for makes
        reader, writer = await asyncio.open_connection(address, port)
    return _Upstream(reader, writer)


async def exchange(
    upstream: _Upstream,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    target: str,
    headers: list[tuple[bytes, bytes]],
    drop: frozenset[str],
) -> None:
    """Send the request of `scope` (its body from `receive`) on `upstream`, with `headers`
    (hop-by-hop ones already out), and its answer back through `send`, the answer's headers
    named in `drop` left out.

    Raises:
        ClientLeft: the client went away while its body was sent on.
        UpstreamFailed: no answer began (nothing was sent to the client yet).
    """
    sent = {bytes(k).lower() for k, _ in scope.get("headers", [])}
    has_body = bool(sent & {b"content-length", b"transfer-encoding"})
    if has_body and b"content-length" not in sent:  # sent chunked: on chunked
        headers = [*headers, (b"transfer-encoding", b"chunked")]
    try:
        request = h11.Request(method=scope["method"], target=target, headers=headers)
        if has_body:
            await upstream.send(request)
            await _send_body(upstream, receive)
        else:
            await upstream.send(request, h11.EndOfMessage())
    except (h11.ProtocolError, OSError) as exc:
        raise UpstreamFailed(str(exc) or type(exc).__name__) from exc
    # from here the client's only message is its disconnect: watched for the whole exchange,
    # so a client that leaves a server that never answers frees its connection at once
    failed: Exception | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            response = await _answer(upstream)
        except (h11.ProtocolError, OSError, UpstreamFailed) as exc:
            failed = exc
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _kept(response.headers, drop),
                }
            )
            await _stream(upstream, send)
        group.cancel_scope.cancel()
    if failed is not None:
        raise UpstreamFailed(str(failed) or type(failed).__name__) from failed


Headers = list[tuple[bytes, bytes]]


def _kept(headers: Sequence[tuple[bytes, bytes]], drop: frozenset[str]) -> Headers:
    """An answer's headers without those in `drop` and those its Connection header names."""
    named = {
        token.strip().lower().decode("latin-1")
        for k, v in headers
        if k == b"connection"
        for token in v.split(b",")
    }
    return [(k, v) for k, v in headers if k.decode("latin-1") not in drop | named]


async def _send_body(upstream: _Upstream, receive: Receive) -> None:
    """Send the client's body on as it arrives, then the end of the request."""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientLeft
        more = bool(message.get("more_body"))
        if message.get("body"):
            await upstream.send(h11.Data(data=bytes(message["body"])))
    await upstream.send(h11.EndOfMessage())


async def _answer(upstream: _Upstream) -> h11.Response:
    """The final answer's head (informational ones are skipped)."""
    while True:
        event = await upstream.next_event()
        if isinstance(event, h11.Response):
            return event
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            # PAUSED: a 101 to a plain request (WebSockets come as their own scope)
            raise UpstreamFailed("the server closed or switched the connection without an answer")


async def _stream(upstream: _Upstream, send: Send) -> None:
    """The answer's body on to the client, event by event; a body the server breaks off ends
    the client's answer there (its connection is cut, as the server's was)."""
    try:
        while True:
            event = await upstream.next_event()
            if isinstance(event, h11.Data):
                chunk = bytes(event.data)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            elif not isinstance(event, h11.InformationalResponse):  # the end, however it came
                break
    except (h11.ProtocolError, OSError) as exc:
        _log.info("preview: the upstream answer broke off: %s", exc)
        return
    with contextlib.suppress(OSError):  # the client went away
        await send({"type": "http.response.body", "body": b"", "more_body": False})
