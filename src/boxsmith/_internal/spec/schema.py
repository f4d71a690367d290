"""The JSON Schema for spec files, generated from the models (never written by hand).

A spec file holds a template's fields (all optional here, since abstract bases set only some)
plus `abstract`, `extends`, `vars` and `matrix`. Editors pick it up through the
`# yaml-language-server: $schema=...` line at the top of each spec.
"""

from __future__ import annotations

import json
from typing import Any, cast

from pydantic import Field, create_model

from boxsmith._internal.spec.models import TemplateSpec

__all__ = ["SCHEMA_ID", "schema_json", "spec_file_schema"]

SCHEMA_ID = "https://boxsmith.dev/schema/template-spec.json"


def spec_file_schema() -> dict[str, Any]:
    """The schema of one spec file as a dict."""
    fields: dict[str, Any] = {
        name: (cast(Any, info.annotation) | None, Field(None, description=info.description))
        for name, info in TemplateSpec.model_fields.items()
    }
    fields["abstract"] = (bool, Field(False, description="A base that only other specs extend."))
    fields["extends"] = (
        str | list[str] | None,
        Field(None, description="Base spec name(s), applied left to right."),
    )
    fields["vars"] = (
        dict[str, Any] | None,
        Field(None, description="Values for {{ vars.NAME }} in any string."),
    )
    fields["matrix"] = (
        dict[str, list[Any]] | None,
        Field(
            None,
            description="Axes of variants, used as {{ matrix.AXIS }}; `exclude` lists "
            "combinations to skip.",
        ),
    )
    model = create_model("SpecFile", __config__=TemplateSpec.model_config, **fields)
    schema: dict[str, Any] = _allow_templates(model.model_json_schema())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "boxsmith template spec"
    return schema


_TEMPLATED = {"type": "string", "pattern": "\\{\\{|\\{%", "description": "A {{ }} expression"}


def _allow_templates(node: Any) -> Any:
    """Numbers and booleans may also be written as `{{ vars.x }}` strings (resolved before
    validation), so editors must not flag them."""
    if isinstance(node, list):
        return [_allow_templates(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _allow_templates(value) for key, value in node.items()}
    if out.get("type") in ("integer", "number", "boolean"):
        typed = {k: v for k, v in out.items() if k not in ("default", "description", "title")}
        kept = {k: v for k, v in out.items() if k in ("default", "description", "title")}
        return {**kept, "anyOf": [typed, _TEMPLATED]}
    return out


def schema_json() -> str:
    """The schema as deterministic JSON text."""
    return json.dumps(spec_file_schema(), indent=2, sort_keys=True) + "\n"
