"""`with_retries`: await an SDK call again on transient failures, as a `RetryPolicy` says.

The policy and the test for "transient" are boxsmith's one retry rule (`boxsmith._internal.retry`),
shared with publish; this is its asyncio loop, with the sleep and the jitter injectable for tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from boxsmith._internal.retry import RetryPolicy, is_transient

__all__ = ["DEFAULT_RETRY", "with_retries"]

T = TypeVar("T")
_LOG = logging.getLogger("boxsmith.sandbox")

DEFAULT_RETRY = RetryPolicy()


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy = DEFAULT_RETRY,
    *,
    what: str = "call",
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Await `call()` until it succeeds, retrying transient failures as `policy` says.

    The last failure, or the first one that is not transient, is raised unchanged.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == policy.attempts or not is_transient(exc):
                raise
            wait = policy.delay(attempt - 1, rand)
            _LOG.warning(
                "%s attempt %d/%d failed (%s: %s); retrying in %.2fs",
                what, attempt, policy.attempts, type(exc).__name__, exc, wait,
            )  # fmt: skip
            await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
