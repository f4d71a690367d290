"""How long and how often publish tries: each version's deadline and the retry policy.

A version's publish, from the request to the finished build, may take `BOXSMITH_PUBLISH_TIMEOUT`
seconds (default 3600: real template builds take minutes, large ones tens of them). Transient
failures are retried with `PUBLISH_RETRY`'s backoff, patient because builds are long.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from boxsmith._internal.retry import RetryPolicy
from boxsmith.errors import UsageError

__all__ = ["DEFAULT_TIMEOUT", "PUBLISH_RETRY", "TIMEOUT_SETTING", "publish_timeout"]

PUBLISH_RETRY = RetryPolicy(attempts=6, base_delay=1.0, max_delay=30.0)  # builds are long
TIMEOUT_SETTING = "BOXSMITH_PUBLISH_TIMEOUT"
DEFAULT_TIMEOUT = 3600.0  # seconds; real template builds take minutes, large ones tens of them


def publish_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds one version's publish may take (`BOXSMITH_PUBLISH_TIMEOUT`, default 3600).

    Raises:
        UsageError: a value that is not a number of seconds above 0.
    """
    raw = (os.environ if environ is None else environ).get(TIMEOUT_SETTING, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(
            f"{TIMEOUT_SETTING}={raw!r} is not a number of seconds above 0",
            f"set {TIMEOUT_SETTING} to the longest one version's publish may take, "
            f"e.g. {DEFAULT_TIMEOUT:g}",
        )
    return value
