"""Building blocks of the spec models: the base model, the formats E2B and Docker accept, and
validators whose errors carry a fix (`PydanticCustomError("boxsmith", message, {"hint": ...})`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from boxsmith._internal.spec.names import TAG_RE, tag_error

__all__ = [
    "ENV_KEY_RE",
    "IMAGE_RE",
    "LINE_BREAKS",
    "MODE_RE",
    "SEMVER_RE",
    "USER_RE",
    "AptPackage",
    "E2BTag",
    "EnvInput",
    "EnvName",
    "EnvValue",
    "ImageEnv",
    "NpmPackage",
    "OneLine",
    "PipPackage",
    "SpecModel",
    "Text",
    "absolute",
    "env_values",
    "fail",
    "npm_name",
    "one_line",
    "one_per_package",
    "pip_name",
    "single_line",
]

SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IMAGE_RE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*[$]?(?::[a-z_][a-z0-9_-]*)?$|^[0-9]+(?::[0-9]+)?$")
MODE_RE = re.compile(r"^0?[0-7]{3,4}$")


def fail(message: str, hint: str) -> PydanticCustomError:
    """A validation error whose `hint` the located error report shows as the fix."""
    return PydanticCustomError("boxsmith", message, {"hint": hint})


class SpecModel(BaseModel):
    """Base for every spec model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# Characters that end a line for Docker, the e2b SDK's Dockerfile parser, TOML or Python's
# splitlines (NUL cuts a C string): control characters except tab, DEL, C1 controls (U+0085 is a
# line break), and the Unicode line and paragraph separators.
LINE_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# The same, for free text that may span lines (newline allowed).
_TEXT_BREAKS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMES = {"\n": "a line break (\\n)", "\r": "a carriage return (\\r)", "\x00": "a NUL byte (\\0)"}


def _what(char: str) -> str:
    return _NAMES.get(char, f"the control character U+{ord(char):04X}")


def one_line(value: str) -> str:
    """`value` when it can be one Dockerfile line or e2b.toml value: no line break or other
    control character (a tab is fine), no trailing backslash (Docker's line continuation)."""
    found = LINE_BREAKS.search(value)
    if found:
        raise fail(
            f"this value holds {_what(found[0])} at character {found.start() + 1}; it becomes "
            "one line of e2b.Dockerfile or e2b.toml, where the rest would start a new line "
            "(another instruction)",
            "write the value on one line, without control characters",
        )
    if value.rstrip(" \t").endswith("\\"):
        raise fail(
            "this value ends with a backslash, which would join the next Dockerfile line to it",
            "remove the trailing backslash",
        )
    return value


def _text(value: str) -> str:
    found = _TEXT_BREAKS.search(value)
    if found:
        raise fail(
            f"this text holds {_what(found[0])} at character {found.start() + 1}",
            "remove the control character",
        )
    return value


OneLine = Annotated[str, AfterValidator(one_line)]  # becomes (part of) one output line
Text = Annotated[str, AfterValidator(_text)]  # free text: line breaks allowed


def single_line(value: str, what: str) -> str:
    """A command as one Dockerfile line or e2b.toml value: surrounding newlines (a `|` block's
    last one) are dropped; an inner line break, another control character or a trailing
    backslash is an error."""
    line = value.strip("\n")
    if "\n" in line:
        raise fail(
            f"{what} spans several lines",
            "write a list of commands (joined with &&) or a folded scalar (`>-`)",
        )
    return one_line(line)


def absolute(value: str, what: str) -> str:
    """`value` when it is an absolute path."""
    if not value.startswith("/"):
        raise fail(f"{what} must be an absolute path, got {value!r}", f"write it as '/{value}'")
    return value


def _env_name(key: str) -> str:
    if not ENV_KEY_RE.fullmatch(key):
        raise fail(
            f"env name {key!r} is not a valid variable name",
            "use letters, digits and _, not starting with a digit",
        )
    return key


def _env_value(value: str) -> str:
    found = LINE_BREAKS.search(value)
    if found:
        raise fail(
            f"an ENV value must be one line: it holds {_what(found[0])}, and a Dockerfile ENV "
            "cannot hold a line break or a control character",
            "write it on one line (a folded scalar `>-` joins lines with spaces)",
        )
    return value  # a trailing backslash is fine: such a value is written quoted (env_value)


_APT_RE = re.compile(r"[a-z0-9][a-z0-9+.-]*(?:[=:][A-Za-z0-9.+~:-]+)?")


def _apt_package(package: str) -> str:
    if not _APT_RE.fullmatch(package):
        raise fail(
            f"{package!r} is not a Debian package name",
            "one package per item, optionally pinned as name=version",
        )
    return package


