"""The build request of E2B's template build v2, validated: what the SDK posts, as plain data.

`BuildRequest.from_json` checks the body of `POST /v2/templates/{id}/builds/{bid}`
(`TemplateBuildStartV2`) the way E2B's build server reads it: ADD is COPY and ARG is ENV, each
step's arguments have the shape the server expects and fit one Dockerfile line. Anything else is
a `BuildRequestError` (HTTP 400 for the SDK, exit 2). `builds.py` turns a valid request into a
Docker build.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from boxsmith._internal.build.e2b_steps import BuildStep, short
from boxsmith.errors import UsageError

__all__ = ["FILES_HASH", "BuildRequest", "BuildRequestError", "BuildStep", "short"]

_TYPES = {  # what the build server accepts, and how it runs it
    **{"COPY": "COPY", "ADD": "COPY", "ENV": "ENV", "ARG": "ENV"},
    **{"RUN": "RUN", "WORKDIR": "WORKDIR", "USER": "USER"},
}
FILES_HASH = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MODE = re.compile(r"[0-7]{1,6}")


class BuildRequestError(UsageError, ValueError):
    """The build request (or a files hash) is invalid: an HTTP 400 for the SDK (exit 2)."""


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """The body of `POST /v2/templates/{id}/builds/{bid}` (`TemplateBuildStartV2`)."""

    from_image: str | None
    from_template: str | None
    steps: tuple[BuildStep, ...] = ()
    force: bool = False
    start_cmd: str | None = None
    ready_cmd: str | None = None

    @classmethod
    def from_json(cls, data: object) -> BuildRequest:
        """Validate the JSON body; BuildRequestError names what is wrong."""
        if not isinstance(data, dict):
            raise BuildRequestError("the build request must be a JSON object")
        if data.get("fromImageRegistry") is not None:
            raise BuildRequestError(
                "fromImageRegistry (registry credentials) is not supported by the local backend: "
                "pull the image into the local Docker engine and use from_image without them"
            )
        image, template = _opt_str(data, "fromImage"), _opt_str(data, "fromTemplate")
        if (image is None) == (template is None):
            raise BuildRequestError("exactly one of fromImage and fromTemplate is required")
        steps = data.get("steps") or []
        if not isinstance(steps, list):
            raise BuildRequestError("steps must be a list")
        return cls(
            from_image=image,
            from_template=template,
            steps=tuple(_parse_step(n, raw) for n, raw in enumerate(steps, 1)),
            force=_bool(data, "force"),
            start_cmd=_opt_str(data, "startCmd"),
            ready_cmd=_opt_str(data, "readyCmd"),
        )


def _opt_str(data: Mapping[str, object], key: str, where: str = "") -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BuildRequestError(f"{where}{key} must be a string")
    if value and "\x00" in value:
        raise BuildRequestError(f"{where}{key} has a NUL character")
    return value or None


def _bool(data: Mapping[str, object], key: str, where: str = "") -> bool:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise BuildRequestError(f"{where}{key} must be a boolean")
    return bool(value)


def _parse_step(number: int, raw: object) -> BuildStep:
    where = f"step {number}: "
    if not isinstance(raw, dict):
        raise BuildRequestError(f"{where}must be an object")
    kind = str(raw.get("type", "")).upper()
    if kind not in _TYPES:
        raise BuildRequestError(
            f"{where}unknown type {raw.get('type')!r} (known: {sorted(_TYPES)})"
        )
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BuildRequestError(f"{where}args must be a list of strings")
    if any("\x00" in arg for arg in args):  # no Dockerfile line, no command line carries one
        raise BuildRequestError(f"{where}args must not hold a NUL character")
    step = BuildStep(
        type=_TYPES[kind],
        args=tuple(args),
        files_hash=_opt_str(raw, "filesHash", where),
        force=_bool(raw, "force", where),
        force_upload=_bool(raw, "forceUpload", where),
    )
    problem = _ARG_CHECKS[step.type](step)
    if problem:
        raise BuildRequestError(f"{where}{kind}: {problem}")
    return step


def _line_safe(value: str) -> bool:
    """Fits one Dockerfile line: no line break, no trailing `\\` (a continuation)."""
    return bool(value) and "\n" not in value and "\r" not in value and not value.endswith("\\")


def _one_word(value: str) -> bool:
    """Empty, or one word that fits one Dockerfile line (a user name, `user:group`)."""
    return not value or (value.split() == [value] and _line_safe(value))


def _check_copy(step: BuildStep) -> str:
    src, dest, user, mode = step.arg(0), step.arg(1), step.arg(2), step.arg(3)
    normalized = posixpath.normpath(src)
    if not src or src.startswith("/") or normalized == ".." or normalized.startswith("../"):
        return f"source {src!r} must be a relative path inside the context"
    if not _line_safe(src) or not _line_safe(dest) or len(step.args) > 4:
        return "args must be [src, dest, user, mode] with a one-line src and dest"
    if not _one_word(user):
        return f"user {user!r} must be one word (a user name, or user:group)"
    if mode and not _MODE.fullmatch(mode):
        return f"mode {mode!r} is not octal"
    if step.files_hash is None or not FILES_HASH.fullmatch(step.files_hash):
        return "filesHash is missing or invalid"
    return ""


def _check_run(step: BuildStep) -> str:
    user = step.arg(1)
    ok = len(step.args) <= 2 and step.arg(0).strip() and _one_word(user)
    return "" if ok else "args must be [command] or [command, user]"


def _check_env(step: BuildStep) -> str:
    if not step.args or len(step.args) % 2:
        return "args must be [key1, value1, key2, value2, ...]"
    for key, value in zip(step.args[::2], step.args[1::2], strict=True):
        if not key or "=" in key or key.split() != [key]:
            return f"invalid variable name {key!r}"
        if "\n" in value or "\r" in value:
            return f"the value of {key} has a line break (not supported locally)"
    return ""


def _check_path(step: BuildStep) -> str:
    return "" if len(step.args) == 1 and _line_safe(step.args[0]) else "args must be [path]"


def _check_user(step: BuildStep) -> str:
    name = step.arg(0)
    return "" if name.split() == [name] and _line_safe(name) else "args must be [user name]"


_ARG_CHECKS: dict[str, Callable[[BuildStep], str]] = {
    "COPY": _check_copy,
    "RUN": _check_run,
    "ENV": _check_env,
    "WORKDIR": _check_path,
    "USER": _check_user,
}
