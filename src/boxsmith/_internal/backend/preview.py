"""Preview URLs: `sandbox.get_host(port)` reaches `port` inside the sandbox, as on E2B.

The SDK builds the host `<port>-<sandboxID>.<domain>` from the `domain` create and connect
return (`localhost:<backend port>` by default: browsers and curl resolve `*.localhost` to
loopback). The backend's `dispatcher` sends every request whose Host header has that shape
here; `PreviewProxy` reverse-proxies it to the container's address on Docker's bridge:

- HTTP, streamed both ways chunk by chunk (server-sent events flow), hop-by-hop headers
  dropped, the Host header kept (dev servers see the preview host), X-Forwarded-For, -Proto and
  -Host added;
- WebSocket upgrades (Streamlit, Gradio, Next.js HMR), messages pumped both ways with the
  `websockets` client, subprotocols passed, each side's close passed to the other.

What E2B's proxy refuses, this one refuses in its shapes (`preview_errors`: JSON, or a small
HTML page for a browser's User-Agent): a sandbox that does not run (502 "was not found", which
the SDK maps to its not-running exception), a port nothing listens on (502 "port is not
open"; envd's port too, since envd here is the backend itself), a sandbox created with
`allowPublicTraffic: false` without its `e2b-traffic-access-token` header (403), and past
`Limits.max_proxy_connections` connections at once (503). An upstream failure is an answer,
never a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re

import anyio
import websockets
from websockets.asyncio.client import ClientConnection, connect

from boxsmith._internal.backend.preview_errors import (
    TOKEN_HEADER,
    Refusal,
    not_found,
    port_closed,
    token_refused,
    too_many,
    upstream_failed,
)
from boxsmith._internal.backend.preview_http import (
    ClientLeft,
    UpstreamFailed,
    exchange,
    open_upstream,
)
from boxsmith._internal.backend.runtime import ENVD_PORT, Receive, Scope, Send
from boxsmith._internal.backend.sandboxes import SandboxManager

__all__ = ["PreviewProxy", "preview_target"]

CONNECT_TIMEOUT = 5.0  # seconds to reach a port of a container on the same machine
WS_MAX_SIZE = 16 << 20  # the largest WebSocket message from a sandbox (uvicorn's from a client)
_log = logging.getLogger(__name__)
# `<port>-<sandbox id>.<domain>`, the id of this backend's form (sandboxes.create)
_HOST = re.compile(r"(?P<port>\d{1,5})-(?P<sid>i[0-9a-f]{20})\.(?P<domain>[a-z0-9.-]+(:\d{1,5})?)")
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# an answer's headers not passed on: hop-by-hop ones (uvicorn frames the answer itself) and the
# Date uvicorn adds
_DOWNSTREAM_DROP = _HOP | {"date"}
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", TOKEN_HEADER})
# made by the websockets client itself for its own handshake
_HANDSHAKE = frozenset(
    {"host", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
     "sec-websocket-protocol"}
)  # fmt: skip


def preview_target(scope: Scope, domain: str) -> tuple[int, str] | None:
    """(port, sandbox id) when the request's Host is a preview host of `domain`, else None.

    Only the sandboxes' own domain counts: a page on another name that resolves to loopback
    (DNS rebinding) does not reach a sandbox's ports through this backend."""
    match = _HOST.fullmatch(_header(scope, "host").lower())
    if match is None or match["domain"] != domain.lower() or not 0 < int(match["port"]) < 65536:
        return None
    return int(match["port"]), match["sid"]


class PreviewProxy:
    """The ASGI app behind preview hosts (`dispatcher` sends only those here).

    Args:
        sandboxes: the running sandboxes, with their addresses and traffic tokens (`route`).
        max_connections: proxied HTTP requests and WebSockets open at once; past it 503.
        domain: the sandboxes' domain (`Limits.domain`): only its preview hosts are served.
    """

    def __init__(self, sandboxes: SandboxManager, *, max_connections: int, domain: str) -> None:
        self._sandboxes = sandboxes
        self.domain = domain
        self._max = max_connections
        self._active = 0

    def target(self, scope: Scope) -> tuple[int, str] | None:
        """(port, sandbox id) when `scope` is an HTTP or WebSocket request to a preview host of
        the sandboxes' domain, else None (`dispatcher` asks, once per request)."""
        if scope["type"] not in ("http", "websocket"):
            return None
        return preview_target(scope, self.domain)

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, target: tuple[int, str]
    ) -> None:
        """Proxy the request of `scope` to `target` (`self.target(scope)`), or refuse it."""
        port, sandbox_id = target
        admitted = self._admit(scope, sandbox_id, port)
        if isinstance(admitted, Refusal):
            await _refuse(scope, send, admitted)
            return
        self._active += 1
        try:
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send, sandbox_id, (admitted, port))
            else:
                await self._http(scope, receive, send, sandbox_id, (admitted, port))
        finally:
            self._active -= 1

    def _admit(self, scope: Scope, sandbox_id: str, port: int) -> str | Refusal:
        """The container's address for this request, or why it is refused."""
        route = self._sandboxes.route(sandbox_id)
        if route is None:
            return not_found(sandbox_id)
        if route.traffic_token is not None:
            given = _header(scope, TOKEN_HEADER)
            if not given:
                return token_refused(sandbox_id, given=False)
            if not hmac.compare_digest(given.encode(), route.traffic_token.encode()):
                return token_refused(sandbox_id, given=True)
        if port == ENVD_PORT or route.address is None:
            return port_closed(sandbox_id, port)
        if self._active >= self._max:
            return too_many(sandbox_id, self._max)
        return route.address

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, sandbox_id: str, where: tuple[str, int]
    ) -> None:
        """Proxy one HTTP request to `where` (address, port), the answer streamed back."""
        address, port = where
        try:
            upstream = await open_upstream(address, port, CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            await _refuse(scope, send, port_closed(sandbox_id, port))
            return
        try:
            await exchange(
                upstream,
                scope,
                receive,
                send,
                target=_target(scope),
                headers=_upstream_headers(scope),
                drop=_DOWNSTREAM_DROP,
            )
        except ClientLeft:
            return
        except UpstreamFailed as exc:
            _log.info("preview: port %d of %s: %s", port, sandbox_id, exc)
            await _refuse(scope, send, upstream_failed(sandbox_id, port))
        finally:
            upstream.close()

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, sandbox_id: str, where: tuple[str, int]
    ) -> None:
        """Open a WebSocket to `where` (address, port) and pump messages until either closes."""
        if (await receive())["type"] != "websocket.connect":
            return
        address, port = where
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in _upstream_headers(scope)
            if k.decode("latin-1") not in _HANDSHAKE
        ]
        try:
            upstream = await connect(
                f"ws://{_header(scope, 'host').lower()}{_target(scope)}",
                host=address,  # the URI's host goes in the Host header, kept as the client sent it
                port=port,
                additional_headers=headers,
                user_agent_header=None,  # the client's own, among `headers`
                subprotocols=scope.get("subprotocols") or None,
                open_timeout=CONNECT_TIMEOUT * 2,
                max_size=WS_MAX_SIZE,
                proxy=None,
            )
        except websockets.InvalidStatus as exc:  # the server answered without upgrading
            await _denied(scope, send, exc.response.status_code, bytes(exc.response.body or b""))
            return
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            await _refuse(scope, send, _failure(sandbox_id, port, exc))
            return
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _pump(upstream, receive, send)
        finally:
            await upstream.close()


