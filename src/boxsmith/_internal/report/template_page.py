"""One template's page: versions with their publish records and charts of build time and image
size, smoke checks with their latest results (and page-check screenshots), the smoke runs over
time, lint findings, and the spec and rendered files highlighted."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from boxsmith._internal.report.catalog import state, when
from boxsmith._internal.report.charts import bar_chart, megabytes, seconds
from boxsmith._internal.report.data import TemplateView
from boxsmith._internal.report.highlight import highlight
from boxsmith._internal.report.layout import esc, page

__all__ = ["template_page"]

Shots = Callable[[str, Path], str | None]
"""Copy a screenshot (as the report names it, the report file) into the site: its site path."""
_RUNS_SHOWN = 20


def template_page(view: TemplateView, lint_note: str, shots: Shots) -> str:
    """t/<name>.html."""
    spec = view.template.spec
    labels = "".join(
        f'<span class="label">{esc(k)}={esc(v)}</span>' for k, v in spec.labels.items()
    )
    body = (
        f'<header><p><a href="../index.html">&larr; catalog</a></p>'
        f"<h1>{esc(spec.name)} <small>{esc(spec.version)}</small></h1>"
        f"<p>{esc(spec.description)}</p><div>{labels}</div>"
        f"<p>base image <code>{esc(spec.base_image)}</code>, {spec.resources.cpu_count} vCPU, "
        f"{spec.resources.memory_mb} MiB; spec {esc(view.template.spec_file)}</p></header>\n"
        "<main>\n"
        + _versions(view)
        + _smoke(view, shots)
        + _runs(view.runs)
        + _lint(view.lint, lint_note)
        + _sources(view.sources)
        + "</main>"
    )
    return page(f"{spec.name} {spec.version}", body, depth=1)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of HTML cells (already escaped), in a box that scrolls on a narrow screen."""
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead>{body}</table></div>\n'


def _versions(view: TemplateView) -> str:
    rows = []
    for version, publishes, build in view.versions:
        records = "<br>".join(
            f"{esc(p.get('target'))} {when(p.get('published_at'))} build "
            f"<code>{esc(p.get('build_id'))}</code>"
            + (f" verified {when(p.get('verified_at'))}" if p.get("verified_at") else "")
            for p in publishes
        )
        built = (
            f"{seconds(float(build['seconds']))}, {megabytes(float(build['size']))}, "
            f"{when(build.get('at'))}"
            if build
            else "-"
        )
        rows.append((esc(version), built, records or "not published"))
    oldest = [(v, b) for v, _, b in reversed(view.versions) if b]
    charts = ""
    if oldest:
        time_chart = bar_chart(
            "build time per version", [(v, float(b["seconds"])) for v, b in oldest], seconds
        )
        size_chart = bar_chart(
            "image size per version", [(v, float(b["size"])) for v, b in oldest], megabytes
        )
        charts = (
            f'<div class="charts"><figure>{time_chart}<figcaption>build time per version'
            f"</figcaption></figure><figure>{size_chart}<figcaption>image size per version"
            "</figcaption></figure></div>\n"
        )
    else:
        charts = "<p>No build of it recorded on this machine yet (<code>boxsmith build</code>).</p>"
    head = ("version", "last local build (time, size, when)", "publish records")
    return "<h2>Versions</h2>\n" + _table(head, rows) + charts


def _smoke(view: TemplateView, shots: Shots) -> str:
    out = ["<h2>Smoke checks</h2>\n"]
    if view.declared:
        out.append("<p>Declared: " + ", ".join(f"<code>{esc(n)}</code>" for n in view.declared))
        out.append("</p>\n")
    if not view.smoke:
        out.append("<p>No smoke result yet (<code>boxsmith smoke</code>).</p>\n")
    for kind, result, checks in view.smoke:
        out.append(
            f"<h3>{esc(kind)}: {state(result['status'])} {when(result.get('finished_at'))}</h3>\n"
        )
        rows = [
            (esc(c.get("name")), esc(c.get("kind")), state(str(c.get("status"))),
             esc(c.get("expected")), esc(c.get("actual")))
            for c in checks
        ]  # fmt: skip
        out.append(_table(("check", "kind", "result", "expected", "got"), rows) if rows else "")
        for check in checks:
            if check.get("screenshot"):
                src = shots(str(check["screenshot"]), Path(str(check.get("_report", ""))))
                if src:
                    out.append(
                        f'<figure><img class="shot" src="../{esc(src)}" alt="screenshot of '
                        f'{esc(check.get("name"))}"><figcaption>{esc(check.get("name"))}'
                        "</figcaption></figure>\n"
                    )
    return "".join(out)


def _runs(runs: Sequence[Mapping[str, Any]]) -> str:
    if not runs:
        return ""
    rows = [
        (when(r.get("at")), esc(r.get("version")), esc(r.get("run") or r.get("target")),
         state(str(r.get("status"))),
         esc(", ".join(f"{c.get('name')} {c.get('status')}" for c in r.get("checks", []))))
        for r in runs[:_RUNS_SHOWN]
    ]  # fmt: skip
    head = ("when", "version", "run", "result", "checks")
    return "<h2>Smoke runs over time</h2>\n" + _table(head, rows)


def _lint(findings: Sequence[Mapping[str, Any]] | None, note: str) -> str:
    if findings is None:
        return f"<h2>Lint</h2>\n<p>{esc(note or 'not run')}</p>\n"
    if not findings:
        return "<h2>Lint</h2>\n<p>No findings.</p>\n"
    rows = []
    for f in findings:
        where = f.get("spec") or f.get("generated") or {}
        place = (
            f"{where.get('file', '')}:{where.get('line', '')}" if isinstance(where, dict) else ""
        )
        rows.append((esc(f.get("level")), esc(f.get("code")), esc(f.get("message")), esc(place)))
    return "<h2>Lint</h2>\n" + _table(("level", "code", "message", "where"), rows)


def _sources(sources: Sequence[tuple[str, str, str]]) -> str:
    parts = ["<h2>Spec and rendered files</h2>\n"]
    for title, language, text in sources:
        parts.append(
            f"<h3>{esc(title)}</h3>\n<pre><code>{highlight(text, language)}</code></pre>\n"
        )
    return "".join(parts)
