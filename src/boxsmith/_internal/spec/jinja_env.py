"""The Jinja environment spec strings render in (`render_string`): sandboxed and bounded.

Sandboxed: an immutable sandbox, so expressions cannot reach Python internals or change the values
they are given. StrictUndefined: a typo is an error, never an empty string. Bounded: every loop,
call, filter, operator, `~` and piece of output goes through a check of `spec.jinja_limits`, so an
expression ends at once with `LimitError` instead of taking minutes of CPU or gigabytes. Loops,
`~` and output are routed through the checks by rewriting the parsed template; calls, filters and
operators by the environment itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from boxsmith._internal.spec.jinja_limits import (
    LimitError,
    budgeted,
    charge,
    check_filter,
    check_method,
    check_operator,
    count_output,
    made,
    measured,
)

__all__ = ["render_string"]


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with a step charged, its risky arguments checked first and its result after."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        charge()
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        if name == "join" and value is not None:
            value = list(value)  # an iterator: its items are measured too
            args = (*args[:skip], value, *rest)
        measured((value, rest, kwargs), f"the {name} filter")
        check_filter(name, value, rest, kwargs)
        return made(func(*args, **kwargs), f"the {name} filter")

    return bounded


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: one step per item."""
    for item in iterable:
        charge()
        yield item


def _output(value: Any) -> str:
    """Every piece of output goes through this: the characters written count in all, so
    output captured by a macro or a `{% set %}` block (joined later) is bounded too."""
    measured(value, "the output")  # before making its text
    text = str(value)
    count_output(len(text))
    return text


def _concat(*parts: Any) -> str:
    """`a ~ b`, with the result's length checked."""
    charge()
    measured(parts, "the ~ concatenation")  # before making their text
    return str(made("".join(str(part) for part in parts), "the ~ concatenation"))


_HOOKS = (_loop, _concat, _output)


def _expr(node: nodes.Expr) -> nodes.Expr:
    return nodes.Const(node.data) if isinstance(node, nodes.TemplateData) else node


class _Rewrite(NodeTransformer):
    """Route loops, `~` and output through `_loop`, `_concat` and `_output`, where they count
    and are checked."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env

    def _call(self, name: str, args: list[nodes.Expr], like: nodes.Node) -> nodes.Call:
        call = nodes.Call(nodes.Name(name, "load"), args, [], None, None)
        call.set_lineno(like.lineno).set_environment(self.env)
        return call

    def visit_Name(self, node: nodes.Name) -> nodes.Name:
        if node.name.startswith("_bx_"):
            raise jinja2.TemplateSyntaxError("names starting with _bx_ are reserved", node.lineno)
        return node

    def visit_For(self, node: nodes.For) -> nodes.For:
        if node.recursive:
            raise jinja2.TemplateSyntaxError(
                "recursive loops are not available in spec values", node.lineno
            )
        self.generic_visit(node)
        node.iter = self._call("_bx_loop", [node.iter], node)  # type: ignore[list-item]
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Output:
        self.generic_visit(node)
        node.nodes = [self._call("_bx_output", [_expr(c)], c) for c in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        return self._call("_bx_concat", list(node.nodes), node)


class _SpecEnvironment(ImmutableSandboxedEnvironment):
    """The environment of spec strings: an immutable sandbox whose calls, filters and operators
    are bounded by the checks of `jinja_limits`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        charge()
        measured((left, right), f"the {operator} operator")
        check_operator(left, right, operator)
        return made(super().call_binop(context, operator, left, right), f"the {operator} operator")

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        charge()
        if any(__obj is hook for hook in _HOOKS):  # they measure what they take themselves
            return super().call(__context, __obj, *args, **kwargs)
        measured((args, kwargs), "the call")
        args = check_method(__obj, args, kwargs)
        return made(super().call(__context, __obj, *args, **kwargs), "the call")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None

        def refused(*args: Any, **kwargs: Any) -> str:
            raise LimitError("str.format is not available in spec values; use ~ or | format")

        return refused


@functools.cache
def _spec_environment() -> _SpecEnvironment:
    env = _SpecEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals.pop("lipsum", None)  # random text: rendering must be reproducible
    env.filters.pop("random", None)  # likewise a random pick
    env.globals["_bx_loop"] = _loop
    env.globals["_bx_concat"] = _concat
    env.globals["_bx_output"] = _output
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    return env


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> jinja2.Template:
    """Compile (once) a template string taken from a spec."""
    env = _spec_environment()
    tree = _Rewrite(env).visit(env.parse(source))
    return env.from_string(tree)


def render_string(source: str, context: dict[str, Any]) -> str:
    """Render a spec string within the limits.

    Raises:
        LimitError: a limit was reached.
        jinja2.TemplateError: any other template problem (syntax, undefined names).
    """
    template = _compile(source)
    with budgeted():
        return template.render(context)
