"""`vars:` and `matrix:`: expand one resolved spec into its concrete variants.

Every string value in a spec may use `{{ vars.NAME }}` and `{{ matrix.AXIS }}` (full Jinja
expressions and filters, sandboxed). A `matrix` maps axis names to lists of values; each
combination (minus those listed under `exclude`) becomes one template, and the rendered names must
differ.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import jinja2

from boxsmith._internal.spec.diagnostics import issue_at, suggest
from boxsmith._internal.spec.jinja_env import render_string
from boxsmith._internal.spec.jinja_limits import MAX_VALUE_CHARS, LimitError, text_size
from boxsmith._internal.spec.located import LDict, LList, Pos
from boxsmith.errors import Issue

__all__ = ["MAX_VARIANTS", "Variant", "expand"]

MAX_VARIANTS = 256
LIMITS_HINT = "make the expression smaller; docs/spec.md lists the limits under Limits"
_REF = re.compile(r"\b(vars|matrix)\.([A-Za-z_][A-Za-z0-9_]*)")
_AXIS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `{{ vars.x }}` / `{{ matrix.y }}` with nothing else: substituted without compiling a Jinja
# template (compiling costs ~1 ms per distinct string; output is identical to Jinja's).
_SIMPLE = re.compile(r"\{\{\s*(vars|matrix)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# (matrix values, substituted spec, key paths whose {{ }} could not be resolved)
Variant = tuple[dict[str, Any], LDict, frozenset[str]]


class _Substituter:
    """Renders template strings with one context, collecting issues instead of raising."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context
        self.issues: list[Issue] = []
        self.failed: set[str] = set()
        self.texts: dict[tuple[str, str], str] = {}

    def string(self, value: str, where: Pos, path: str) -> str:
        if "{{" not in value and "{%" not in value:
            return value
        for scope, name in _REF.findall(value):
            known = self.context.get(scope) or {}
            if name not in known:
                hint = suggest(name, known) or (
                    f"define it under `{scope}:`"
                    if known or scope == "vars"
                    else "this spec has no matrix"
                )
                what = scope[:-1] if scope == "vars" else scope
                self._fail(where, path, f"undefined {what} {name!r}", hint)
                return value
        if "{%" not in value and value.count("{{") == len(_SIMPLE.findall(value)):
            return self._simple(value, where, path)
        return self._rendered(value, where, path)

    def _rendered(self, value: str, where: Pos, path: str) -> str:
        """`value` rendered by Jinja within the limits; as it is after an error (reported)."""
        try:
            return render_string(value, self.context)
        except LimitError as exc:
            self._fail(where, path, f"template: {exc}", LIMITS_HINT)
        except jinja2.TemplateSyntaxError as exc:
            self._fail(
                where,
                path,
                f"template syntax: {exc.message}",
                "fix the {{ }} expression; write {{ '{{' }} for a literal {{",
            )
        except Exception as exc:
            what = (
                str(exc)
                if isinstance(exc, jinja2.TemplateError)
                else f"{type(exc).__name__}: {exc}"
            )
            self._fail(where, path, f"template: {what}", "fix the {{ }} expression")
        return value

    def _simple(self, value: str, where: Pos, path: str) -> str:
        """`{{ vars.x }}` substitutions without Jinja, as long as the result stays in bounds
        (vars made of other vars could double at each level)."""
        size = len(value)
        for match in _SIMPLE.finditer(value):
            # sized before it is made text: a list of aliases to one long string is small in
            # memory and huge as text
            size += text_size(self.context[match[1]][match[2]], MAX_VALUE_CHARS)
            if size > MAX_VALUE_CHARS:
                self._fail(
                    where,
                    path,
                    f"template: the value would be more than {MAX_VALUE_CHARS} characters long",
                    LIMITS_HINT,
                )
                return value
        return _SIMPLE.sub(lambda m: self._text(m[1], m[2]), value)

    def _text(self, scope: str, name: str) -> str:
        """A var or matrix value as text, made once (a big list would cost at every use)."""
        key = (scope, name)
        if key not in self.texts:
            self.texts[key] = str(self.context[scope][name])
        return self.texts[key]

    def _fail(self, where: Pos, path: str, message: str, hint: str) -> None:
        self.failed.add(path)
        self.issues.append(issue_at(where, message, hint, path))

    def tree(self, node: Any, where: Pos, path: str) -> Any:
        """Substitute every string under `node`; unchanged containers are returned as they are
        (most of a spec has no {{ }}, and copying it would dominate the cost)."""
        if isinstance(node, str):
            return self.string(node, where, path)
        if isinstance(node, LDict):
            changed: dict[str, Any] = {}
            for key, value in node.items():
                if isinstance(value, str) and "{" not in value:
                    continue
                new = self.tree(value, node.val_pos[key], f"{path}.{key}" if path else key)
                if new is not value:
                    changed[key] = new
            if not changed:
                return node
            out = LDict(node.pos)
            for key, value in node.items():
                out.put(key, changed.get(key, value), node.key_pos[key], node.val_pos[key])
            return out
        if isinstance(node, LList):
            items = [
                self.tree(value, at, f"{path}[{i}]")
                if not isinstance(value, str) or "{" in value
                else value
                for i, (value, at) in enumerate(zip(node, node.item_pos, strict=True))
            ]
            if all(new is old for new, old in zip(items, node, strict=True)):
                return node
            return LList(node.pos, zip(items, node.item_pos, strict=True))
        return node


