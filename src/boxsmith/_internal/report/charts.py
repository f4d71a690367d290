"""Small inline SVG bar charts (one bar per version) for the template pages: no script, no
library; every label is HTML-escaped."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

__all__ = ["bar_chart", "megabytes", "seconds"]

_WIDTH, _HEIGHT, _TOP, _BOTTOM = 320, 140, 18, 22
_BAR_MAX = 48


def seconds(value: float) -> str:
    """`42 s`, `3.5 min`."""
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def megabytes(value: float) -> str:
    """An image size in MB."""
    return f"{value / 1e6:,.0f} MB"


def bar_chart(title: str, points: Sequence[tuple[str, float]], fmt: Callable[[float], str]) -> str:
    """An SVG with one bar per (label, value), oldest left, its value above it; `title` names
    it for screen readers. Empty when there are no points."""
    if not points:
        return ""
    top = max(value for _, value in points) or 1.0
    slot = _WIDTH / len(points)
    bar = min(_BAR_MAX, slot * 0.6)
    usable = _HEIGHT - _TOP - _BOTTOM
    shapes = []
    for number, (label, value) in enumerate(points):
        height = max(1.0, usable * value / top)
        x = slot * number + (slot - bar) / 2
        y = _TOP + usable - height
        middle = x + bar / 2
        shapes.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}">'
            f"<title>{html.escape(label)}: {html.escape(fmt(value))}</title></rect>"
            f'<text x="{middle:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{html.escape(fmt(value))}</text>"
            f'<text x="{middle:.1f}" y="{_HEIGHT - 6}" text-anchor="middle">'
            f"{html.escape(label)}</text>"
        )
    return (
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{html.escape(title)}</title>"
        f'<line class="axis" x1="0" y1="{_HEIGHT - _BOTTOM}" x2="{_WIDTH}" '
        f'y2="{_HEIGHT - _BOTTOM}"/>' + "".join(shapes) + "</svg>"
    )
