"""Ending a sandbox for sure: a kill that finishes even when cancelled, and no SDK thread still
inside the interpreter once it is done.

Why `settle` exists: the e2b SDK's HTTP client (pyqwest) does its I/O on Rust threads and hands
each result to the event loop with `loop.call_soon_threadsafe`. That call queues the callback and
then wakes the loop by writing to a socket, and CPython lets go of the GIL around the write; the
loop thread can take the result and run on before the Rust thread is out of the call. When a
script ends right after `async with`, the interpreter may start finalizing while that thread waits
for the GIL again. Python 3.11 ends such a thread with `pthread_exit`, whose unwind cannot get
through the Rust frames, so the process aborts (SIGABRT, exit 134) after its work is done
(python/cpython#87135; Python 3.14 parks the thread instead). A fixed pause after the kill hid
this; `settle` waits until no other thread is inside that call. Closing the SDK's connection
pools after the kill does not help (tried: the abort stays), since the thread is already in the
hand-over; and the pools are one per process, shared by every session.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any

from e2b import AsyncSandbox

from boxsmith.sandbox._calls import logged

__all__ = ["kill", "settle", "wait_through_cancel"]

KILL_TIMEOUT = 30.0
SETTLE_LIMIT = 5.0  # seconds; a thread that needs longer is not one finishing a hand-over
_HAND_OVER = asyncio.BaseEventLoop.call_soon_threadsafe.__code__


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
    """Kill `sandbox`, then `settle`; a failure is logged, never raised (the block's own
    exception must win, and the sandbox's timeout ends it)."""
    with logged("kill", sandbox.sandbox_id) as call:
        try:
            killed = await sandbox.kill(request_timeout=KILL_TIMEOUT)
        except Exception as exc:
            call.level, call.outcome = logging.WARNING, f"failed: {type(exc).__name__}: {exc}"
        else:
            call.outcome = "ok" if killed else "already gone"
    await settle()


async def settle() -> None:
    """Return once no other thread is handing a result to an event loop (see the module doc)."""
    deadline = time.monotonic() + SETTLE_LIMIT
    while _handing_over() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)  # the loop's poll frees the GIL for that thread to finish


def _handing_over() -> bool:
    """Whether a thread other than this one is inside `call_soon_threadsafe` of a standard loop."""
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        inner: Any = frame
        while inner is not None:
            if inner.f_code is _HAND_OVER:
                return True
            inner = inner.f_back
    return False
