"""Render stage: a validated template becomes e2b.toml + e2b.Dockerfile + its copied files.

The names of the generated files are defined here, so modules that only need them (builds, smoke
tests) do not load Jinja and the spec models; everything else loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boxsmith.render.engine import Rendered, RenderedFile, render_template, stamp_publish

__all__ = ["DOCKERFILE", "TOML", "Rendered", "RenderedFile", "render_template", "stamp_publish"]

DOCKERFILE = "e2b.Dockerfile"
TOML = "e2b.toml"


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'boxsmith.render' has no attribute {name!r}")
    return getattr(importlib.import_module("boxsmith.render.engine"), name)
