"""Lint reports: text, JSON, SARIF 2.1.0, GitHub annotations and the job summary.

Every format is a pure function of a `LintReport`, deterministic for equal input (no times, no
absolute paths), so reports can be compared and uploaded as they are. Locations are relative to
the project root; the spec location leads when there is one, the generated one follows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from boxsmith import __version__
from boxsmith._internal.gha import annotation
from boxsmith._internal.lint.findings import Finding, Level, Location
from boxsmith._internal.lint.rules import RULES
from boxsmith._internal.lint.runner import LintReport

__all__ = ["FORMATS", "gha_annotations", "json_report", "sarif", "step_summary", "text"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "note"}
_GHA_LEVEL = {Level.ERROR: "error", Level.WARNING: "warning"}


def _help_uri(code: str) -> str | None:
    if code.startswith("DL"):
        return f"https://github.com/hadolint/hadolint/wiki/{code}"
    if code.startswith("SC"):
        return f"https://www.shellcheck.net/wiki/{code}"
    return None


def text(report: LintReport) -> str:
    """One line per finding: `file:line:col: level CODE message (generated file:line)`."""
    lines = []
    for f in report.findings:
        also = f" ({f.generated.file}:{f.generated.line})" if f.spec else ""
        lines.append(f"{f.location}: {f.level} {f.code} {f.message}{also}\n")
    return "".join(lines)


def json_report(report: LintReport) -> str:
    """Machine output: verdict, counts, the files judged and every finding with both places."""
    data = {
        "ok": not report.failing,
        "threshold": str(report.threshold),
        "counts": report.counts(),
        "ignored": len(report.ignored),
        "templates": [
            {
                "template": t.ref,
                "dockerfile": t.dockerfile,
                "on_disk": t.on_disk,
                "edited": t.edited,
            }
            for t in report.templates
        ],
        "findings": [
            {**f.to_json(), "fails": f.level >= report.threshold} for f in report.findings
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def _physical(where: Location) -> dict[str, object]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(where.file)},
            "region": {"startLine": where.line, "startColumn": where.column},
        }
    }


def _sarif_rules(findings: tuple[Finding, ...]) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = [
        {
            "id": code,
            "name": type(rule).__name__,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": " ".join((type(rule).__doc__ or rule.title).split())},
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(rule.level, "note")},
            "properties": {"tool": "boxsmith"},
        }
        for code, rule in RULES.items()
    ]
    seen: dict[str, Finding] = {}
    for f in findings:
        if f.tool != "boxsmith":
            seen.setdefault(f.code, f)
    for code, first in sorted(seen.items()):
        entry: dict[str, object] = {
            "id": code,
            "shortDescription": {"text": first.message.splitlines()[0]},
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(first.level, "note")},
            "properties": {"tool": first.tool},
        }
        uri = _help_uri(code)
        if uri:
            entry["helpUri"] = uri
        rules.append(entry)
    return rules


def sarif(report: LintReport) -> str:
    """A SARIF 2.1.0 log with one run: rules (the own rules, then the hadolint codes found) and
    one result per finding; the spec is the location, the generated line a related one."""
    rules = _sarif_rules(report.findings)
    index = {str(rule["id"]): n for n, rule in enumerate(rules)}
    results = []
    for f in report.findings:
        result: dict[str, object] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _SARIF_LEVEL.get(f.level, "note"),
            "message": {"text": f.message},
            "locations": [_physical(f.location)],
            "properties": {"template": f.template, "severity": str(f.level), "tool": f.tool},
        }
        if f.spec:
            related = {"id": 1, **_physical(f.generated), "message": {"text": "generated line"}}
            result["relatedLocations"] = [related]
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "boxsmith",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def gha_annotations(report: LintReport) -> list[str]:
    """`::error file=...,line=...::` workflow commands, one per finding (info and style are
    notices), at the spec line when known."""
    return [
        annotation(
            _GHA_LEVEL.get(f.level, "notice"),
            f"{f.code} {f.message}"
            + (f" (generated: {f.generated.file}:{f.generated.line})" if f.spec else ""),
            file=f.location.file,
            line=f.location.line,
            title=f"boxsmith lint {f.code} ({f.template})",
        )
        for f in report.findings
    ]


def step_summary(report: LintReport) -> str:
    """Markdown for `$GITHUB_STEP_SUMMARY`."""
    head = f"### boxsmith lint\n\n{len(report.templates)} template(s), threshold {report.threshold}"
    if not report.findings:
        return f"{head}: no findings ({len(report.ignored)} ignored)."
    rows = "\n".join(
        "| {} | {} | `{}` | {} |".format(f.level, f.code, f.location, f.message.replace("|", "\\|"))
        for f in report.findings
    )
    return (
        f"{head}: {len(report.failing)} failing, {len(report.findings)} shown, "
        f"{len(report.ignored)} ignored.\n\n| level | code | where | message |\n|---|---|---|---|\n"
        f"{rows}"
    )


FORMATS: dict[str, Callable[[LintReport], str]] = {
    "text": text,
    "json": json_report,
    "sarif": sarif,
}
