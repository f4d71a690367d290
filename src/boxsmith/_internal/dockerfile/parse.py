"""Read a Dockerfile as lint and builds see it: its instructions with their line spans.

`parse` splits Dockerfile text into statements (continuation lines, comment lines inside a
continuation, heredocs), enough for boxsmith's own rules; it does not expand variables and ignores
the `# escape=` directive (boxsmith renders the default `\\`).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

__all__ = ["Statement", "parse"]


_HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


@dataclass(frozen=True, slots=True)
class Statement:
    """One Dockerfile instruction as written.

    Attributes:
        keyword: the instruction, upper-case (`RUN`).
        args: everything after the keyword, continuation lines joined with a space.
        line: 1-based first line.
        end: 1-based last line (the heredoc's terminator for a heredoc).
        flags: leading `--name=value` options (`--from`, `--chown`, `--platform`); `--name`
            alone maps to "".
        rest: `args` without the leading flags.
    """

    keyword: str
    args: str
    line: int
    end: int
    flags: dict[str, str] = field(default_factory=dict)
    rest: str = ""

    def words(self) -> list[str]:
        """`rest` split like a shell would (quotes removed); a plain split when quotes are
        unbalanced. An exec-form JSON array gives its items."""
        text = self.rest.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                items = None
            if isinstance(items, list) and all(isinstance(i, str) for i in items):
                return items
        try:
            return shlex.split(text)
        except ValueError:
            return text.split()

    def pairs(self) -> list[tuple[str, str | None]]:
        """The `name=value` pairs of an ENV or ARG; None for an ARG without a default.

        The legacy `ENV NAME value with spaces` form gives one pair.
        """
        words = self.words()
        if self.keyword == "ENV" and words and "=" not in words[0]:
            name, _, value = self.rest.strip().partition(" ")
            return [(name, value.strip())]
        out: list[tuple[str, str | None]] = []
        for word in words:
            name, sep, value = word.partition("=")
            out.append((name, value if sep else None))
        return out


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args.lstrip()
    while rest.startswith("--"):
        token, _, remainder = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name.lower()] = value
        rest = remainder.lstrip()
    return flags, rest


def parse(text: str) -> list[Statement]:
    """Every instruction of a Dockerfile, in order, with its line span."""
    lines = text.replace("\r\n", "\n").split("\n")
    statements: list[Statement] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start, parts = i, []
        while True:
            current = lines[i].rstrip()
            if not current.endswith("\\"):
                parts.append(current.strip())
                break
            parts.append(current[:-1].strip())
            i += 1
            # Docker drops comment lines inside a continuation; a file may also just end.
            while i < len(lines) and lines[i].strip().startswith("#"):
                i += 1
            if i >= len(lines):
                i -= 1
                break
        joined = " ".join(p for p in parts if p)
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        heredoc = _HEREDOC.search(args) if keyword in ("RUN", "COPY", "ADD") else None
        if heredoc:
            strip_tabs, delimiter = heredoc.group(1) == "-", heredoc.group(3)
            while i + 1 < len(lines):
                i += 1
                body = lines[i].lstrip("\t") if strip_tabs else lines[i]
                if body.rstrip() == delimiter:
                    break
        flags, rest = _split_flags(args)
        statements.append(Statement(keyword, args.strip(), start + 1, i + 1, flags, rest))
        i += 1
    return statements
