"""The one Jinja environment boxsmith uses, for spec strings and for the output templates.

Sandboxed (spec authors' expressions cannot reach Python internals), StrictUndefined (a typo is an
error, never an empty string) and keep_trailing_newline (templates control every byte).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["compile_string", "environment"]


def _toml_value(value: Any) -> str:
    """A TOML literal for a string, integer or boolean.

    TOML basic strings take JSON's escapes for quotes, backslashes and control characters, but
    not its surrogate pairs (so non-ASCII stays literal) and they also forbid a raw DEL.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


@functools.cache
def environment() -> SandboxedEnvironment:
    """The shared, cached environment."""
    env = SandboxedEnvironment(
        loader=jinja2.PackageLoader("boxsmith", "render/templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["toml"] = _toml_value
    env.globals.pop("lipsum", None)  # random text: rendering must be reproducible
    return env


@functools.lru_cache(maxsize=4096)
def compile_string(source: str) -> jinja2.Template:
    """Compile (once) a template string taken from a spec."""
    return environment().from_string(source)
