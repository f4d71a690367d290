"""The limits on expressions in spec strings, and how what an expression handles is measured.

Spec strings are written by whoever edits a spec, so an expression must end at once with
`LimitError` instead of taking minutes of CPU or gigabytes. Every value a filter, call or operator
takes or makes, and every piece of output, is measured as the text it stands for (a list holding
one long string many times is as long as its text) and counted against a budget of characters per
rendered value, so no sequence of operations adds up to more. The inputs of an operation are thus
bounded, so a result that grows at most linearly with them is checked after the fact (`made`);
what can grow faster (repetition, powers, joins, replaces, padding widths, indents, wraps, printf)
is estimated and checked before it runs (`check_operator`, `check_method`, `check_filter`), so
nothing huge is ever made. Loops, calls, filters and operators count against a step budget
(`charge`), so nesting and recursion end too. `spec.jinja_env` installs these checks.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sized
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

__all__ = [
    "MAX_INT_BITS",
    "MAX_STEPS",
    "MAX_TOTAL_CHARS",
    "MAX_VALUE_CHARS",
    "LimitError",
    "budgeted",
    "charge",
    "check_filter",
    "check_method",
    "check_operator",
    "count_output",
    "made",
    "measured",
    "text_size",
]

MAX_VALUE_CHARS = 100_000  # a rendered value, and any string or list made on the way
MAX_TOTAL_CHARS = 2_000_000  # characters taken and made by all operations of one value
MAX_INT_BITS = 4096  # an integer made by * or ** (about 1200 decimal digits)
MAX_STEPS = 50_000  # loop iterations, calls, filters and operators in one value


class LimitError(SecurityError):
    """A spec expression went past one of the limits above."""


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.output = 0  # characters written anywhere: the value, macros, `{% set %}` blocks
        self.chars = 0  # characters measured: operations' inputs and results, output


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


def charge() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.steps += 1
        if budget.steps > MAX_STEPS:
            raise LimitError(f"the expression takes more than {MAX_STEPS} steps")


_DEPTH = 200  # nesting measured; deeper is refused (YAML allows 100 levels)


def text_size(value: Any, limit: int, depth: int = 0) -> int:
    """About how many characters `value` is as text, counted up to a little past `limit` (so
    a huge value is sized without being made text): strings by length, containers by their
    items (each item as often as it is held)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1  # about its decimal digits
    if isinstance(value, Namespace):  # its text shows all it holds
        value = value._Namespace__attrs
    if isinstance(value, Mapping):
        items: Iterable[Any] = (part for pair in value.items() for part in pair)
    elif isinstance(value, Collection) and not isinstance(value, range | jinja2.Undefined):
        items = value
    else:
        return 1
    if depth > _DEPTH:
        return limit + 1
    total = len(value) + 1
    for item in items:
        if total > limit:  # stop: the work of measuring stays within the budget
            break
        total += text_size(item, limit - total, depth + 1)
    return total


def _left() -> int:
    """Characters the budget of the value being rendered has left."""
    budget = _BUDGET.get()
    return MAX_TOTAL_CHARS - (budget.chars if budget is not None else 0)


def _afford(chars: int, what: str) -> None:
    """Refuse an operation that would take or make `chars` characters more than are left."""
    if chars > _left():
        raise LimitError(
            f"{what} would take the characters handled for this value past {MAX_TOTAL_CHARS}"
        )


def measured(value: Any, what: str) -> int:
    """The size of `value`, counted against the budget (so measuring is bounded too)."""
    size = text_size(value, _left())
    _afford(size, what)
    budget = _BUDGET.get()
    if budget is not None:
        budget.chars += size
    return size


def made(value: Any, what: str) -> Any:
    """`value`, when its length is within the limit, counted against the budget."""
    if isinstance(value, Sized) and len(value) > MAX_VALUE_CHARS:
        raise LimitError(
            f"{what} makes a value of {len(value)} characters or items (at most {MAX_VALUE_CHARS})"
        )
    measured(value, what)
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


