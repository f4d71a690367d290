"""Read a Dockerfile as lint sees it, and trace its lines back to the render that produced them.

`parse` splits Dockerfile text into statements with their line spans (continuation lines, comment
lines inside a continuation, heredocs), enough for boxsmith's own rules; it does not expand
variables and ignores the `# escape=` directive (boxsmith renders the default `\\`).

`env_quoted` writes a value the way `parse` (and Docker, and the e2b SDK's Dockerfile parser)
reads it back.

`SourceMap` answers "which rendered instruction wrote this line?". The render's line ranges are
computed from its text: the header comment block, then each instruction's text, which may span
several lines. A Dockerfile on disk may differ from the render (hand-edited, or stale): its lines
are aligned with the render's by a diff, so untouched lines still map and edited ones do not.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boxsmith._internal.render.instructions import Instruction

__all__ = ["SourceMap", "Statement", "env_quoted", "parse"]


def env_quoted(text: str) -> str:
    """`text` as an ENV/ARG value in double quotes, where Docker unescapes only backslash, quote
    and dollar: backslashes and quotes are escaped, anything else (non-ASCII, tabs) is literal;
    `$VAR` is left to Docker's substitution. `text` must be one line."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def _line_owners(rendered: str, instructions: Sequence[Instruction]) -> dict[int, Instruction]:
    """Rendered line number -> the instruction that wrote it (the header maps to nothing).

    Stops at the first instruction whose text is not where expected, so a change to the
    Dockerfile template can make mapping incomplete but never wrong.
    """
    lines = rendered.split("\n")
    index = next((n for n, line in enumerate(lines) if not line.startswith("#")), len(lines))
    owners: dict[int, Instruction] = {}
    for instruction in instructions:
        chunk = instruction.text().split("\n")
        if lines[index : index + len(chunk)] != chunk:
            break
        for offset in range(len(chunk)):
            owners[index + offset + 1] = instruction
        index += len(chunk)
    return owners


class SourceMap:
    """Line of the judged Dockerfile -> the rendered instruction (and so the spec key) behind it."""

    def __init__(self, rendered: str, actual: str, instructions: Sequence[Instruction]) -> None:
        owners = _line_owners(rendered, instructions)
        if actual == rendered:
            self._owners = owners
            return
        old, new = rendered.split("\n"), actual.replace("\r\n", "\n").split("\n")
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        self._owners = {}
        for block in matcher.get_matching_blocks():
            for offset in range(block.size):
                owner = owners.get(block.a + offset + 1)
                if owner is not None:
                    self._owners[block.b + offset + 1] = owner

    def instruction(self, line: int) -> Instruction | None:
        """The instruction that rendered `line` (1-based), or None for a line no instruction
        wrote (the header, or a hand-edited line)."""
        return self._owners.get(line)
