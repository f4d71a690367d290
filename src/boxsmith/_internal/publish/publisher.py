"""PUBLISH: build each planned version on the target through the e2b SDK, `jobs` at a time.

The stage in three steps: `plan_publish` decides, before any network, what to build and what is
already settled (the plan module); `publish_units` runs one job per version to build, `jobs` at
a time (the job module: look up, request, follow, with retries and a deadline); each job
records its finished build at once (the records module). The SDK's own retries are off, so
each retry is decided and logged once, by the job. On Ctrl-C the waiting jobs are cancelled and
the running ones stop at their next wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TextIO

from boxsmith._internal.progress import Progress
from boxsmith._internal.publish.limits import PUBLISH_RETRY, publish_timeout
from boxsmith._internal.publish.plan import PublishResult, PublishUnit
from boxsmith._internal.publish.targets import PublishTarget
from boxsmith._internal.retry import RetryPolicy
from boxsmith.config import Settings

__all__ = ["publish_units"]


def publish_units(
    settings: Settings,
    units: Sequence[PublishUnit],
    target: PublishTarget,
    *,
    err: TextIO,
    jobs: int = 4,
    policy: RetryPolicy | None = None,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> list[PublishResult]:
    """Build and record `units` on `target`, `jobs` at a time; one result per unit, in order.

    `timeout` is each version's deadline in seconds (default: `publish_timeout()`). On Ctrl-C
    the waiting builds are cancelled, the running ones stop at their next wait (what the target
    already started goes on there; the next publish of that version waits for it) and
    KeyboardInterrupt is raised.

    Raises:
        UsageError: a bad `BOXSMITH_PUBLISH_TIMEOUT`.
    """
    if not units:
        return []
    seconds = publish_timeout() if timeout is None else timeout
    # here, not at the top: the job imports e2b (about 0.5 s), which nothing to build never needs
    from boxsmith._internal.publish.job import Job, Run

    with Progress(err, "publish") as progress:
        run = Run(settings, target, progress, policy or PUBLISH_RETRY, poll_interval, seconds)
        pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="publish")
        futures: list[Future[PublishResult]] = []
        try:
            futures = [pool.submit(Job(run, unit).publish) for unit in units]
            pending = set(futures)
            while pending:  # short waits, so that Ctrl-C reaches this thread
                _done, pending = wait(pending, timeout=0.5)
        except BaseException:
            run.stop.set()
            for future in futures:
                future.cancel()
            raise
        finally:
            pool.shutdown(wait=True)
        return [future.result() for future in futures]
