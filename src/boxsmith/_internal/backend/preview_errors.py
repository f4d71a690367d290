"""What the preview proxy (`backend.preview`) answers instead of a sandbox's port, in E2B's shapes.

E2B's proxy (e2b-dev/infra, packages/shared/pkg/proxy/template) answers its errors as JSON, or
as a small HTML page when the User-Agent looks like a browser's; so does this one, its page
self-contained (no external image or font):

| when | status | JSON (`sandboxId` in each) |
| --- | --- | --- |
| no service on the port | 502 | `message` "The sandbox is running but port is not open", `port` |
| the sandbox does not run | 502 | `message` "The sandbox was not found", `code` 502 |
| a private sandbox, no token | 403 | `message` "Sandbox is secured with traffic access token. |
| | | Token header 'e2b-traffic-access-token' is missing", `code` 403 |
| a private sandbox, wrong token | 403 | `message` "... Provided token in header '...' is |
| | | invalid", `code` 403 |
| too many proxied connections | 503 | `message`, `code` 503 |
| the port's service broke off | 502 | `message`, `code` 502 |

A 502 with "was not found" is what the SDK maps to its not-running exception (E2B's proxy now
says 404 there; envd's plane here says 502, and so does this).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PORT_CLOSED",
    "TOKEN_HEADER",
    "Refusal",
    "not_found",
    "port_closed",
    "token_refused",
    "too_many",
    "upstream_failed",
]

TOKEN_HEADER = "e2b-traffic-access-token"
PORT_CLOSED = "The sandbox is running but port is not open"
_SECURED = "Sandbox is secured with traffic access token."
_BROWSER = re.compile(r"mozilla|chrome|safari|firefox|edge|opera|msie", re.IGNORECASE)
_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>'
    "<style>body{{font-family:system-ui,sans-serif;background:#f5f5f5;color:#1a1a1a;"
    "display:flex;justify-content:center;padding:4rem 1rem}}main{{background:#fff;"
    "border-radius:12px;max-width:600px;padding:1.5rem 2rem}}h1{{color:#dc2626;"
    "font-size:1rem}}.details{{background:#f9fafb;border:1px solid #e5e7eb;border-radius:8px;"
    "padding:1rem;font-family:monospace}}</style></head>\n<body><main><h1>{title}</h1>"
    "<p>{text}</p><div class=details>{host}<br>{detail}</div></main></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One proxy error: its status, JSON body, and the HTML page's title and words."""

    status: int
    body: dict[str, Any]
    title: str
    text: str
    detail: str = ""

    def render(self, user_agent: str, host: str) -> tuple[bytes, bytes]:
        """(content type, body): the HTML page for a browser's User-Agent, else the JSON."""
        if _BROWSER.search(user_agent):
            page = _PAGE.format(
                title=html.escape(self.title),
                text=html.escape(self.text),
                host=html.escape(host),
                detail=html.escape(self.detail),
            )
            return b"text/html; charset=utf-8", page.encode()
        return b"application/json; charset=utf-8", json.dumps(self.body).encode()


def _coded(sandbox_id: str, status: int, title: str, message: str) -> Refusal:
    body = {"sandboxId": sandbox_id, "message": message, "code": status}
    return Refusal(status, body, title, message)


def port_closed(sandbox_id: str, port: int) -> Refusal:
    """A port nothing listens on (connection refused)."""
    return Refusal(
        502,
        {"sandboxId": sandbox_id, "message": PORT_CLOSED, "port": port},
        "Closed Port Error",
        f"The sandbox {sandbox_id} is running but there's no service running on port {port}.",
        f"Connection refused on port {port}",
    )


def not_found(sandbox_id: str) -> Refusal:
    """A sandbox that does not run (never did, killed, timed out)."""
    refusal = _coded(sandbox_id, 502, "Sandbox Not Found", "The sandbox was not found")
    return Refusal(502, refusal.body, refusal.title, f"The sandbox {sandbox_id} wasn't found.")


def token_refused(sandbox_id: str, *, given: bool) -> Refusal:
    """A private sandbox's traffic without its traffic token (`given`: with a wrong one)."""
    if given:
        words = f"Provided token in header '{TOKEN_HEADER}' is invalid"
        return _coded(sandbox_id, 403, "Invalid Traffic Access Token", f"{_SECURED} {words}")
    words = f"Token header '{TOKEN_HEADER}' is missing"
    return _coded(sandbox_id, 403, "Missing Traffic Access Token", f"{_SECURED} {words}")


def too_many(sandbox_id: str, limit: int) -> Refusal:
    """Past the backend's cap on proxied connections open at once."""
    message = (
        f"The backend has too many proxied connections open (limit: {limit}); close some, or "
        "start it with a higher BOXSMITH_BACKEND_MAX_PROXY_CONNECTIONS"
    )
    return _coded(sandbox_id, 503, "Too Many Connections", message)


def upstream_failed(sandbox_id: str, port: int) -> Refusal:
    """The port's service took the connection but broke off, or answered no HTTP."""
    message = f"The service on port {port} broke off the connection or did not answer HTTP"
    return _coded(sandbox_id, 502, "Bad Gateway", message)
