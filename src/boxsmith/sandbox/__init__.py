"""The sandbox tool for agent code: create a sandbox from a template, write files, run code, always
clean up. Public API (its `__all__`).

`SandboxSession` is an async context manager over the e2b SDK's `AsyncSandbox`;
`SandboxSessionSync` runs the same session on a private event loop for callers without asyncio.
Both work against E2B and against `boxsmith backend serve` (the `E2B_*` environment variables).
`_session.py` holds the session and its results, `_sync.py` the sync wrapper.
"""

from boxsmith.sandbox._session import (
    DEFAULT_TEMPLATE,
    EXIT_TIMED_OUT,
    LANGUAGES,
    TEMPLATE_ENV,
    CodeResult,
    RetryPolicy,
    SandboxError,
    SandboxSession,
    is_transient,
    with_retries,
)
from boxsmith.sandbox._sync import SandboxSessionSync

__all__ = [
    "DEFAULT_TEMPLATE",
    "EXIT_TIMED_OUT",
    "LANGUAGES",
    "TEMPLATE_ENV",
    "CodeResult",
    "RetryPolicy",
    "SandboxError",
    "SandboxSession",
    "SandboxSessionSync",
    "is_transient",
    "with_retries",
]
