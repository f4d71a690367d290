"""The site's front page: one card per template with its status at a glance, and the filter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boxsmith._internal.report.data import Site, TemplateView
from boxsmith._internal.report.layout import esc, page

__all__ = ["catalog_page", "page_name", "state", "when"]

_GOOD = {"rendered", "up to date", "passed", "verified", "ok"}
_BAD = {"drift", "failed", "error", "gone", "stale"}


def page_name(view: TemplateView) -> str:
    """The template page's path in the site (E2B names are [a-z0-9-]: safe as file names)."""
    return f"t/{view.template.name}.html"


def state(text: str) -> str:
    """A status word, coloured by what it means."""
    tone = "ok" if text in _GOOD else "bad" if text in _BAD else "warn"
    return f'<span class="state {tone}">{esc(text)}</span>'


def when(iso: object) -> str:
    """An ISO time shown to the minute, UTC (`2026-12-07 07:15Z`); `-` when unknown."""
    if not isinstance(iso, str) or len(iso) < 16:
        return "-"
    return f'<time datetime="{esc(iso)}">{esc(iso[:10])} {esc(iso[11:16])}Z</time>'


def catalog_page(site: Site) -> str:
    """index.html."""
    cards = "\n".join(_card(view) for view in site.templates)
    notes = f"<p>{esc(site.notes.strip())}</p>" if site.notes.strip() else ""
    body = (
        "<header><h1>Template catalog</h1>"
        f"<p>{len(site.templates)} template(s) of the project {esc(site.project)}, as this "
        "machine knows them: rendered files, local builds, publish records, channel tags and "
        "smoke results.</p>"
        f"{notes}</header>\n<main>\n"
        '<form class="filter" role="search" hidden onsubmit="return false">'
        '<label for="filter">Filter by name or label </label>'
        '<input id="filter" type="search" placeholder="name or label, e.g. runtime=python" '
        'autocomplete="off"></form>\n'
        f'<div class="cards">\n{cards}\n</div>\n</main>\n'
        "<footer>Written by <code>boxsmith report</code>.</footer>"
    )
    return page("Template catalog", body, script=True)


def _card(view: TemplateView) -> str:
    spec, row = view.template.spec, view.row
    labels = "".join(
        f'<span class="label">{esc(k)}={esc(v)}</span>' for k, v in spec.labels.items()
    )
    search = " ".join([spec.name, *(f"{k}={v} {k} {v}" for k, v in spec.labels.items())])
    facts = [
        ("base image", f"<code>{esc(spec.base_image)}</code>"),
        (
            "resources",
            f"{spec.resources.cpu_count} vCPU, {spec.resources.memory_mb} MiB",
        ),
        ("generated", state(row["generated"]["status"])),
        ("built", _build(row["build"])),
        ("published", _published(row["publishes"])),
        ("channels", _channels(row["channels"])),
        ("smoke", _smoke(row["smoke"])),
    ]
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return (
        f'<article class="card" data-search="{esc(search.lower())}">'
        f'<h2><a href="{esc(page_name(view))}">{esc(spec.name)}</a> '
        f"<small>{esc(spec.version)}</small></h2>"
        f"<p>{esc(spec.description)}</p><div>{labels}</div>"
        f'<dl class="facts">{dl}</dl></article>'
    )


def _build(build: Mapping[str, Any]) -> str:
    text = state(build["status"])
    if "size" in build:
        text += f", {build['size'] / 1e6:,.0f} MB, {when(build.get('created'))}"
    return text


def _published(publishes: list[Mapping[str, Any]]) -> str:
    latest = {p["target"]: p for p in publishes}  # oldest first: the last one wins
    if not latest:
        return "-"
    parts = []
    for target in sorted(latest):
        record = latest[target]
        word = (
            "gone"
            if record.get("live") is False
            else "verified"
            if record.get("verified_at")
            else "unverified"
        )
        parts.append(f"{esc(target)} {state(word)} {when(record.get('published_at'))}")
    return "<br>".join(parts)


def _channels(channels: Mapping[str, Mapping[str, str]]) -> str:
    parts = [
        f"{esc(target)}: " + ", ".join(f"{esc(t)}={esc(v)}" for t, v in tags.items())
        for target, tags in channels.items()
        if tags
    ]
    return "<br>".join(parts) or "-"


def _smoke(smoke: Mapping[str, Mapping[str, Any] | None]) -> str:
    parts = [
        f"{esc(kind)} {state(result['status'])} {when(result.get('finished_at'))}"
        for kind, result in smoke.items()
        if result
    ]
    return "<br>".join(parts) or "not run"