def _check_axes(matrix: LDict, axes: list[str], issues: list[Issue]) -> None:
    for axis in axes:
        if not _AXIS.match(axis):
            issues.append(
                issue_at(
                    matrix.key_pos[axis],
                    f"matrix axis {axis!r} is not an identifier",
                    "use letters, digits and _",
                    f"matrix.{axis}",
                )
            )
        values = matrix[axis]
        if not isinstance(values, list) or not values:
            issues.append(
                issue_at(
                    matrix.val_pos[axis],
                    f"matrix axis {axis!r} needs a non-empty list of values",
                    f"write `{axis}: [a, b]`",
                    f"matrix.{axis}",
                )
            )
    if not axes:
        issues.append(
            issue_at(
                matrix.pos,
                "matrix has no axes",
                "add an axis, e.g. `python: ['3.11', '3.12']`",
                "matrix",
            )
        )


def _exclude(matrix: LDict, axes: list[str], issues: list[Issue]) -> list[Any] | None:
    """The `exclude` rules, or None (and an issue) when they are not a list of mappings."""
    exclude = matrix.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
        issues.append(
            issue_at(
                matrix.val_pos["exclude"],
                "matrix.exclude must be a list of mappings",
                "write `exclude: [{axis: value}]`",
                "matrix.exclude",
            )
        )
        return None
    for rule, at in exclude.entries() if isinstance(exclude, LList) else []:
        unknown = [k for k in rule if k not in axes]
        if unknown:
            issues.append(
                issue_at(
                    at,
                    f"matrix.exclude names unknown axis {unknown[0]!r}",
                    suggest(unknown[0], axes) or f"axes: {', '.join(axes)}",
                    "matrix.exclude",
                )
            )
    return exclude


def _combinations(matrix: LDict, issues: list[Issue]) -> list[dict[str, Any]]:
    axes = [key for key in matrix if key != "exclude"]
    known = len(issues)  # the list also holds earlier files' issues
    _check_axes(matrix, axes, issues)
    if len(issues) > known:
        return []
    exclude = _exclude(matrix, axes, issues)
    if exclude is None:
        return []
    combos = [
        dict(zip(axes, values, strict=True))
        for values in itertools.product(*(matrix[a] for a in axes))
    ]
    combos = [
        c
        for c in combos
        if not any(all(c.get(k) == v for k, v in rule.items()) for rule in exclude)
    ]
    if not combos or len(combos) > MAX_VARIANTS:
        issues.append(
            issue_at(
                matrix.pos,
                f"matrix gives {len(combos)} variants (1 to {MAX_VARIANTS} allowed)",
                "adjust the axes or exclude",
                "matrix",
            )
        )
        return []
    return combos


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def expand(merged: LDict, matrix: LDict | None, issues: list[Issue]) -> Iterator[Variant]:
    """Yield (matrix values, substituted spec) for each variant; problems go to `issues`."""
    variables = merged.get("vars", {})
    if not isinstance(variables, dict):
        issues.append(
            issue_at(
                merged.val_pos["vars"],
                "vars must be a mapping",
                "write `vars: {name: value}`",
                "vars",
            )
        )
        return
    body = LDict(merged.pos)
    for key in merged:
        if key != "vars":
            body.copy_entry(merged, key)
    order = _var_order(variables, issues)
    if order is None:
        return
    combos = _combinations(matrix, issues) if matrix is not None else [{}]
    for combo in combos:
        resolved = _plain(variables)
        sub = _Substituter({"vars": resolved, "matrix": _plain(combo)})
        for name in order:  # a var may use the vars before it in this order, and the matrix
            at = variables.val_pos[name] if isinstance(variables, LDict) else body.pos
            resolved[name] = _plain(sub.tree(variables[name], at, f"vars.{name}"))
        sub.texts.clear()
        result = sub.tree(body, body.pos, "")
        issues.extend(sub.issues)
        yield combo, result, frozenset(sub.failed)


# `vars.name` or `vars['name']` in a var's own value: the vars it needs first
_USES = re.compile(r"\bvars(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


def _strings(node: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every string under `node`, each object once: YAML aliases share one object, and a list
    of a thousand aliases to one long string must not be scanned a thousand times."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value, seen)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, seen)


def _var_order(variables: dict[str, Any], issues: list[Issue]) -> list[str] | None:
    """Names of the vars that use other vars, each after the vars it uses; None (and an issue)
    for a cycle."""
    uses = {
        name: {a or b for text in _strings(value) for a, b in _USES.findall(text)} & set(variables)
        for name, value in variables.items()
        if any("{{" in text or "{%" in text for text in _strings(value))
    }
    order: list[str] = []
    state: dict[str, str] = {}  # "open" while its uses are being ordered, then "done"

    def visit(name: str, chain: tuple[str, ...]) -> bool:
        if state.get(name) == "done" or name not in uses:
            return True
        if state.get(name) == "open":
            cycle = " -> ".join([*chain[chain.index(name) :], name])
            at = variables.val_pos[name] if isinstance(variables, LDict) else Pos("", 0, 0)
            issues.append(
                issue_at(
                    at,
                    f"vars cycle: {cycle}",
                    "remove one of the references, or write one value out",
                    f"vars.{name}",
                )
            )
            return False
        state[name] = "open"
        ok = all(visit(used, (*chain, name)) for used in sorted(uses[name]))
        state[name] = "done"
        order.append(name)
        return ok

    return order if all(visit(name, ()) for name in uses) else None
