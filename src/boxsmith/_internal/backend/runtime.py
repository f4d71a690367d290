"""What the envd data plane needs from the rest of the backend: find a running sandbox, and
let in only who holds its access token.

`envd.process`, `envd.files` and `envd.transfer` only see this interface: a `Sandboxes` registry
that maps the `E2b-Sandbox-Id` header to a `SandboxHandle` (its container, defaults and access
token), and the shared `Engine`. A sandbox that is unknown or no longer running raises
`SandboxGone`, which the envd plane answers with 502 "... was not found" so the SDK raises its
not-running exception.

Access, as E2B's envd does it: a secure sandbox (every one, unless the backend allows insecure
ones) has an `envdAccessToken` that create and connect return; every envd request must carry it
in `X-Access-Token`, else 401 before anything runs. `/files` also takes a v1 URL signature
instead (`signature_error`), so `download_url`/`upload_url` work from any HTTP client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "ENVD_PORT",
    "ENVD_VERSION",
    "UNAUTHORIZED",
    "ASGIApp",
    "FileRequest",
    "Receive",
    "SandboxGone",
    "SandboxHandle",
    "Sandboxes",
    "Scope",
    "Send",
    "guard_sandbox",
    "new_access_token",
    "not_found",
    "send_json",
    "signature_error",
    "signed_by",
    "stream_ended",
    "token_matches",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENVD_PORT = 49983
# The highest envd version whose client-side features this backend implements (stdin close,
# octet-stream and gzip uploads, file metadata as `user.e2b.*` xattrs: 0.6.2); newer features
# then fail loudly in the SDK instead of silently: 0.6.3 adds the entry to watch events and
# 0.6.4 watches on network mounts, and this backend has no watch.
ENVD_VERSION = "0.6.2"
# envd's words for a request without the right token, so users see what E2B would tell them.
UNAUTHORIZED = (
    "unauthorized access, please provide a valid access token or method signing if supported"
)


class SandboxGone(Exception):
    """No running sandbox has this id (never created, killed, or timed out)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(f"sandbox {sandbox_id!r} was not found")
        self.sandbox_id = sandbox_id


@dataclass(frozen=True, slots=True)
class SandboxHandle:
    """A running sandbox as the envd plane sees it.

    Attributes:
        id: the sandbox id the SDK sends in `E2b-Sandbox-Id`.
        container_id: its Docker container.
        user: the default user for commands and files (the template's final USER).
        workdir: the default working directory (the template's final WORKDIR).
        home: the default user's home (relative paths resolve against it, as in envd).
        env: environment every command gets (the sandbox's envVars over the image's).
        build_env: the template's ENV names, with the base image's value or None: commands
            do not see them (`boxsmith._internal.docker.buildenv`), unless `env` or their own envs
            set them.
        access_token: the token every envd request must carry; None for an insecure sandbox
            (only when the backend allows them), whose data plane is open.
    """

    id: str
    container_id: str
    user: str
    workdir: str
    home: str
    env: Mapping[str, str] = field(default_factory=dict)
    build_env: Mapping[str, str | None] = field(default_factory=dict)
    access_token: str | None = None


class Sandboxes(Protocol):
    """The registry of running sandboxes."""

    def get(self, sandbox_id: str) -> SandboxHandle:
        """The running sandbox with this id; raises SandboxGone otherwise."""
        ...

    def handles(self) -> list[SandboxHandle]:
        """Every running sandbox."""
        ...


def not_found(sandbox_id: str) -> str:
    """The message E2B's proxy gives for a sandbox that is not running; the SDK maps "was not
    found" to SandboxNotRunningException (RPCs and /files alike)."""
    return f"The sandbox {sandbox_id} was not found"


def stream_ended(sandbox_id: str) -> str:
    """What E2B says when a sandbox stops under a running stream (a command's): neither "was
    not found" nor "port is not open", so the SDK probes the sandbox and, finding it gone,
    raises its "killed or reached its end of life" SandboxNotRunningException."""
    return f"the connection to sandbox {sandbox_id} ended before the stream completed"


