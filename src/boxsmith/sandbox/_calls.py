"""Each SDK call of the sandbox tool logs one line and turns SDK failures into `SandboxError`.

`logged` writes the line on the `boxsmith.sandbox` logger: operation, sandbox id, duration and
outcome (INFO; the caller may raise the level, as a failed kill does). `translated` is the one
place an SDK failure becomes a `SandboxError`; `SDK_ERRORS` lists what the SDK raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import httpx
from e2b import AuthenticationException, SandboxException, ServiceBusyException

from boxsmith.sandbox._results import SandboxError

__all__ = ["SDK_ERRORS", "Call", "logged", "translated"]

_LOG = logging.getLogger("boxsmith.sandbox")

# what the SDK raises besides its own classes: httpx for the API, builtins from the envd transport
SDK_ERRORS = (
    SandboxException,
    AuthenticationException,
    ServiceBusyException,
    httpx.HTTPError,
    OSError,
)


class Call:
    """One logged operation; the caller fills in the sandbox id and the outcome."""

    def __init__(self, op: str, sandbox_id: str | None) -> None:
        self.op, self.sandbox_id = op, sandbox_id or "-"
        self.outcome, self.level = "ok", logging.INFO
        self.started = time.monotonic()


@contextlib.contextmanager
def logged(op: str, sandbox_id: str | None = None) -> Iterator[Call]:
    """Log `op` once it ends: how long it took and how it ended (cancelled, failed, or the
    outcome the caller set)."""
    call = Call(op, sandbox_id)
    try:
        yield call
    except asyncio.CancelledError:
        call.outcome = "cancelled"
        raise
    except BaseException as exc:
        call.outcome = f"failed: {type(exc).__name__}"
        raise
    finally:
        took = time.monotonic() - call.started
        _LOG.log(call.level, "%s sandbox=%s %.3fs %s", call.op, call.sandbox_id, took, call.outcome)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """The one place an SDK failure of an operation becomes a `SandboxError`."""
    try:
        yield
    except SDK_ERRORS as exc:
        raise SandboxError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
