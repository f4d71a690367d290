"""Retrying transient failures of E2B calls, one policy for publish and the sandbox tool.

`is_transient` says whether retrying may help: rate limits (429), a busy service, 5xx answers,
upload and connection errors, a request that timed out. Never authentication, a missing
template or sandbox, or any other 4xx: retrying cannot fix those. `RetryPolicy` is exponential
backoff with jitter; callers retry themselves (publish waits on a stop event, the sandbox tool
on asyncio) and log each retry once. The SDK's own retries are turned off where boxsmith
retries, so a failure is never retried twice over. `Retries` is the count of one step that
calls the target many times (publish polls a build's status every few seconds): one budget for
the whole step, so the counter in the log counts on instead of starting again at every poll.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Retries", "RetryPolicy", "http_status", "is_transient"]

_STATUS = re.compile(r"^(\d{3})\b")  # the SDK's messages start with the HTTP status: "502: ..."


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    Attributes:
        attempts: tries in all, the first included (1 means no retry).
        base_delay: seconds before the first retry; doubled for each next one.
        max_delay: cap on the doubled delay, before jitter.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(f"invalid {self!r}: attempts must be >= 1 and delays >= 0")

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first): backoff times [0.5, 1)."""
        backoff: float = min(self.base_delay * 2**retry, self.max_delay)
        return backoff * (0.5 + rand() / 2)


@dataclass(slots=True)
class Retries:
    """The retries one step has used, across every call it makes (see the module doc).

    Attributes:
        policy: the step's policy; `policy.attempts - 1` retries in all.
        used: retries taken so far.
    """

    policy: RetryPolicy
    used: int = 0

    @property
    def allowed(self) -> int:
        """Retries the step may take in all."""
        return self.policy.attempts - 1

    def take(self, rand: Callable[[], float] = random.random) -> float | None:
        """Count one more retry and return its delay; None when the budget is spent."""
        if self.used >= self.allowed:
            return None
        delay = self.policy.delay(self.used, rand)
        self.used += 1
        return delay


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (as an attribute or at the start of its text)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    match = _STATUS.match(str(exc).strip())  # some SDK paths keep the status only in the text
    return int(match[1]) if match else None


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying (see the module doc)."""
    # here, not at the top: e2b takes about 0.5 s to import, and only a failure asks this
    import httpx
    from e2b import (
        AuthenticationException,
        FileUploadException,
        NotFoundException,
        RateLimitException,
        ServiceBusyException,
        TimeoutException,
    )

    if isinstance(exc, AuthenticationException | NotFoundException):
        return False
    if isinstance(
        exc,
        RateLimitException
        | ServiceBusyException
        | FileUploadException
        | httpx.TransportError
        | ConnectionError
        | TimeoutError,
    ):
        return True
    if type(exc) is TimeoutException:  # the request timed out; its subclasses mean "gone"
        return True
    status = http_status(exc)
    return status is not None and (status == 429 or 500 <= status <= 599)
