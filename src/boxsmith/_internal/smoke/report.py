"""Smoke reports: JUnit XML for CI test views, and JSON.

One suite per template (`name:version`), one test case per check. A suite that could not run its
checks records why in a `SuiteResult`: `error` when a step before the checks failed (start or
ready), `skipped` when the template was not run at all (its build was skipped). Either shows up
as one extra test case named after that step, since JUnit has no suite-level verdict that CI
viewers display. A page check's screenshot (saved by the caller, `smoke/suites.py`) is linked by
its path: the `screenshot` field in JSON, an `[[ATTACHMENT|path]]` line in the test case's
system-out in JUnit. Reports are deterministic for equal input (no host names; the one timestamp,
the JSON report's top-level `finished_at`, only when the caller passes it).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from boxsmith._internal.render.outputs import write_atomic
from boxsmith._internal.smoke.runner import CheckResult

__all__ = ["SuiteResult", "Suites", "json_report", "junit_xml", "write_json", "write_junit"]

DEFAULT_NAME = "boxsmith smoke"

# XML 1.0 cannot hold these at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The smoke run of one template.

    Attributes:
        name: the suite, `template:version`.
        checks: one result per check, in spec order.
        target: where the checks ran (`CheckTarget.description`).
        seconds: wall time of the whole suite, start and ready included.
        error: why the checks could not run (a step before them failed), or None.
        skipped: why the template was not run at all (e.g. its build was skipped), or None.
        stage: the step `error` or `skipped` is about: build, start, ready.
        output: that step's output (e.g. the start command's last lines).
    """

    name: str
    checks: Sequence[CheckResult] = ()
    target: str = ""
    seconds: float = 0.0
    error: str | None = None
    skipped: str | None = None
    stage: str = "setup"
    output: str = ""

    @property
    def status(self) -> Literal["passed", "failed", "error", "skipped"]:
        """The suite's verdict: skipped, error (own or a check's), failed, or passed."""
        if self.skipped is not None:
            return "skipped"
        if self.error is not None or any(c.status == "error" for c in self.checks):
            return "error"
        return "failed" if any(c.status == "failed" for c in self.checks) else "passed"

    def counts(self) -> dict[str, int]:
        """Test cases by outcome, the suite-level error or skip counted as one test case."""
        own = self.error is not None or self.skipped is not None
        statuses = [c.status for c in self.checks]
        return {
            "tests": len(statuses) + own,
            "passed": statuses.count("passed"),
            "failed": statuses.count("failed"),
            "errors": statuses.count("error") + (self.skipped is None and self.error is not None),
            "skipped": int(self.skipped is not None),
        }

    def to_json(self) -> dict[str, object]:
        """Plain mapping for JSON output."""
        return {
            "name": self.name,
            "status": self.status,
            "target": self.target,
            "seconds": round(self.seconds, 3),
            "stage": self.stage if self.error is not None or self.skipped is not None else None,
            "error": self.error,
            "skipped": self.skipped,
            "output": self.output,
            "counts": self.counts(),
            "checks": [check.to_json() for check in self.checks],
        }


# Either full suite results, or just the checks per suite name.
Suites = Iterable[SuiteResult] | Mapping[str, Sequence[CheckResult]]


def _suites(suites: Suites) -> list[SuiteResult]:
    if isinstance(suites, Mapping):
        return [SuiteResult(name, tuple(checks)) for name, checks in suites.items()]
    return list(suites)


def _total(suites: list[SuiteResult]) -> dict[str, int]:
    total = dict.fromkeys(("tests", "passed", "failed", "errors", "skipped"), 0)
    for suite in suites:
        for key, value in suite.counts().items():
            total[key] += value
    return total


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _element(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: _clean(value) for key, value in attrs.items()})
    if text:
        element.text = _clean(text)
    return element


def _check_case(parent: ET.Element, suite: str, check: CheckResult) -> None:
    case = _element(parent, "testcase", name=check.name, classname=suite, time=_time(check))
    detail = f"expected: {check.expected}\nactual: {check.actual}\nattempts: {check.attempts}\n"
    if check.status == "failed":
        message = f"expected {check.expected}, got {check.actual}"
        _element(case, "failure", detail, message=message, type=check.kind)
    elif check.status == "error":
        _element(case, "error", detail, message=check.actual, type="TargetError")
    # JUnit has no attachment element: GitHub's and Jenkins' JUnit readers take this line
    attachment = f"[[ATTACHMENT|{check.screenshot}]]\n" if check.screenshot else ""
    if check.output or attachment:
        _element(case, "system-out", check.output + attachment)


def _time(item: CheckResult | SuiteResult) -> str:
    return f"{item.seconds:.3f}"


def junit_xml(suites: Suites, *, name: str = DEFAULT_NAME) -> bytes:
    """The JUnit XML document: <testsuites> with one <testsuite> per template."""
    listed = _suites(suites)
    total = _total(listed)
    root = ET.Element("testsuites", {"name": _clean(name)})
    root.attrib.update(_counts(total, sum(s.seconds for s in listed)))
    for suite in listed:
        node = _element(root, "testsuite", name=suite.name)
        node.attrib.update(_counts(suite.counts(), suite.seconds))
        if suite.target:
            properties = _element(node, "properties")
            _element(properties, "property", name="target", value=suite.target)
        if suite.skipped is not None or suite.error is not None:
            case = _element(node, "testcase", name=suite.stage, classname=suite.name, time="0.000")
            if suite.skipped is not None:
                _element(case, "skipped", message=suite.skipped)
            else:
                _element(case, "error", suite.error or "", message=suite.error or "", type="setup")
            if suite.output:
                _element(case, "system-out", suite.output)
        for check in suite.checks:
            _check_case(node, suite.name, check)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _counts(counts: dict[str, int], seconds: float) -> dict[str, str]:
    return {
        "tests": str(counts["tests"]),
        "failures": str(counts["failed"]),
        "errors": str(counts["errors"]),
        "skipped": str(counts["skipped"]),
        "time": f"{seconds:.3f}",
    }


def json_report(suites: Suites, *, name: str = DEFAULT_NAME, finished_at: str = "") -> str:
    """The JSON document: verdict, counts, and every suite with its checks; `finished_at` (an
    ISO time, when given) says when the run ended."""
    listed = _suites(suites)
    total = _total(listed)
    data: dict[str, object] = {"name": name}
    if finished_at:
        data["finished_at"] = finished_at
    data |= {
        "ok": total["failed"] == 0 and total["errors"] == 0,
        "counts": total,
        "suites": [suite.to_json() for suite in listed],
    }
    return json.dumps(data, indent=2) + "\n"


def write_junit(suites: Suites, path: Path | str, *, name: str = DEFAULT_NAME) -> None:
    """Write `junit_xml(suites)` to `path` atomically, making its folders."""
    write_atomic(os.path.abspath(path), junit_xml(suites, name=name))


def write_json(
    suites: Suites, path: Path | str, *, name: str = DEFAULT_NAME, finished_at: str = ""
) -> None:
    """Write `json_report(suites)` to `path` atomically, making its folders."""
    report = json_report(suites, name=name, finished_at=finished_at)
    write_atomic(os.path.abspath(path), report.encode())
