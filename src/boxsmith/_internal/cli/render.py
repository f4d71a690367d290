"""`boxsmith render`: write the generated folder, reporting create / update / identical / delete.

Files boxsmith did not write are reported as `foreign` and left in place; an update or delete
that replaces a hand edit says so (on stdout, and as a warning on stderr).
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.lock import hold
from boxsmith._internal.render import stamp
from boxsmith._internal.render.outputs import Action, Change
from boxsmith._internal.render.pipeline import RenderReport, render_project
from boxsmith._internal.spec.catalog import inputs
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK


def unified_diff(change: Change, prefix: str) -> str:
    """A unified diff of one change (binary files are named, not shown)."""
    try:
        old = (change.old or b"").decode().splitlines(keepends=True)
        new = (change.new or b"").decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"Binary file {prefix}{change.rel} differs\n"
    path = f"{prefix}{change.rel}"
    lines = difflib.unified_diff(old, new, f"a/{path}", f"b/{path}")
    text = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    if not text and change.action is Action.UPDATE:
        return f"mode of {path} changed\n"
    return text


def hand_edit(change: Change, dry_run: bool = False) -> str:
    """ "replaces a hand edit" (or "deletes", "would replace", ...) when the change overwrites a
    file whose content is not what boxsmith wrote; "" otherwise."""
    if not change.hand_edit:
        return ""
    verb = "replace" if change.action is Action.UPDATE else "delete"
    return f"would {verb} a hand edit" if dry_run else f"{verb}s a hand edit"


def warning(change: Change, dry_run: bool = False) -> str:
    """The warning a change deserves (a hand edit replaced, a foreign file left), or ""."""
    if change.action is Action.FOREIGN:
        return "not written by boxsmith (not in index.json): left in place; remove it by hand"
    if change.hand_edit:
        return (
            f"{hand_edit(change, dry_run)} (the file differs from what boxsmith wrote); "
            "change the spec instead"
        )
    return ""


def report_json(report: RenderReport, prefix: str) -> dict[str, object]:
    """The report as a JSON-ready mapping."""
    return {
        "applied": report.applied,
        "counts": report.counts,
        "files": [
            {"action": c.action.value, "path": f"{prefix}{c.rel}", "hand_edit": c.hand_edit}
            for c in report.changes
        ],
        "templates": [
            {"name": r.template.name, "version": r.template.version, "content_hash": r.content_hash}
            for r in report.generation.rendered
        ],
    }


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    dry_run: bool = False,
    as_json: bool = False,
    quiet: bool = False,
) -> int:
    """Render the selected templates; with `dry_run`, show what would change. A render that
    writes holds the project lock (`boxsmith._internal.lock`)."""
    with contextlib.nullcontext() if dry_run else hold(settings, "render", err=err):
        report = render_project(settings, names, labels, dry_run=dry_run)
        # the stamp says "generated/ matches the specs": not while a foreign file or an edited
        # published version remains, which render leaves for a person to deal with
        left = report.tampered or report.counts.get(Action.FOREIGN.value)
        if not dry_run and not names and not labels and not left:
            stamp.save(
                settings,
                inputs(report.generation.catalog),
                {"templates": len(report.generation.rendered), "files": len(report.changes)},
            )
    prefix = settings.display(settings.generated_dir) + "/"
    for folder, problem in report.tampered:  # render cannot restore it: no spec renders it
        err.write(f"warning: {folder}: {problem}; restore it from git\n")
    if as_json:
        json.dump(report_json(report, prefix), out, indent=2)
        out.write("\n")
        return EXIT_OK
    verb = "would " if dry_run else ""
    for change in report.changes:
        if quiet and change.action is Action.IDENTICAL:
            continue
        flag = f" ({hand_edit(change)})" if change.hand_edit else ""
        out.write(f"{verb}{change.action.value:<9} {prefix}{change.rel}{flag}\n")
        if dry_run and change.action is Action.UPDATE:
            out.write(unified_diff(change, prefix))
    for change in report.changes:
        if text := warning(change, dry_run):
            err.write(f"warning: {prefix}{change.rel}: {text}\n")
    counts = ", ".join(f"{n} {a}" for a, n in report.counts.items() if n)
    err.write(
        f"{len(report.generation.rendered)} template(s) rendered"
        f"{' (dry run, nothing written)' if dry_run else ''}: {counts or 'nothing to do'}\n"
    )
    return EXIT_OK
