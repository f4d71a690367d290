"""Quoting for Dockerfile values: `env_value` writes an ENV value bare where Docker reads it back
unchanged and quoted only where it would not; `env_quoted` always quotes. Both read back the same
through Docker, the e2b SDK's Dockerfile parser and `parse`.

Docker reads `ENV name=value ...` in two passes (BuildKit's `parseNameVal` and its shell lexer;
the e2b SDK's `e2b_dockerfile_utils` ports both): the arguments are split into words at
whitespace outside quotes (Go's `unicode.IsSpace`: ASCII whitespace, U+0085, U+00A0 and the
Unicode space separators), each word is cut at its first `=`, and the value is processed like a
shell word: quotes are removed, a backslash escapes the next character, `$NAME` and `${...}` are
substituted. So a value needs quotes only when it holds whitespace, a quote or a backslash.
Everything else reads back as written: `=` (only the first one of a word separates),
non-ASCII, `#` (a comment only at the start of a line) and the empty value (`A=`). `$` is
substituted the same way inside double quotes and outside them, so a `$VAR` value is written bare
and still substituted.

Bare values matter beyond Docker: E2B's CLI (`e2b template migrate`, its JavaScript parser) keeps
quotes in ENV values, so `PORT="3000"` became Python that does not parse and TypeScript with the
quotes in the value.
"""

from __future__ import annotations

import unicodedata

__all__ = ["env_quoted", "env_value"]

_QUOTING = frozenset("\"'\\")
_GO_SPACES = frozenset("\t\n\v\f\r \x85\xa0")


def _is_space(char: str) -> bool:
    """Go's `unicode.IsSpace`, which Docker splits instruction arguments with."""
    return char in _GO_SPACES or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def env_quoted(text: str) -> str:
    """`text` as an ENV/ARG value in double quotes, where Docker unescapes only backslash, quote
    and dollar: backslashes and quotes are escaped, anything else (non-ASCII, tabs) is literal;
    `$VAR` is left to Docker's substitution. `text` must be one line."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_value(text: str) -> str:
    """`text` as an ENV value: bare unless it holds whitespace, a quote or a backslash, then
    double-quoted (`env_quoted`). `text` must be one line."""
    if any(char in _QUOTING or _is_space(char) for char in text):
        return env_quoted(text)
    return text
