"""template.py: the template of e2b.Dockerfile and e2b.toml, as code for the e2b SDK's builder.

E2B's own examples build templates with the SDK's Template builder (`Template().from_image(...)
.run_cmd(...)`) instead of a Dockerfile. With `template_py = true` in `[tool.boxsmith]`, each
rendered version also gets a `template.py` that does so (`templates/template.py.j2`): the
rendered instructions translated one by one into builder calls, the way the SDK's own
`from_dockerfile` reads them (FROM `from_image`, RUN `run_cmd`, COPY `copy`, ENV `set_envs`,
WORKDIR `set_workdir`, USER `set_user`), so both build the same steps. Two readings are the
builder's own: the `chmod` boxsmith writes after a COPY of a file with a `mode` becomes the
copy's `mode=` (the same file, same owner, same mode), and the ready command is the SDK helper
the spec names (`wait_for_port(8000)`, whose command e2b.toml holds). The template name, CPUs
and memory are read from e2b.toml when it runs; the version tag is in the code (e2b.toml has
no version).

The code is ruff-format-clean at ruff's default line length (88): a call stays on its line
when it fits, else it is split one argument a line with a trailing comma, which keeps ruff from
joining it again at any line length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from boxsmith._internal.dockerfile.parse import Statement, parse
from boxsmith._internal.dockerfile.source_map import Instruction
from boxsmith._internal.render.instructions import chmod_command
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.checks import ReadyCheck
from boxsmith._internal.spec.names import version_tag

__all__ = ["Call", "Raw", "builder_calls", "chain_lines", "context", "py_str"]

WIDTH = 88  # ruff's default line length
_INDENT = "    "
_CHMOD = re.compile(r"chmod ([0-7]{3,4}) ")


@dataclass(frozen=True, slots=True)
class Raw:
    """A Python expression written as it is (`0o755`, `wait_for_port(8000)`)."""

    text: str


Value = str | int | Raw | list[str] | dict[str, str]


@dataclass(frozen=True, slots=True)
class Call:
    """One builder call: `.method(*args, **kwargs)`."""

    method: str
    args: tuple[Value, ...] = ()
    kwargs: tuple[tuple[str, Value], ...] = ()


def py_str(text: str) -> str:
    """`text` as a Python string literal the way ruff formats it: double quotes unless the text
    holds more double than single quotes; non-printable characters escaped."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out: list[str] = []
    for char in text:
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(repr(char)[1:-1])  # \t \n \x7f \u2028, lower-case hex as ruff keeps it
    return quote + "".join(out) + quote


def _flat(value: Value) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(py_str(item) for item in value) + "]"
    return "{" + ", ".join(f"{py_str(k)}: {py_str(v)}" for k, v in value.items()) + "}"


