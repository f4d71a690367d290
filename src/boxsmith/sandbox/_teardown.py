"""Ending a sandbox for sure: a kill that finishes even when cancelled."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from e2b import AsyncSandbox

from boxsmith.sandbox._calls import logged

__all__ = ["kill", "wait_through_cancel"]

KILL_TIMEOUT = 30.0


async def wait_through_cancel(task: asyncio.Future[Any]) -> bool:
    """Wait until `task` is done even if we are cancelled meanwhile; return whether we were.

    Used where giving up half way would leak a sandbox: a create in flight and a kill. Each is
    bounded by the SDK's request timeout.
    """
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


async def kill(sandbox: AsyncSandbox) -> None:
    """Kill `sandbox`; a failure is logged, never raised (the block's own exception must win,
    and the sandbox's timeout ends it)."""
    with logged("kill", sandbox.sandbox_id) as call:
        try:
            killed = await sandbox.kill(request_timeout=KILL_TIMEOUT)
        except Exception as exc:
            call.level, call.outcome = logging.WARNING, f"failed: {type(exc).__name__}: {exc}"
        else:
            call.outcome = "ok" if killed else "already gone"
