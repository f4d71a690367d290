"""A booted sandbox (local backend or E2B cloud) as a smoke-check `Target`, through the e2b SDK.

The same checks that run in a local container (`boxsmith.smoke_local.ContainerTarget`) run here:
commands through `sandbox.commands.run` (E2B runs them as `bash -l -c`, as the template's default
user in its default workdir), files read with `base64` in a command, so pseudo-files such as
/proc/net/tcp read the same way on every backend.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from boxsmith.checks.target import CommandResult, TargetError, read_with_base64

__all__ = ["SandboxTarget"]


class SandboxTarget:
    """Checks through an `e2b.Sandbox` (sync SDK).

    Args:
        sandbox: a running `e2b.Sandbox`.
        label: how reports name it, e.g. `sandbox i3f2a... (nextjs-developer:1.0.0, local)`.
    """

    def __init__(self, sandbox: Any, label: str) -> None:
        self._sandbox = sandbox
        self._label = label

    @property
    def description(self) -> str:
        """Which sandbox the checks ran in."""
        return self._label

    def run(
        self,
        command: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        """Run `command` to its end or `timeout` (then `exit_code=None`)."""
        from e2b import (
            CommandExitException,
            SandboxException,
            SandboxNotRunningException,
            TimeoutException,
        )

        start = time.monotonic()
        try:
            result = self._sandbox.commands.run(
                command,
                user=user,
                cwd=cwd,
                envs=dict(env or {}),
                timeout=max(1, round(timeout)),
            )
        except CommandExitException as exc:
            return CommandResult(exc.exit_code, exc.stdout, exc.stderr, time.monotonic() - start)
        except SandboxNotRunningException as exc:
            raise TargetError(f"{self._label} is gone: {exc}") from exc
        except TimeoutException as exc:  # the command ran past `timeout` and was killed
            return CommandResult(None, "", str(exc), time.monotonic() - start)
        except SandboxException as exc:
            raise TargetError(f"{self._label}: {exc}") from exc
        seconds = time.monotonic() - start
        return CommandResult(result.exit_code, result.stdout, result.stderr, seconds)

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        """The file's bytes, None when it does not exist."""
        return read_with_base64(self, path, user=user, timeout=timeout)
