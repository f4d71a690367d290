"""Smoke stage: run a template's smoke checks against a target and report the results.

Modules: `protocol` (the `CheckTarget` protocol: run a command, read a file), `kinds` (one class
per check kind, in the `KINDS` registry), `runner` (`run_check`, `run_checks`: attempts, retries,
results), `report` (JUnit XML and JSON, written atomically); the targets: `container_target` (a
local container of a built image, started like a sandbox) and `sandbox_target` (a sandbox of the
local backend or E2B, through the e2b SDK); the runs: `container_run` (`smoke --local` and a
release's smoke-container stage: each built image in a local container, before publish),
`sandbox_run` (`smoke --target local|e2b` and a release's smoke-sandbox stage: a sandbox of each
published version) and `suites` (what the two runs share: the progress line,
the report files, the summary).

The checks only use the two `CheckTarget` calls, so the same checks run in a local container, a
sandbox of the local backend and an E2B cloud sandbox; nothing connects from the host.
"""

from boxsmith._internal.smoke.kinds import Check
from boxsmith._internal.smoke.protocol import CheckTarget, CommandResult, TargetError
from boxsmith._internal.smoke.report import (
    SuiteResult,
    json_report,
    junit_xml,
    write_json,
    write_junit,
)
from boxsmith._internal.smoke.runner import CheckResult, run_check, run_checks

__all__ = [
    "Check",
    "CheckResult",
    "CheckTarget",
    "CommandResult",
    "SuiteResult",
    "TargetError",
    "json_report",
    "junit_xml",
    "run_check",
    "run_checks",
    "write_json",
    "write_junit",
]