def _width(text: str) -> int:
    """Columns `text` takes, as ruff counts them (wide East Asian characters take two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _argument(value: Value, indent: str, prefix: str) -> list[str]:
    """One argument of a split call, ending with a comma; a list or dict that does not fit is
    split one item a line."""
    line = f"{indent}{prefix}{_flat(value)},"
    if _width(line) <= WIDTH or not isinstance(value, list | dict):
        return [line]
    inner = indent + _INDENT
    if isinstance(value, list):
        items = [f"{inner}{py_str(item)}," for item in value]
        return [f"{indent}{prefix}[", *items, f"{indent}],"]
    pairs = [f"{inner}{py_str(k)}: {py_str(v)}," for k, v in value.items()]
    return [f"{indent}{prefix}{{", *pairs, f"{indent}}},"]


def chain_lines(calls: Sequence[Call]) -> list[str]:
    """The calls as the lines of a parenthesized call chain, one call a line (split when it
    does not fit)."""
    lines: list[str] = []
    for call in calls:
        named = [("", v) for v in call.args] + [(f"{k}=", v) for k, v in call.kwargs]
        one = f"{_INDENT}.{call.method}(" + ", ".join(p + _flat(v) for p, v in named) + ")"
        if _width(one) <= WIDTH:
            lines.append(one)
            continue
        lines.append(f"{_INDENT}.{call.method}(")
        for prefix, value in named:
            lines += _argument(value, _INDENT * 2, prefix)
        lines.append(f"{_INDENT})")
    return lines


def _statement(instruction: Instruction) -> Statement:
    (statement,) = parse(instruction.text())
    return statement


def _run(instruction: Instruction) -> Call:
    """RUN: the shell command, a list when boxsmith wrote it as `a \\ && b` lines (the builder
    joins a list with ` && `, which is the same command)."""
    lines = [line.strip().removesuffix("\\").strip() for line in instruction.args.split("\n")]
    if len(lines) > 1 and all(line.startswith("&& ") for line in lines[1:]):
        return Call("run_cmd", ([lines[0], *(line[3:] for line in lines[1:])],))
    return Call("run_cmd", (_statement(instruction).args,))


def _mode(group: Sequence[Instruction], dest: str) -> str | None:
    """The mode of the chmod boxsmith writes after a COPY (`USER root`, `RUN chmod MODE dest`,
    `USER back` around it when needed; `dest` bare or double-quoted, as `chmod_command` writes
    it), or None when `group` is something else."""
    keywords = [i.keyword for i in group]
    if keywords not in (["RUN"], ["USER", "RUN", "USER"]):
        return None
    if len(group) == 3 and (group[0].args != "root" or group[2].args == "root"):
        return None
    command = group[len(group) // 2].args
    match = _CHMOD.match(command)
    if match is None or command != chmod_command(match[1], dest):
        return None
    return match[1]


def _copy(instruction: Instruction, group: Sequence[Instruction], files: frozenset[str]) -> Call:
    """COPY, with the chmod after it folded into `mode=` for a single file (`group` is the
    rest of the spec entry's instructions; a folder's chmod applies to the folder, not to its
    files as `mode=` would, so it stays a RUN)."""
    statement = _statement(instruction)
    src, dest = statement.words()
    kwargs: list[tuple[str, Value]] = []
    if "chown" in statement.flags:
        kwargs.append(("user", statement.flags["chown"]))
    mode = _mode(group, dest) if src in files and not dest.endswith("/") else None
    if mode is not None:
        kwargs.append(("mode", Raw("0o" + mode.lstrip("0").rjust(3, "0"))))
    return Call("copy", (src, dest), tuple(kwargs))


def _groups(steps: Sequence[Instruction]) -> Iterator[list[Instruction]]:
    """The instructions in runs of the same spec source (one spec entry each)."""
    group: list[Instruction] = []
    for step in steps:
        if group and step.source != group[0].source:
            yield group
            group = []
        group.append(step)
    if group:
        yield group


def _translate(steps: Sequence[Instruction], files: frozenset[str]) -> Iterator[Call]:
    for group in _groups(steps):
        index = 0
        while index < len(group):
            step = group[index]
            index += 1
            if step.keyword == "COPY":
                call = _copy(step, group[index:], files)
                if any(k == "mode" for k, _ in call.kwargs):
                    index = len(group)  # the chmod is the copy's mode
                yield call
            elif step.keyword == "RUN":
                yield _run(step)
            elif step.keyword == "ENV":
                pairs = _statement(step).pairs()
                yield Call("set_envs", ({k: v or "" for k, v in pairs},))
            elif step.keyword in _SINGLE:  # the rest of the line, as Docker reads these
                yield Call(_SINGLE[step.keyword], (step.args,))
            else:  # instructions.py writes no other
                raise ValueError(f"template.py: no builder call for {step.keyword}")


_SINGLE = {"FROM": "from_image", "USER": "set_user", "WORKDIR": "set_workdir"}


def _ready(check: ReadyCheck) -> tuple[Raw, str]:
    """The SDK helper call for a ready check (its command is `check.command()`), and its name."""
    if check.wait_for_port is not None:
        return Raw(f"wait_for_port({check.wait_for_port})"), "wait_for_port"
    if check.wait_for_url is not None:
        target = check.wait_for_url
        url, status = (target, 200) if isinstance(target, str) else (target.url, target.status)
        extra = "" if status == 200 else f", {status}"
        return Raw(f"wait_for_url({py_str(url)}{extra})"), "wait_for_url"
    if check.wait_for_file is not None:
        return Raw(f"wait_for_file({py_str(check.wait_for_file)})"), "wait_for_file"
    if check.wait_for_process is not None:
        return Raw(f"wait_for_process({py_str(check.wait_for_process)})"), "wait_for_process"
    return Raw(f"wait_for_timeout({check.wait_for_timeout or 0})"), "wait_for_timeout"


def _start_ready(template: Template) -> tuple[Call | None, set[str]]:
    """`set_start_cmd` or `set_ready_cmd` as publish calls them, and the helpers they use; a
    start command alone gets E2B's default ready command (20 s)."""
    spec = template.spec
    helpers: set[str] = set()
    ready: Value = Raw("wait_for_timeout(20_000)")  # `sleep 20`, as from_dockerfile's CMD gets
    if isinstance(spec.ready_cmd, ReadyCheck):
        ready, helper = _ready(spec.ready_cmd)
        helpers.add(helper)
    elif spec.ready_cmd:
        ready = spec.ready_cmd
    elif spec.start_cmd:
        helpers.add("wait_for_timeout")
    else:
        return None, helpers
    if spec.start_cmd:
        return Call("set_start_cmd", (spec.start_cmd, ready)), helpers
    return Call("set_ready_cmd", (ready,)), helpers


def builder_calls(
    template: Template, steps: Sequence[Instruction], files: frozenset[str]
) -> tuple[list[Call], set[str]]:
    """The builder calls after `Template(...)` for the rendered `steps` (`files`: the rendered
    folder's files, to tell a copied file from a folder), and the SDK helpers they use."""
    calls = list(_translate(steps, files))
    last, helpers = _start_ready(template)
    if last is not None:
        calls.append(last)
    return calls, helpers


def context(
    template: Template, steps: Sequence[Instruction], files: frozenset[str]
) -> dict[str, object]:
    """The values of `templates/template.py.j2` for one template (plain, for the sandbox)."""
    calls, helpers = builder_calls(template, steps, files)
    names = ["BuildInfo", "Template", "default_build_logger", *sorted(helpers)]
    return {
        "ref": template.ref,
        "default_name": f"{template.name}:{version_tag(template.version)}",
        "tag": py_str(version_tag(template.version)),
        "imports": ", ".join(names),
        "chain": chain_lines(calls),
    }
