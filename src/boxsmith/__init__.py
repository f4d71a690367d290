"""boxsmith: E2B sandbox templates as code.

The pipeline: spec -> validate -> render -> lint -> build -> publish -> smoke. This package's
public surface is `__all__` here and `boxsmith.sandbox`, guarded by tests/test_public_api.py;
everything under `boxsmith._internal` may change without notice. The stage entry points are
imported on first use: the spec models and Jinja take about 200 ms to import, and every CLI
command imports this package, including a no-change `boxsmith check` that never needs them.

Everything here runs on the base install (`pip install boxsmith`: pyyaml, pydantic, jinja2,
tomlkit); `boxsmith.sandbox` needs the `e2b` extra (`pip install 'boxsmith[e2b]'`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the package's version too (pyproject.toml reads it from here)

_EXPORTS = {
    "BoxsmithError": "boxsmith.errors",
    "Issue": "boxsmith.errors",
    "SpecError": "boxsmith.errors",
    "UsageError": "boxsmith.errors",
    "Settings": "boxsmith.config",
    "load_settings": "boxsmith.config",
    "check_project": "boxsmith._internal.render.pipeline",
    "generate": "boxsmith._internal.render.pipeline",
    "render_project": "boxsmith._internal.render.pipeline",
    "Catalog": "boxsmith._internal.spec.catalog",
    "Template": "boxsmith._internal.spec.catalog",
    "load_catalog": "boxsmith._internal.spec.catalog",
    "TemplateSpec": "boxsmith._internal.spec.models",
}

__all__ = [
    "BoxsmithError",
    "Catalog",
    "Issue",
    "Settings",
    "SpecError",
    "Template",
    "TemplateSpec",
    "UsageError",
    "__version__",
    "check_project",
    "generate",
    "load_catalog",
    "load_settings",
    "render_project",
]

if TYPE_CHECKING:
    from boxsmith._internal.render.pipeline import check_project as check_project
    from boxsmith._internal.render.pipeline import generate as generate
    from boxsmith._internal.render.pipeline import render_project as render_project
    from boxsmith._internal.spec.catalog import Catalog as Catalog
    from boxsmith._internal.spec.catalog import Template as Template
    from boxsmith._internal.spec.catalog import load_catalog as load_catalog
    from boxsmith._internal.spec.models import TemplateSpec as TemplateSpec
    from boxsmith.config import Settings as Settings
    from boxsmith.config import load_settings as load_settings
    from boxsmith.errors import BoxsmithError as BoxsmithError
    from boxsmith.errors import Issue as Issue
    from boxsmith.errors import SpecError as SpecError
    from boxsmith.errors import UsageError as UsageError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'boxsmith' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
