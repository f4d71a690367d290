"""Turn pydantic validation errors into located issues with a fix for each.

The error's `loc` is walked through the located YAML tree (`located.locate`) to find the file,
line and column; unknown keys get "did you mean ...?" from the fields valid at that place.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from boxsmith._internal.spec.fields import LINE_BREAKS
from boxsmith._internal.spec.located import Pos, locate
from boxsmith.errors import Issue

__all__ = ["field_names_at", "issue_at", "issues_from_validation", "suggest"]

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def issue_at(where: Pos, message: str, hint: str, path: str = "") -> Issue:
    """An issue at the spec position `where`, about the key `path`."""
    return Issue(where.file, where.line, where.column, message, hint, path)


# Words other tools use for a key of ours, which spelling alone would match to another key
# (`apt_packages` is closest to `pip_packages`).
_SYNONYMS = {
    "apt_packages": "system_packages",
    "apt": "system_packages",
    "packages": "system_packages",
    "python_packages": "pip_packages",
    "pip": "pip_packages",
    "node_packages": "npm_packages",
    "npm": "npm_packages",
}


def suggest(word: str, choices: Iterable[str]) -> str:
    """`did you mean 'x'?` for the closest choice (or the key another tool's word means), or an
    empty string."""
    options = sorted(set(choices))
    meant = _SYNONYMS.get(word.lower())
    if meant in options:
        return f"did you mean {meant!r}?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold, looking through lists, dicts and unions."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
        return found
    return []


def field_names_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Keys (aliases where set) valid in the mapping that holds `loc`'s last element."""
    models = [root]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for model in models:
            for name, info in model.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_models_in(info.annotation))
        if nxt:
            models = nxt
        else:  # a union tag such as "port-check": keep the member whose tag matches
            tagged = [m for m in _all_members(models) if part == f"{getattr(m, 'kind', '')}-check"]
            models = tagged or models
    names: list[str] = []
    for model in models:
        names.extend(info.alias or name for name, info in model.model_fields.items())
    return names


def _all_members(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    for model in models:
        out.append(model)
        out.extend(model.__subclasses__())
    return out


def _dotted(loc: Sequence[str | int], data: Any) -> str:
    """A readable key path: steps[2].run.cmd, without pydantic's union tags."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(node, dict) and part in node:
            if LINE_BREAKS.search(part):  # a key that would break the error line: quoted
                out += f"[{part!r}]"
            else:
                out += f".{part}" if out else part
            node = node[part]
        elif node is None or not isinstance(node, dict):
            out += f".{part}" if out else part
    return out


def issues_from_validation(
    exc: ValidationError,
    data: Any,
    model: type[BaseModel],
    *,
    fallback: Pos,
    extra_keys: Sequence[str] = (),
    context: str = "",
) -> list[Issue]:
    """One issue per pydantic error, located in the YAML tree `data`."""
    issues = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        etype = error["type"]
        is_extra = etype == "extra_forbidden"
        if loc and loc[-1] == "[key]":  # an invalid mapping key: point at the key itself
            loc, is_extra = loc[:-1], True
        where = locate(data, loc, key=is_extra) or fallback
        path = _dotted(loc, data)
        message, hint = _explain(error, loc, model, extra_keys if len(loc) == 1 else ())
        if context:
            message = f"{message} ({context})"
        issues.append(Issue(where.file, where.line, where.column, message, hint, path))
    return issues


def _explain(
    error: Any, loc: tuple[str | int, ...], model: type[BaseModel], extra_keys: Sequence[str]
) -> tuple[str, str]:
    etype = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if etype == "boxsmith":
        return str(error["msg"]), str(ctx.get("hint", ""))
    if etype == "extra_forbidden":
        key = str(loc[-1])
        valid = [*field_names_at(model, loc), *extra_keys]
        hint = suggest(key, valid) or f"remove it; valid keys here: {', '.join(sorted(valid))}"
        return f"unknown key {key!r}", hint
    if etype == "missing":
        key = str(loc[-1])
        return f"required key {key!r} is missing", f"add `{key}:` here"
    if etype in _TYPE_WORDS:
        shown = (
            "a mapping"
            if isinstance(got, dict)
            else "a list"
            if isinstance(got, list)
            else repr(got)
        )
        return f"expected {_TYPE_WORDS[etype]}, got {shown}", f"write {_TYPE_WORDS[etype]} here"
    if etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{error['msg'].lower()}, got {got!r}", "change the value to fit the limit"
    return str(error["msg"]), "see the spec reference in docs/spec.md"
