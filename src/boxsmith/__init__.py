"""boxsmith: E2B sandbox templates as code.

The pipeline: spec -> validate -> render -> lint -> build -> publish -> smoke. This package's
public surface is listed in `__all__` and guarded by tests/test_public_api.py.
"""

from __future__ import annotations

__version__ = "0.1.0"

from boxsmith.config import Settings, load_settings
from boxsmith.errors import BoxsmithError, Issue, SpecError, UsageError
from boxsmith.pipeline import check_project, generate, render_project
from boxsmith.spec.catalog import Catalog, Template, load_catalog
from boxsmith.spec.models import TemplateSpec

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
