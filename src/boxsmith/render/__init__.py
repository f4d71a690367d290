"""Render stage: a validated template becomes e2b.toml + e2b.Dockerfile + its copied files."""

from boxsmith.render.engine import Rendered, RenderedFile, render_template, stamp_publish

__all__ = ["Rendered", "RenderedFile", "render_template", "stamp_publish"]
