"""Quoting for Dockerfile values: `env_quoted` writes a value the way `parse` (and Docker, and
the e2b SDK's Dockerfile parser) reads it back."""

from __future__ import annotations

__all__ = ["env_quoted"]


def env_quoted(text: str) -> str:
    """`text` as an ENV/ARG value in double quotes, where Docker unescapes only backslash, quote
    and dollar: backslashes and quotes are escaped, anything else (non-ASCII, tabs) is literal;
    `$VAR` is left to Docker's substitution. `text` must be one line."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