def new_access_token() -> str:
    """A fresh envd access token (256 random bits)."""
    return secrets.token_urlsafe(32)


def token_matches(handle: SandboxHandle, given: str) -> bool:
    """Whether `given` (an `X-Access-Token` value) opens this sandbox; compared in constant
    time. An insecure sandbox takes any (or none)."""
    if handle.access_token is None:
        return True
    return hmac.compare_digest(given.encode("latin-1"), handle.access_token.encode("latin-1"))


@dataclass(frozen=True, slots=True)
class FileRequest:
    """What a `/files` URL signature covers: the `path`, `username` (empty for the default
    user) and `signature`/`signature_expiration` query parameters as sent, and the operation
    (`read` for GET, `write` for POST)."""

    path: str
    operation: str
    username: str
    signature: str | None
    expiration: str | None


def _signed_with(handle: SandboxHandle, request: FileRequest) -> bool:
    """Whether `request.signature` is the SDK's v1 signature (`get_signature`) made with this
    sandbox's token: `v1_` + unpadded base64 of sha256(`path:operation:user:token[:exp]`)."""
    if handle.access_token is None or request.signature is None:
        return False
    parts = [request.path, request.operation, request.username, handle.access_token]
    if request.expiration is not None:
        if not re.fullmatch(r"-?[0-9]{1,18}", request.expiration):
            return False
        parts.append(str(int(request.expiration)))
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    expected = "v1_" + base64.b64encode(digest).decode().rstrip("=")
    given = request.signature.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected.encode(), given)


def signature_error(handle: SandboxHandle, request: FileRequest, header_token: str) -> str | None:
    """Why a `/files` request may not proceed (envd's rules and words), or None when it may:
    a token in `X-Access-Token` must be right; without one, the URL's signature must be made
    with the sandbox's token, and its expiration (Unix seconds), if any, not have passed."""
    if handle.access_token is None:
        return None
    if header_token:
        if token_matches(handle, header_token):
            return None
        return "access token present in header but does not match"
    if request.signature is None:
        return "missing signature query parameter"
    if not _signed_with(handle, request):
        return "invalid signature"
    if request.expiration is not None and int(request.expiration) < time.time():
        return "signature is already expired"
    return None


def signed_by(sandboxes: Sandboxes, request: FileRequest) -> SandboxHandle | None:
    """The running sandbox whose token made the signature of `request`: a signed URL names no
    sandbox (E2B puts it in the host name, a local URL cannot), its signature does."""
    return next((h for h in sandboxes.handles() if _signed_with(h, request)), None)


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Answer a plain HTTP request with JSON `body` and `status`."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def guard_sandbox(app: ASGIApp, sandboxes: Sandboxes, *, auth: bool = True) -> ASGIApp:
    """Wrap an envd ASGI app: a request whose `E2b-Sandbox-Id` names no running sandbox gets 502
    JSON `{"code": 502, "message": "The sandbox <id> was not found"}` before it is dispatched;
    with `auth`, one without the sandbox's token in `X-Access-Token` gets 401 (envd's answer).

    A Connect handler cannot answer a plain HTTP status (its errors become Connect error bodies,
    or end-of-stream frames on streams), and the SDK maps only a plain 502 naming "was not found"
    to SandboxNotRunningException, as E2B's proxy answers; a plain 401 becomes its
    AuthenticationException.
    """

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            headers = dict(scope.get("headers", []))
            sandbox_id = headers.get(b"e2b-sandbox-id", b"").decode("latin-1")
            try:
                handle = sandboxes.get(sandbox_id)
            except SandboxGone:
                await send_json(send, 502, {"code": 502, "message": not_found(sandbox_id)})
                return
            given = headers.get(b"x-access-token", b"").decode("latin-1")
            if auth and not token_matches(handle, given):
                await send_json(send, 401, {"code": 401, "message": UNAUTHORIZED})
                return
        await app(scope, receive, send)

    return guarded
