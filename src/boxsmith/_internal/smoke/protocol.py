"""The small protocol smoke checks run against: run a command, read a file, name a port's URL.

A `CheckTarget` is where checks run: a local Docker container
(`boxsmith._internal.smoke.container_target`), a sandbox of the local E2B-compatible backend or
of E2B cloud (`boxsmith._internal.smoke.sandbox_target`, through the `e2b` SDK). The checks
themselves (`boxsmith._internal.smoke.runner`) only use these calls, so the very same checks
run everywhere. Only the page check (`boxsmith._internal.smoke.page`) reaches into the target from
the host, through `port_url`: a container's address on Docker's bridge, a sandbox's preview URL.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "OUTPUT_LIMIT",
    "Attempt",
    "CheckTarget",
    "CommandResult",
    "PortUrl",
    "TargetError",
    "read_with_base64",
    "trim",
]

OUTPUT_LIMIT = 4096  # characters of a check's output kept in its result and the reports


def trim(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The last `limit` characters of `text`, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut]\n{text[-limit:]}"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended.

    Attributes:
        exit_code: the command's exit status; None when it was killed for running past its
            timeout.
        stdout: standard output, decoded as UTF-8 with replacement.
        stderr: standard error, decoded the same way.
        seconds: wall time of the call.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        """True when the command did not end within its timeout."""
        return self.exit_code is None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt of a check saw (a check kind's answer; `boxsmith._internal.smoke.kinds`).

    Attributes:
        passed: the check passed.
        actual: what came, in words (`exit 1, stdout: 'x'`).
        output: the raw output behind it (stdout/stderr, body, file content), trimmed.
        final: retrying cannot change the outcome (no HTTP client in the image).
        screenshot: a PNG of what the page check's browser showed, else None.
    """

    passed: bool
    actual: str
    output: str = ""
    final: bool = False
    screenshot: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PortUrl:
    """How the host reaches a port of the target over HTTP.

    Attributes:
        url: the port's root, without a trailing slash (`http://172.17.0.3:8501`,
            `https://8501-<sandbox id>.e2b.app`).
        headers: headers every request to that origin needs (E2B's
            `e2b-traffic-access-token` for a sandbox whose ports are private), else empty.
    """

    url: str
    headers: Mapping[str, str]


class TargetError(Exception):
    """The target itself failed (container gone, sandbox killed, connection lost).

    Not a failed check: the runner reports it as an error and stops asking this target.
    """


class CheckTarget(Protocol):
    """Where smoke checks run."""

    @property
    def description(self) -> str:
        """Short human text naming the target, e.g. `container 3f2a1c (boxsmith/x:1.0.0)`."""
        ...

    def run(
        self,
        command: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        """Run `command` through a POSIX shell (`/bin/bash -l -c` when bash exists, else `sh -c`).

        `user` and `cwd` default to the template's final USER and WORKDIR (as on E2B); `env` is
        added to the image's environment. A command still running after `timeout` seconds is
        killed and its result has `exit_code=None`. Raises TargetError when the target is gone.
        """
        ...

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        """The contents of the file at absolute `path`, or None when it does not exist.

        Works for pseudo-files like /proc/net/tcp. Raises TargetError when the target is gone.
        """
        ...

    def port_url(self, port: int) -> PortUrl:
        """How the host reaches `port` of the target (whether anything listens there or not).

        Raises TargetError when the target is gone or has no address the host can reach.
        """
        ...


def read_with_base64(
    target: CheckTarget, path: str, *, user: str | None = None, timeout: float = 30.0
) -> bytes | None:
    """`CheckTarget.read_file` through `target.run`: `base64` of the file in a command, so
    pseudo-files such as /proc/net/tcp read the same on every target; None when the file does not
    exist."""
    quoted = shlex.quote(path)
    result = target.run(
        f"if [ -e {quoted} ]; then base64 < {quoted}; else exit 66; fi", user=user, timeout=timeout
    )
    if result.exit_code == 66:
        return None
    if result.exit_code != 0:
        raise TargetError(f"cannot read {path}: {result.stderr.strip() or result.exit_code}")
    return base64.b64decode("".join(result.stdout.split()))
