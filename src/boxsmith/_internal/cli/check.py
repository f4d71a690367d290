"""`boxsmith check`: the CI gate that generated/ matches template_specs/ (exit 1 on drift)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.gha import annotation, in_github_actions, write_step_summary
from boxsmith._internal.render import stamp
from boxsmith._internal.render.outputs import Action, Change
from boxsmith.config import Settings
from boxsmith.errors import EXIT_FINDINGS, EXIT_OK


def _first_changed_line(change: Change) -> int:
    old = (change.old or b"").split(b"\n")
    new = (change.new or b"").split(b"\n")
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return number
    return min(len(old), len(new)) or 1


def _describe(change: Change) -> str:
    if change.hand_edit and change.action is Action.UPDATE:
        return "was edited by hand (it differs from what boxsmith wrote and the specs render)"
    return {
        Action.CREATE: "is missing",
        Action.UPDATE: "differs from what the specs render",
        Action.DELETE: "is not rendered by any spec",
        Action.FOREIGN: "was not written by boxsmith (not in index.json) and is not rendered; "
        "render leaves it, remove it by hand",
    }.get(change.action, "is identical")


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Compare generated/ with a fresh in-memory render; print diffs and annotations."""
    prefix = settings.display(settings.generated_dir) + "/"
    whole = not names and not labels
    if whole and not as_json:
        previous = stamp.load(settings)
        if stamp.matches(settings, previous):
            assert previous is not None
            if in_github_actions():
                write_step_summary("### boxsmith check\n\ngenerated/ matches template_specs/.")
            err.write(
                f"ok: {prefix} matches the specs ({previous.get('templates')} template(s), "
                f"{previous.get('files')} file(s); nothing changed since the last check)\n"
            )
            return EXIT_OK

    from boxsmith._internal.cli.render import report_json, unified_diff
    from boxsmith._internal.render.pipeline import check_project
    from boxsmith._internal.spec.catalog import inputs

    report = check_project(settings, names, labels)
    drift = report.drift
    if as_json:
        data = report_json(report, prefix)
        data["drift"] = [
            {
                "action": c.action.value,
                "path": f"{prefix}{c.rel}",
                "hand_edit": c.hand_edit,
                "diff": unified_diff(c, prefix),
            }
            for c in drift
        ]
        data["tampered"] = [{"path": f, "problem": m} for f, m in report.tampered]
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        for change in drift:
            out.write(unified_diff(change, prefix))
    if in_github_actions():
        stream = err if as_json else out
        for change in drift:
            line = _first_changed_line(change) if change.action is Action.UPDATE else 1
            stream.write(
                annotation(
                    "error",
                    f"{prefix}{change.rel} {_describe(change)}"
                    + (
                        ""
                        if change.action is Action.FOREIGN
                        else "; run `boxsmith render` and commit the result"
                    ),
                    file=f"{prefix}{change.rel}",
                    line=line,
                    title="boxsmith check: generated output drift",
                )
                + "\n"
            )
        rows = "\n".join(f"| `{prefix}{c.rel}` | {c.action.value} |" for c in drift)
        write_step_summary(
            "### boxsmith check\n\n"
            + (
                f"{len(drift)} generated file(s) out of date:\n\n"
                f"| file | needed |\n|---|---|\n{rows}"
                if drift
                else "generated/ matches template_specs/."
            )
        )
    for folder, problem in report.tampered:
        err.write(
            f"error: {folder}: {problem}\n  fix: a published version is immutable: restore it "
            f"from git (`git checkout -- {folder}`)\n"
        )
    for change in drift:
        if change.hand_edit or change.action is Action.FOREIGN:
            err.write(f"{prefix}{change.rel} {_describe(change)}\n")
    if drift:
        err.write(
            f"drift: {len(drift)} file(s) in {prefix} do not match the specs; "
            "run `boxsmith render` and commit the result\n"
        )
        return EXIT_FINDINGS
    if report.tampered:
        return EXIT_FINDINGS
    if whole:
        stamp.save(
            settings,
            inputs(report.generation.catalog),
            {"templates": len(report.generation.rendered), "files": len(report.changes)},
        )
    err.write(
        f"ok: {prefix} matches the specs "
        f"({len(report.generation.rendered)} template(s), {len(report.changes)} file(s))\n"
    )
    return EXIT_OK
