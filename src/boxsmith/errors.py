"""The exception root and the one exit-code scheme every command and task shares.

Exit codes (documented in the README):
    0   ok
    1   findings, drift or failed checks (a result, not an exception)
    2   spec or usage error
    3   build, engine, backend or publish failure; a file that cannot be read or written
    130 interrupted, after cleaning up
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_INFRA",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STDOUT_CLOSED",
    "EXIT_USAGE",
    "BoxsmithError",
    "Issue",
    "SpecError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130
EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE: the reader of stdout went away, as a shell reports it


@dataclass(frozen=True)
class Issue:
    """One problem in a spec, located in the file a user has to edit.

    Attributes:
        file: path as shown to the user (relative to the project root when possible).
        line: 1-based line, 0 when the whole file is meant.
        column: 1-based column, 0 when the whole file is meant.
        message: what is wrong, naming the key path.
        hint: what to do about it.
        path: dotted key path inside the spec ("" for the whole document).
    """

    file: str
    line: int
    column: int
    message: str
    hint: str
    path: str = ""

    def format(self) -> str:
        """Render as `file:line:col: error: message` plus an indented fix line; a file name with
        a line break or another control character shows it escaped, so it cannot fake a line."""
        file = self.file if self.file.isprintable() else repr(self.file)[1:-1]
        where = file if self.line == 0 else f"{file}:{self.line}:{self.column}"
        head = f"{where}: error: {self.path + ': ' if self.path else ''}{self.message}"
        return f"{head}\n  fix: {self.hint}" if self.hint else head

    def to_json(self) -> dict[str, object]:
        """Plain mapping for `--json` output."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class BoxsmithError(Exception):
    """Root of every error boxsmith reports to a user; carries its exit code."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format(self) -> str:
        """One-line message plus an optional fix line."""
        return f"error: {self.message}" + (f"\n  fix: {self.hint}" if self.hint else "")


class UsageError(BoxsmithError):
    """The command line or the project configuration is wrong."""

    exit_code = EXIT_USAGE


class SpecError(BoxsmithError):
    """One or more specs are invalid; every issue is reported at once."""

    exit_code = EXIT_USAGE

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(set(issues), key=lambda i: (i.file, i.line, i.column, i.message))
        count = len(self.issues)
        super().__init__(f"{count} spec error{'s' if count != 1 else ''}")

    def format(self) -> str:
        """Every issue, then a count."""
        lines = [issue.format() for issue in self.issues]
        lines.append(f"{self.message}; nothing was written")
        return "\n".join(lines)
