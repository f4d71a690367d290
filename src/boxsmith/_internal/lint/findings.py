"""What a lint finding is: a rule code, a level, and the two places it points at.

A finding keeps both locations: the generated file and line that was judged (`generated`) and,
when the line goes back to a spec key, the spec file, line and column behind it (`spec`). Users
fix specs, not generated files, so reports show the spec location first when there is one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import IntEnum

from boxsmith.errors import UsageError

__all__ = ["Finding", "Level", "Location"]


class Level(IntEnum):
    """Severity, ordered; the names are hadolint's levels."""

    STYLE = 1
    INFO = 2
    WARNING = 3
    ERROR = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Level:
        """The level named `text` (any case).

        Raises:
            UsageError: not a level name; suggests the closest one.
        """
        names = [str(level) for level in cls]
        if text.lower() in names:
            return cls[text.upper()]
        close = difflib.get_close_matches(text.lower(), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(names)}"
        raise UsageError(f"unknown severity level {text!r}", hint)


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A 1-based position in a file shown to the user (relative to the project root)."""

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_json(self) -> dict[str, object]:
        """Plain mapping for JSON output."""
        return {"file": self.file, "line": self.line, "column": self.column}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in one template.

    Attributes:
        code: rule code: hadolint (DL3008), ShellCheck (SC2086) or boxsmith's own (E2B001).
        level: severity after boxsmith's defaults.
        message: what is wrong and what to do; never contains a secret's value.
        tool: "boxsmith" for the own rules, "hadolint" for hadolint and ShellCheck.
        template: `name:version` of the template judged.
        generated: the generated file and line judged.
        spec: the spec location behind it, when the line maps back to a spec key.
    """

    code: str
    level: Level
    message: str
    tool: str
    template: str
    generated: Location
    spec: Location | None = None

    @property
    def location(self) -> Location:
        """Where a user should look first: the spec when known, else the generated file."""
        return self.spec or self.generated

    def sort_key(self) -> tuple[str, Location, str, str]:
        """Stable report order: template, generated position, code, message."""
        return (self.template, self.generated, self.code, self.message)

    def to_json(self) -> dict[str, object]:
        """Plain mapping for JSON output."""
        return {
            "code": self.code,
            "level": str(self.level),
            "message": self.message,
            "tool": self.tool,
            "template": self.template,
            "spec": self.spec.to_json() if self.spec else None,
            "generated": self.generated.to_json(),
        }
