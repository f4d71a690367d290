"""Which rendered instruction wrote a line of a Dockerfile, and so which spec key is behind it.

Lint points its findings at the spec with it; builds point a failed step at the spec the same way.
The render's line ranges are computed from its text: the header comment block, then each
instruction's text, which may span several lines. A Dockerfile on disk may differ from the render
(hand-edited, or stale): its lines are aligned with the render's by a diff, so untouched lines
still map and edited ones do not.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Instruction", "SourceMap"]


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction as the render writes it, and the spec key path behind it."""

    keyword: str
    args: str
    source: tuple[str | int, ...] = ()

    def text(self) -> str:
        """The instruction as it appears in the Dockerfile."""
        return f"{self.keyword} {self.args}"


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
