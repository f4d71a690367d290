"""A booted sandbox (local backend or E2B cloud) as a smoke-check `CheckTarget`, via the e2b SDK.

The same checks that run in a local container (`boxsmith._internal.smoke.container_target`) run
here: commands through `sandbox.commands.run` (E2B runs them as `bash -l -c`, as the template's
default user in its default workdir), files read with `base64` in a command, so pseudo-files such
as /proc/net/tcp read the same way on every backend. A page check opens a port at the sandbox's
preview URL (`get_host`): plain HTTP on the local backend (`*.localhost`, which browsers resolve
themselves), HTTPS on E2B cloud.

The SDK's errors are translated here. A sandbox that is gone is a `TargetError` (the checks'
error, exit 1); a backend that stopped answering altogether (its process died, the network
went) is `BackendGone` (exit 3), not a check that "did not exit in time": when a command's
connection drops and the sandbox cannot be reached, one request to the control plane tells the
two apart.

This module loads the e2b SDK (about 0.5 s): the sandbox runs import it when they start, so
`smoke --local` never does.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from e2b import (
    CommandExitException,
    SandboxException,
    SandboxNotRunningException,
    TimeoutException,
)
from e2b.exceptions import SandboxUnreachableException

from boxsmith._internal.smoke.protocol import (
    CommandResult,
    PortUrl,
    TargetError,
    read_with_base64,
)
from boxsmith.errors import BoxsmithError

__all__ = ["TRAFFIC_TOKEN_HEADER", "BackendGone", "SandboxTarget", "preview_scheme"]

TRAFFIC_TOKEN_HEADER = "e2b-traffic-access-token"  # E2B's proxy asks for it on private ports


def preview_scheme(domain: str, *, debug: bool = False) -> str:
    """`http` for a sandbox domain on this machine (the local backend's `localhost:<port>`, a
    loopback address) or the SDK's debug mode, as the SDK's own URLs do; `https` otherwise
    (E2B cloud's `e2b.app`)."""
    host = urlsplit(f"//{domain}").hostname or ""
    if debug or host == "localhost" or host.endswith(".localhost"):
        return "http"
    try:
        return "http" if ipaddress.ip_address(host).is_loopback else "https"
    except ValueError:
        return "https"


class BackendGone(BoxsmithError):
    """The sandbox's backend stopped answering while checks ran (exit 3)."""


class SandboxTarget:
    """Checks through an `e2b.Sandbox` (sync SDK).

    Args:
        sandbox: a running `e2b.Sandbox`.
        label: how reports name it, e.g. `sandbox i3f2a... (nextjs-developer:1.0.0, local)`.
        backend: how messages name its backend, e.g. `local backend http://127.0.0.1:49990`.
    """

    def __init__(self, sandbox: Any, label: str, backend: str = "the sandbox's backend") -> None:
        self._sandbox = sandbox
        self._label = label
        self._backend = backend

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
        except SandboxUnreachableException as exc:  # a TimeoutException, but not the command's
            raise self._unreachable(command) from exc
        except TimeoutException as exc:  # the command ran past `timeout` and was killed
            return CommandResult(None, "", str(exc), time.monotonic() - start)
        except SandboxException as exc:
            raise TargetError(f"{self._label}: {exc}") from exc
        seconds = time.monotonic() - start
        return CommandResult(result.exit_code, result.stdout, result.stderr, seconds)

    def _unreachable(self, command: str) -> Exception:
        """The command's connection dropped and the sandbox did not answer a health probe: ask
        the control plane whether the backend itself is gone (BackendGone) or only the sandbox
        (TargetError)."""
        try:
            self._sandbox.get_info()
        except httpx.TransportError as exc:  # connection refused, reset, timed out
            return BackendGone(
                f"{self._backend} stopped answering while `{command}` ran in {self._label}: "
                f"{exc or type(exc).__name__}",
                "check that the backend runs (`boxsmith backend status`; the local one logs to "
                ".boxsmith/backend/server.log), then run the smoke again",
            )
        except Exception as exc:  # it answered: about the sandbox, not itself
            return TargetError(f"{self._label} cannot be reached: {exc}")
        return TargetError(f"{self._label} cannot be reached, though its backend answers")

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        """The file's bytes, None when it does not exist."""
        return read_with_base64(self, path, user=user, timeout=timeout)

    def port_url(self, port: int) -> PortUrl:
        """The port's preview URL (`sandbox.get_host`), with the sandbox's traffic access token
        as E2B's header when its ports are private."""
        sandbox = self._sandbox
        try:
            host = sandbox.get_host(port)
        except SandboxException as exc:
            raise TargetError(f"{self._label}: {exc}") from exc
        config = getattr(sandbox, "connection_config", None)
        scheme = preview_scheme(sandbox.sandbox_domain, debug=bool(getattr(config, "debug", 0)))
        token = getattr(sandbox, "traffic_access_token", None)
        headers = {TRAFFIC_TOKEN_HEADER: token} if isinstance(token, str) and token else {}
        return PortUrl(f"{scheme}://{host}", headers)
