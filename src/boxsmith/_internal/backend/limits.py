"""The local backend's limits and access settings, each read once at start from the environment.

| variable | default | what it bounds |
| --- | --- | --- |
| BOXSMITH_BACKEND_MAX_TIMEOUT | 86400 | sandbox timeout in s (create, connect, set_timeout) |
| BOXSMITH_BACKEND_MAX_SANDBOXES | 20 | sandboxes running (or starting) at once; past it 429 |
| BOXSMITH_BACKEND_MAX_UPLOAD_MB | 1024 | one upload: a build context, or a file sent to /files |
| BOXSMITH_BACKEND_ALLOW_INSECURE | off | `1` lets a create with `secure: false` open a data plane |
| BOXSMITH_BACKEND_MAX_PROXY_CONNECTIONS | 256 | preview-URL connections open at once; past it 503 |
| BOXSMITH_BACKEND_DOMAIN | `localhost:<port>` | the sandboxes' `domain` (`<p>-<id>.<domain>`) |

A value that is not a positive whole number (or `0`/`1` for the switch, a host name with an
optional `:port` for the domain) is a usage error at start, naming the variable, never a silent
default. A running backend lists the limits in force in `server.json`, and `boxsmith backend
status` prints them.

Fixed bounds, E2B's where it has one (each refused with a 400 in E2B's error shape):

| what | bound |
| --- | --- |
| template name | `^[a-z0-9-_]+$`, at most 128 characters (`spec.names.name_error`) |
| tag | `^[a-z0-9-_.]+$`, not a UUID, at most 128 characters (`spec.names.tag_error`) |
| cpuCount of a build | 1 or an even number up to 32 |
| memoryMB of a build | an even number from 128 to 65536 |
| a JSON request body | 16 MB (413 past it, read no further) |
| logsOffset, limit of a build's status | whole numbers (offset >= 0, limit 0..1000) |

A build-context upload past BOXSMITH_BACKEND_MAX_UPLOAD_MB is a 413: refused from its
Content-Length before a byte is read, or as soon as the streamed body passes the limit, and
nothing of it stays on disk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from boxsmith.errors import UsageError

__all__ = ["Limits"]

_PREFIX = "BOXSMITH_BACKEND_"
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one backend process allows.

    Attributes:
        max_timeout: the longest sandbox timeout, in seconds (E2B's is 24 h).
        max_sandboxes: how many sandboxes may run or be starting at once.
        max_upload_bytes: the largest single upload (build context or /files body).
        allow_insecure: whether `secure: false` creates a sandbox without an access token.
        max_proxy_connections: preview-URL connections (HTTP requests, WebSockets) at once.
        domain: the sandboxes' domain; empty: `localhost:<the backend's port>` (`serve`).
    """

    max_timeout: int = 24 * 3600
    max_sandboxes: int = 20
    max_upload_bytes: int = 1024 << 20
    allow_insecure: bool = False
    max_proxy_connections: int = 256
    domain: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Limits:
        """The limits the environment sets, the defaults for the rest; UsageError on a bad one."""
        default = cls()
        return cls(
            max_timeout=_positive(environ, "MAX_TIMEOUT", default.max_timeout),
            max_sandboxes=_positive(environ, "MAX_SANDBOXES", default.max_sandboxes),
            max_upload_bytes=_positive(environ, "MAX_UPLOAD_MB", default.max_upload_bytes >> 20)
            << 20,
            allow_insecure=_switch(environ, "ALLOW_INSECURE"),
            max_proxy_connections=_positive(
                environ, "MAX_PROXY_CONNECTIONS", default.max_proxy_connections
            ),
            domain=_domain(environ),
        )

    def as_dict(self) -> dict[str, int | bool | str]:
        """The limits under their environment names' suffixes, lowercased (upload in MB)."""
        return {
            "max_timeout": self.max_timeout,
            "max_sandboxes": self.max_sandboxes,
            "max_upload_mb": self.max_upload_bytes >> 20,
            "allow_insecure": self.allow_insecure,
            "max_proxy_connections": self.max_proxy_connections,
            "domain": self.domain,
        }


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(_PREFIX + name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise UsageError(
            f"{_PREFIX}{name}={raw!r} is not a positive whole number",
            f"set it to a number such as {default}, or unset it for the default",
        )
    return int(raw)


def _switch(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(_PREFIX + name, "").strip()
    if raw not in ("", "0", "1"):
        raise UsageError(
            f"{_PREFIX}{name}={raw!r} must be 1 or 0", f"set {_PREFIX}{name}=1 or unset it"
        )
    return raw == "1"


def _domain(environ: Mapping[str, str]) -> str:
    raw = environ.get(_PREFIX + "DOMAIN", "").strip()
    if raw and not _DOMAIN.fullmatch(raw):
        raise UsageError(
            f"{_PREFIX}DOMAIN={raw!r} is not a host name with an optional :port",
            "set it to a name that resolves to this machine, such as localhost:49990 (no scheme "
            "or path), or unset it for localhost:<the backend's port>",
        )
    return raw.lower()
