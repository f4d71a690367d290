"""What the sandbox tool returns and raises: `CodeResult` of a `run_code` call, `SandboxError`."""

from __future__ import annotations

from dataclasses import dataclass

from boxsmith.errors import BoxsmithError

__all__ = ["EXIT_NOT_FOUND", "EXIT_TIMED_OUT", "CodeResult", "SandboxError"]

EXIT_TIMED_OUT = 124  # as coreutils `timeout`
EXIT_NOT_FOUND = 127  # as the shell for a missing command


class SandboxError(BoxsmithError):
    """A sandbox could not be created or an operation on it failed (exit 3); chains the cause."""


@dataclass(frozen=True, slots=True)
class CodeResult:
    """What one `run_code` call did.

    Attributes:
        stdout: everything the code printed to stdout (up to the timeout).
        stderr: everything it printed to stderr.
        exit_code: the process's exit code; `EXIT_TIMED_OUT` (124) when it ran out of time, 127
            when the interpreter is missing.
        error: None on exit code 0, else what went wrong in one line.
        seconds: wall time of the call, writing the code file included.
    """

    stdout: str
    stderr: str
    exit_code: int
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """True when the code exited with 0."""
        return self.exit_code == 0
