"""The checks of command options, in one place: each command's `run()` calls them, so the CLI
and the invoke tasks refuse the same values with the same message (UsageError, exit 2)."""

from __future__ import annotations

import math

from boxsmith._internal.spec.names import tag_error
from boxsmith.errors import UsageError

__all__ = ["at_least_one", "channel_tag", "port_number", "positive_seconds"]


def at_least_one(flag: str, value: int, example: int) -> None:
    """A count such as `--jobs`: 1 or more."""
    if value < 1:
        raise UsageError(f"{flag} must be at least 1, got {value}", f"use e.g. {flag} {example}")


def positive_seconds(flag: str, value: float, example: float) -> None:
    """A duration such as `--ready-timeout`: more than 0 seconds, and finite."""
    if not 0 < value < math.inf:  # also refuses NaN
        raise UsageError(
            f"{flag} must be a positive number of seconds, got {value:g}",
            f"use e.g. {flag} {example:g}",
        )


def port_number(flag: str, value: int) -> None:
    """A TCP port such as `--port`: 1 to 65535."""
    if not 1 <= value <= 65535:
        raise UsageError(
            f"{flag} must be a TCP port from 1 to 65535, got {value}", f"use e.g. {flag} 49990"
        )


def channel_tag(channel: str) -> None:
    """`--channel`: a tag E2B accepts (checked before any work)."""
    problem = tag_error(channel)
    if problem:
        raise UsageError(f"--channel: {problem}", "use a-z, 0-9, -, _ and ., e.g. --channel stable")