def _printf(template: str, args: Any) -> None:
    """Refuse printf widths and precisions over the limit (`'%0999999999d' % 1`), and a result
    estimated past the budget (a mapping's value can be used by every conversion)."""
    conversions = _PRINTF.findall(template)
    size = len(template)
    for width, precision in conversions:
        for number in (width, precision):
            if number == "*":
                raise LimitError("a printf width or precision given as * is not available")
            if number:
                _width(int(number), "printf formatting")
                size += int(number)
    uses = len(conversions) if isinstance(args, Mapping) else 1
    _afford(size + uses * text_size(args, _left()), "printf formatting")


def check_operator(left: Any, right: Any, operator: str) -> None:
    """Check what `left operator right` would make before it is made."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        _bits(abs(left).bit_length() * right, f"{left} ** {right}")
    elif operator == "*" and ints:
        _bits(abs(left).bit_length() + abs(right).bit_length(), "the product")
    elif operator == "*" and isinstance(left, int) and isinstance(right, Sized):
        check_operator(right, left, operator)
    elif operator == "*" and isinstance(right, int) and isinstance(left, Sized):
        _length(len(left) * right, "the repetition")
        _afford(text_size(left, _left()) * right, "the repetition")
    elif operator == "+" and isinstance(left, Sized) and isinstance(right, Sized):
        _length(len(left) + len(right), "the concatenation")
    elif operator == "%" and isinstance(left, str):
        _printf(left, right)


def _join_size(separator: Any, items: list[Any]) -> None:
    gaps = text_size(separator, _left()) * max(len(items) - 1, 0)
    _length(gaps + sum(text_size(item, MAX_VALUE_CHARS) for item in items), "the join")


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str):  # the filter makes text of `old` and `new` (both measured)
        hits = text.count(str(old))
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _length(len(text) + hits * len(str(new)), "the replace")


def _grown(text: str, piece: Any, pieces: int) -> int:
    """The length of `text` with `piece` (a string, or a number of spaces) added `pieces` times."""
    each = piece if isinstance(piece, int) else text_size(piece, _left())
    return len(text) + pieces * each


def _arg(rest: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    """A filter's argument, given by position (after the value) or by name."""
    return rest[index] if len(rest) > index else kwargs.get(name, default)


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice", "truncate"})


def check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Pre-checks for the str methods whose result can outgrow their inputs."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return args
    if name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            _width(value, f"str.{name}")
        if name == "expandtabs":
            tabsize = _arg(args, kwargs, 0, "tabsize", 8)
            _length(_grown(owner, tabsize, owner.count("\t")), "str.expandtabs")
    elif name == "join" and args:
        items = list(args[0])
        _join_size(owner, items)
        return (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        _replace_size(owner, *args[:3])
    return args


def check_filter(name: str, value: Any, rest: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Pre-checks for the filters whose result can outgrow their inputs (`value` is what the
    filter is applied to, `rest` and `kwargs` its arguments)."""
    if name in _WIDTH_FILTERS:
        for arg in (*rest, *kwargs.values()):
            _width(arg, f"the {name} filter")
    if name == "indent" and isinstance(value, str):
        width = _arg(rest, kwargs, 0, "width", 4)
        _length(_grown(value, width, len(value.splitlines()) + 1), "the indent")
    elif name == "wordwrap" and isinstance(value, str):  # any character could end a line
        wrap = _arg(rest, kwargs, 2, "wrapstring", None) or "\n"
        _afford(_grown(value, wrap, len(value) + 1), "the wordwrap")
    elif name == "join" and value is not None:
        _join_size(_arg(rest, kwargs, 0, "d", ""), value)
    elif name == "replace" and len(rest) >= 2:
        _replace_size(value, *rest[:3])
    elif name == "format" and isinstance(value, str):
        _printf(value, kwargs or rest)
    elif name == "sum":  # adding lists or strings one by one takes quadratic time
        start = kwargs.get("start", rest[1] if len(rest) > 1 else 0)
        if not isinstance(start, int | float):
            raise LimitError("the sum filter adds numbers only (start must be a number)")


def count_output(chars: int) -> None:
    """Count `chars` characters of output (anywhere: the value, a macro, a `{% set %}` block)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.output += chars
        _length(budget.output, "the output")


@contextlib.contextmanager
def budgeted() -> Iterator[None]:
    """A fresh budget for rendering one value."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)
