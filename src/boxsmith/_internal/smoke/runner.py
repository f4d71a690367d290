"""Run smoke checks against a target: attempts, retries, and one result per check.

`run_check` runs one check with its own per-attempt timeout and `retries` extra attempts,
`interval` seconds apart, stopping as soon as it passes. A failed check is a result, never an
exception; only a `TargetError` (the target itself is gone) turns into status "error", and
`run_checks` then reports the remaining checks as errors without asking the target again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from boxsmith._internal.smoke.kinds import KINDS, Check
from boxsmith._internal.smoke.protocol import Attempt, CheckTarget, TargetError
from boxsmith._internal.spec.checks import check_name

__all__ = ["CheckResult", "Status", "budget", "run_check", "run_checks"]

Status = Literal["passed", "failed", "error"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How one smoke check ended.

    Attributes:
        name: the check's `name`, or one derived from it (`command: python --version`).
        kind: command, file, port, http, process or page.
        status: "passed", "failed", or "error" when the target failed (not the check).
        expected: what passing means, in words (`exit 0, stdout matching /3\\.11/`).
        actual: what came, in words (`exit 0, stdout: 'Python 3.12.1'`), from the last attempt.
        attempts: how many attempts ran (0 when the target was gone before this check).
        seconds: wall time of all attempts and the pauses between them.
        output: the last attempt's output (stdout/stderr, body, file content), trimmed to 4 KB.
        png: the page check's screenshot of its last attempt (PNG bytes), until the report
            writer saves it (`boxsmith._internal.smoke.suites`).
        screenshot: where the report writer saved `png` (relative to the project when inside
            it), else None.
    """

    name: str
    kind: str
    status: Status
    expected: str
    actual: str
    attempts: int
    seconds: float
    output: str = ""
    png: bytes | None = field(default=None, repr=False)
    screenshot: str | None = None

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.status == "passed"

    def to_json(self) -> dict[str, object]:
        """Plain mapping for JSON output."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "expected": self.expected,
            "actual": self.actual,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "output": self.output,
        } | ({"screenshot": self.screenshot} if self.kind == "page" else {})


def run_check(
    target: CheckTarget,
    check: Check,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Run one check: up to `1 + check.retries` attempts, `check.interval` seconds apart.

    Args:
        target: where the check runs.
        check: the spec's check.
        clock: monotonic seconds, for `seconds` (injectable for tests).
        sleep: waits between attempts (injectable for tests).
    """
    kind = KINDS[check.kind]
    expected = kind.expected(check)
    start = clock()
    attempts = 0
    while True:
        attempts += 1
        try:
            attempt: Attempt = kind.attempt(target, check)
        except TargetError as exc:
            actual = str(exc) or type(exc).__name__
            return CheckResult(
                check_name(check), check.kind, "error", expected, actual, attempts, clock() - start
            )
        if attempt.passed or attempt.final or attempts > check.retries:
            break
        sleep(check.interval)
    return CheckResult(
        name=check_name(check),
        kind=check.kind,
        status="passed" if attempt.passed else "failed",
        expected=expected,
        actual=attempt.actual,
        attempts=attempts,
        seconds=clock() - start,
        output=attempt.output,
        png=attempt.screenshot,
    )


def budget(checks: Iterable[Check]) -> float:
    """The most seconds `run_checks` can take on a target that answers: every attempt of every
    check to its timeout (a few calls each, with their client-side backstops) and every pause."""
    return sum(
        (1 + check.retries) * 3 * (check.timeout + 15) + check.retries * check.interval
        for check in checks
    )


def run_checks(
    target: CheckTarget,
    checks: Iterable[Check],
    *,
    on_result: Callable[[CheckResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """Run every check in order; after a target error, report the rest as errors unasked.

    Args:
        target: where the checks run.
        checks: the spec's checks, in order.
        on_result: called with each result as soon as it is known (progress output).
        clock: as for `run_check`.
        sleep: as for `run_check`.
    """
    results: list[CheckResult] = []
    gone: str | None = None
    for check in checks:
        if gone is None:
            result = run_check(target, check, clock=clock, sleep=sleep)
            if result.status == "error":
                gone = result.actual
        else:
            expected = KINDS[check.kind].expected(check)
            actual = f"target gone: {gone}"
            result = CheckResult(check_name(check), check.kind, "error", expected, actual, 0, 0.0)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