async def _pump(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Messages both ways between the client and `upstream` until one side closes."""
    async with anyio.create_task_group() as group:

        async def up() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        await upstream.close(_sendable(int(message.get("code", 1000))))
                        break
                    text = message.get("text")
                    await upstream.send(
                        text if text is not None else bytes(message.get("bytes") or b"")
                    )
            group.cancel_scope.cancel()

        async def down() -> None:
            try:
                async for data in upstream:
                    kind = "text" if isinstance(data, str) else "bytes"
                    await send({"type": "websocket.send", kind: data})
            except websockets.ConnectionClosed:
                pass
            except OSError:  # the client went away (uvicorn's ClientDisconnected)
                group.cancel_scope.cancel()
                return
            code = _sendable(upstream.close_code or 1000)
            with contextlib.suppress(OSError):  # the client may have gone first
                await send(
                    {"type": "websocket.close", "code": code, "reason": upstream.close_reason}
                )
            group.cancel_scope.cancel()

        group.start_soon(up)
        group.start_soon(down)


def _failure(sandbox_id: str, port: int, exc: Exception) -> Refusal:
    """E2B's port-closed answer when the port could not be reached, else a 502 (logged)."""
    if isinstance(exc, (OSError, TimeoutError)):
        return port_closed(sandbox_id, port)
    _log.info("preview: port %d of %s: %s", port, sandbox_id, exc)
    return upstream_failed(sandbox_id, port)


def _sendable(code: int) -> int:
    """A close code one may send: 1005 (none given) as 1000, 1006 (cut off) as 1011."""
    return {1005: 1000, 1006: 1011, 1015: 1011}.get(code, code)


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    """Answer `refusal` (for a WebSocket, as the HTTP answer to its upgrade)."""
    kind, body = refusal.render(_header(scope, "user-agent"), _header(scope, "host"))
    await _answer(scope, send, refusal.status, kind, body)


async def _denied(scope: Scope, send: Send, status: int, body: bytes) -> None:
    await _answer(scope, send, status, b"text/plain; charset=utf-8", body)


async def _answer(scope: Scope, send: Send, status: int, kind: bytes, body: bytes) -> None:
    prefix = "http.response"
    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # a bare 403 to the client
            return
        prefix = "websocket.http.response"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": f"{prefix}.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": body})


def _header(scope: Scope, name: str) -> str:
    """The first value of a request header, '' when absent."""
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return ""


def _target(scope: Scope) -> str:
    """The request's path and query, as the client sent them."""
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return (bytes(path) + (b"?" + bytes(query) if query else b"")).decode("latin-1")


def _hop_by_hop(headers: list[tuple[bytes, bytes]]) -> frozenset[str]:
    """The hop-by-hop names: the standard ones and those the Connection header names."""
    named = {
        token.strip().lower().decode("latin-1")
        for key, value in headers
        if key.lower() == b"connection"
        for token in value.split(b",")
    }
    return _HOP | frozenset(named)


def _upstream_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The client's headers, hop-by-hop ones and the traffic token dropped, X-Forwarded-*
    added (For appended to what a proxy before this one said)."""
    raw = [(bytes(k).lower(), bytes(v)) for k, v in scope.get("headers", [])]
    drop = _hop_by_hop(raw) | _FORWARDED
    kept = [(k, v) for k, v in raw if k.decode("latin-1") not in drop]
    client = scope.get("client")
    prior = _header(scope, "x-forwarded-for")
    chain = ", ".join(part for part in (prior, client[0] if client else "") if part)
    return [
        *kept,
        (b"x-forwarded-for", chain.encode("latin-1")),
        (b"x-forwarded-proto", b"https" if scope.get("scheme") in ("https", "wss") else b"http"),
        (b"x-forwarded-host", _header(scope, "host").encode("latin-1")),
    ]
