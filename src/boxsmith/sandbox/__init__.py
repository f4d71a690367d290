"""The sandbox tool for agent code: create a sandbox from a template, write files, run code, always
clean up. Public API (its `__all__`).

`SandboxSession` is an async context manager over the e2b SDK's `AsyncSandbox`;
`SandboxSessionSync` runs the same session on a private event loop for callers without asyncio.
Both work against E2B and against `boxsmith backend serve` (the `E2B_*` environment variables).
The private modules: `_session` (the session), `_sync` (the sync wrapper), `_results` (what
`run_code` returns, `SandboxError`), `_retry` (create's retry loop), `_calls` (one log line and
one error translation per SDK call), `_teardown` (the kill and the wait after it).
"""

from boxsmith._internal.retry import RetryPolicy, is_transient
from boxsmith.sandbox._results import EXIT_TIMED_OUT, CodeResult, SandboxError
from boxsmith.sandbox._retry import with_retries
from boxsmith.sandbox._session import DEFAULT_TEMPLATE, LANGUAGES, TEMPLATE_ENV, SandboxSession
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
