"""The Jinja environments boxsmith uses: one for its own output templates, one for spec strings.

Both are sandboxed (expressions cannot reach Python internals), StrictUndefined (a typo is an
error, never an empty string) and keep_trailing_newline (templates control every byte).

Spec strings are written by whoever edits a spec, so their environment is also bounded: an
expression ends at once with `LimitError` instead of taking minutes of CPU or gigabytes. Values
entering an operation are already bounded (by the spec file's size, or by these limits), so a
result that grows at most linearly is checked after the fact; what can grow faster (repetition,
powers, joins, replaces, padding widths, printf widths) is checked before it runs; loops, calls,
filters and operators count against a step budget, so nesting and recursion end too.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.visitor import NodeTransformer

__all__ = [
    "MAX_INT_BITS",
    "MAX_STEPS",
    "MAX_VALUE_CHARS",
    "LimitError",
    "environment",
    "render_string",
]

MAX_VALUE_CHARS = 100_000  # a rendered value, and any string or list made on the way
MAX_INT_BITS = 4096  # an integer made by * or ** (about 1200 decimal digits)
MAX_STEPS = 50_000  # loop iterations, calls, filters and operators in one value


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


_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _comment(value: Any) -> str:
    """`value` for a `#` comment line: line breaks and control characters escaped, so a spec
    file name or matrix value cannot end the comment and start an instruction."""
    return _BREAKS.sub(lambda m: repr(m[0])[1:-1], str(value))


@functools.cache
def environment() -> SandboxedEnvironment:
    """The shared, cached environment of boxsmith's own output templates."""
    env = SandboxedEnvironment(
        loader=jinja2.PackageLoader("boxsmith", "render/templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["toml"] = _toml_value
    env.filters["comment"] = _comment
    env.globals.pop("lipsum", None)  # random text: rendering must be reproducible
    env.filters.pop("random", None)  # likewise a random pick
    return env


class LimitError(SecurityError):
    """A spec expression went past one of the limits above."""


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.output = 0  # characters written anywhere: the value, macros, `{% set %}` blocks


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


def _charge() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.steps += 1
        if budget.steps > MAX_STEPS:
            raise LimitError(f"the expression takes more than {MAX_STEPS} steps")


def _sized(value: Any, what: str) -> Any:
    """`value` when its length is within the limit."""
    if isinstance(value, Sized) and len(value) > MAX_VALUE_CHARS:
        raise LimitError(
            f"{what} makes a value of {len(value)} characters or items (at most {MAX_VALUE_CHARS})"
        )
    return value


def _length(chars: int, what: str) -> None:
    """Refuse an operation that would make a value of `chars` characters or items."""
    if chars > MAX_VALUE_CHARS:
        raise LimitError(
            f"{what} would make a value of {chars} characters or items (at most {MAX_VALUE_CHARS})"
        )


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and abs(value) > MAX_VALUE_CHARS:
        raise LimitError(f"{what} with a width or count of {value} (at most {MAX_VALUE_CHARS})")


def _bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise LimitError(
            f"{what} would make an integer of about {bits} bits (at most {MAX_INT_BITS})"
        )


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _printf(template: str) -> None:
    """Refuse printf widths and precisions over the limit (`'%0999999999d' % 1`)."""
    for width, precision in _PRINTF.findall(template):
        for number in (width, precision):
            if number == "*":
                raise LimitError("a printf width or precision given as * is not available")
            if number:
                _width(int(number), "printf formatting")


def _grows(left: Any, right: Any, operator: str) -> None:
    """Check what `left operator right` would make before it is made."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        _bits(abs(left).bit_length() * right, f"{left} ** {right}")
    elif operator == "*" and ints:
        _bits(abs(left).bit_length() + abs(right).bit_length(), "the product")
    elif operator == "*" and isinstance(right, int) and isinstance(left, Sized):
        _length(len(left) * right, "the repetition")
    elif operator == "*" and isinstance(left, int) and isinstance(right, Sized):
        _length(len(right) * left, "the repetition")
    elif operator == "+" and isinstance(left, Sized) and isinstance(right, Sized):
        _length(len(left) + len(right), "the concatenation")
    elif operator == "%" and isinstance(left, str):
        _printf(left)


def _join_size(separator: Any, items: list[Any]) -> None:
    _length(len(str(separator)) * max(len(items) - 1, 0), "the join")


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _length(len(text) + hits * len(new), "the replace")


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice", "truncate"})


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Pre-checks for the str methods whose result can outgrow their inputs."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return args
    if name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            _width(value, f"str.{name}")
    elif name == "join" and args:
        items = list(args[0])
        _join_size(owner, items)
        return (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        _replace_size(owner, *args[:3])
    return args


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with a step charged, its risky arguments checked first and its result after."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _charge()
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        if name in _WIDTH_FILTERS:
            for arg in (*rest, *kwargs.values()):
                _width(arg, f"the {name} filter")
        elif name == "join" and value is not None:
            value = list(value)
            _join_size(rest[0] if rest else kwargs.get("d", ""), value)
            args = (*args[:skip], value, *rest)
        elif name == "replace" and len(rest) >= 2:
            _replace_size(value, *rest[:3])
        elif name == "format" and isinstance(value, str):
            _printf(value)
        elif name == "sum":  # adding lists or strings one by one takes quadratic time
            start = kwargs.get("start", rest[1] if len(rest) > 1 else 0)
            if not isinstance(start, int | float):
                raise LimitError("the sum filter adds numbers only (start must be a number)")
        return _sized(func(*args, **kwargs), f"the {name} filter")

    return bounded


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: one step per item."""
    for item in iterable:
        _charge()
        yield item


def _output(value: Any) -> str:
    """Every piece of output goes through this: the characters written count in all, so
    output captured by a macro or a `{% set %}` block (joined later) is bounded too."""
    text = str(value)
    budget = _BUDGET.get()
    if budget is not None:
        budget.output += len(text)
        _length(budget.output, "the output")
    return text


def _concat(*parts: Any) -> str:
    """`a ~ b`, with the result's length checked."""
    _charge()
    return str(_sized("".join(str(part) for part in parts), "the ~ concatenation"))


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
    """The environment of spec strings: immutable sandbox plus the bounds above."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        _charge()
        _grows(left, right, operator)
        return _sized(
            super().call_binop(context, operator, left, right), f"the {operator} operator"
        )

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        _charge()
        args = _check_method(__obj, args, kwargs)
        return _sized(super().call(__context, __obj, *args, **kwargs), "the call")

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
    token = _BUDGET.set(_Budget())
    try:
        return template.render(context)
    finally:
        _BUDGET.reset(token)