_Hints = tuple[tuple[re.Pattern[str], str], ...]  # the first that matches a bad value says why
# pip: a PEP 508 name, optional [extras] and version specifiers, no spaces, URLs or markers.
_PY_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PY_SPEC = r"(?:===|~=|==|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+"
_PIP_RE = re.compile(
    rf"(?P<name>{_PY_NAME})(?:\[{_PY_NAME}(?:,{_PY_NAME})*\])?(?:{_PY_SPEC}(?:,{_PY_SPEC})*)?"
)
_PIP_HINTS: _Hints = (
    (re.compile(r"^-"), "options (-r, -e, --pre, --index-url) are not packages: use a run step"),
    (re.compile(r"://|@|;"), "URLs, direct references and markers need a run step"),
    (re.compile(r"\s"), "write it without spaces, e.g. 'numpy>=2,<3'"),
    (re.compile(r"^[^=<>!~]*=(?!=)"), "pip pins with ==, e.g. 'numpy==2.1.*'"),
)
# npm: a lowercase name or @scope/name, then an optional @version, tag or range (spaces allowed
# in a range: `>=1.2 <2`); no git, file, alias or URL sources.
_NPM_RANGE = r"[A-Za-z0-9.*^~<>=|+_-]+(?: [A-Za-z0-9.*^~<>=|+_-]+)*"
_NPM_RE = re.compile(
    rf"(?P<name>(?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~][a-z0-9._~-]*)(?:@{_NPM_RANGE})?"
)
_NPM_HINTS: _Hints = (
    (re.compile(r"^-"), "npm options are not packages: use a run step"),
    (re.compile(r":|^[./]|\.tgz$"), "git, file, alias and URL sources need a run step"),
    (re.compile(r"^@?[^@]*[A-Z]"), "npm package names are lowercase"),
    (re.compile(r"^(?:@[^/@]+/)?[^@=]+="), "npm pins with @, e.g. 'typescript@5.6.3'"),
)


def _package(value: str, pattern: re.Pattern[str], hints: _Hints, what: str, example: str) -> str:
    if pattern.fullmatch(value):
        return value
    hint = next((text for check, text in hints if check.search(value)), f"e.g. {example}")
    raise fail(f"{value!r} is not {what}", hint)


def _pip_package(value: str) -> str:
    what = "a pip package: a name, optional [extras] and versions"
    return _package(value, _PIP_RE, _PIP_HINTS, what, "'numpy==2.1.*' or 'pandas[excel]>=2,<3'")


def _npm_package(value: str) -> str:
    what = "an npm package: a name or @scope/name and an optional @version"
    return _package(value, _NPM_RE, _NPM_HINTS, what, "'typescript@^5.6' or '@types/node'")


def pip_name(requirement: str) -> str:
    """The normalized project name of a valid `pip_packages` item (PEP 503)."""
    found = _PIP_RE.match(requirement)
    name = found["name"] if found else requirement
    return re.sub(r"[-_.]+", "-", name).lower()


def npm_name(package: str) -> str:
    """The package name of a valid `npm_packages` item, without its @version."""
    found = _NPM_RE.match(package)
    return found["name"] if found else package


def one_per_package(packages: list[str], name_of: Callable[[str], str], example: str) -> list[str]:
    """`packages` when no package is listed twice with different versions (the same item
    twice is fine: it is installed once)."""
    seen: dict[str, str] = {}
    for package in packages:
        first = seen.setdefault(name_of(package), package)
        if first != package:
            raise fail(
                f"{name_of(package)} is listed twice: {first!r} and {package!r}",
                f"keep one item per package; one item can hold every version rule: {example!r}",
            )
    return packages


def _tag(tag: str) -> str:
    problem = tag_error(tag)
    if problem:
        raise fail(problem, "rename it" if TAG_RE.fullmatch(tag) else "use a-z, 0-9, -, _, .")
    return tag


EnvName = Annotated[str, AfterValidator(_env_name)]
EnvValue = Annotated[str, AfterValidator(_env_value)]
ImageEnv = dict[EnvName, EnvValue]  # ENV of the image (a check's env may hold line breaks)
AptPackage = Annotated[str, AfterValidator(_apt_package)]
PipPackage = Annotated[str, AfterValidator(_pip_package)]
NpmPackage = Annotated[str, AfterValidator(_npm_package)]
E2BTag = Annotated[str, AfterValidator(_tag)]


# What YAML may write for env values; numbers and booleans become strings.
EnvInput = dict[str, str | int | float | bool]


def env_values(value: Any) -> Any:
    """Accept YAML numbers and booleans as env values."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            out[key] = item
    return out
