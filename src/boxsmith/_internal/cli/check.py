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
    if whole and not as_json and _unchanged(settings, prefix, err):
        return EXIT_OK

    # lazy: the spec models and Jinja (~0.3 s) load only when the stamp cannot answer
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
        _github(drift, prefix, stream=err if as_json else out)
    _explain(drift, report.tampered, prefix, err)
    if drift or report.tampered:
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


def _unchanged(settings: Settings, prefix: str, err: TextIO) -> bool:
    """True, after saying so, when the stamp of the last good check still holds."""
    previous = stamp.load(settings)
    if not stamp.matches(settings, previous):
        return False
    assert previous is not None
    if in_github_actions():
        write_step_summary("### boxsmith check\n\ngenerated/ matches template_specs/.")
    err.write(
        f"ok: {prefix} matches the specs ({previous.get('templates')} template(s), "
        f"{previous.get('files')} file(s); nothing changed since the last check)\n"
    )
    return True


def _github(drift: Sequence[Change], prefix: str, stream: TextIO) -> None:
    """An error annotation per drifted file on `stream`, and the job summary."""
    for change in drift:
        line = _first_changed_line(change) if change.action is Action.UPDATE else 1
        fix = (
            ""
            if change.action is Action.FOREIGN
            else "; run `boxsmith render` and commit the result"
        )
        stream.write(
            annotation(
                "error",
                f"{prefix}{change.rel} {_describe(change)}{fix}",
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
            f"{len(drift)} generated file(s) out of date:\n\n| file | needed |\n|---|---|\n{rows}"
            if drift
            else "generated/ matches template_specs/."
        )
    )


def _explain(
    drift: Sequence[Change], tampered: Sequence[tuple[str, str]], prefix: str, err: TextIO
) -> None:
    """What a person has to do: restore edited published versions, remove foreign files,
    render and commit."""
    for folder, problem in tampered:
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
