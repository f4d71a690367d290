"""E2B's build steps: one step of a template build, and a Dockerfile read as the e2b SDK reads it.

The SDK never sends a Dockerfile: `Template().from_dockerfile(text)` turns it into steps (RUN,
COPY, ENV, WORKDIR, USER), led by `USER root` + `WORKDIR /` and ended by E2B's defaults (`user`,
`/home/user`) when the file sets none; the build server runs the steps
(`boxsmith._internal.build.e2b_dockerfile`). `read_dockerfile` does the SDK's reading for the
Dockerfiles boxsmith renders (`boxsmith._internal.render.instructions`: shell-form RUN, COPY
with `--chown`, ENV quoted by `boxsmith._internal.dockerfile.quoting`), so a local build runs the
very steps a publish sends, and the engine's cache serves one build with the other's layers.
tests/test_backend_layer_reuse.py checks the reading against the SDK's own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from boxsmith._internal.dockerfile.parse import Statement, parse

__all__ = ["BuildStep", "ReadSteps", "read_dockerfile", "short"]

_CONTINUATION = re.compile(r"\\[ \t]*$")  # Docker's line continuation (escape token `\`)
_IGNORED = {"EXPOSE", "VOLUME", "LABEL", "MAINTAINER", "CMD", "ENTRYPOINT", "FROM"}


def short(text: str, limit: int = 120) -> str:
    """The first line of `text` (" ..." when there are more), cut to `limit` characters."""
    lines = text.strip().splitlines() or [""]
    first = lines[0] + (" ..." if len(lines) > 1 else "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class BuildStep:
    """One step of a template build; ADD is read as COPY and ARG as ENV, as E2B does.

    Attributes:
        type: RUN, COPY, ENV, WORKDIR or USER.
        args: RUN [command, user?]; COPY [src, dest, user, mode]; ENV [k1, v1, ...];
            WORKDIR [path]; USER [name].
        files_hash: the SDK's hash of a COPY step's files (None for a local build).
        force: rebuild this step and the ones after it (`skip_cache`).
        force_upload: upload the files even when the target has them.
    """

    type: str
    args: tuple[str, ...]
    files_hash: str | None = None
    force: bool = False
    force_upload: bool = False

    def arg(self, index: int) -> str:
        """The argument at `index`, "" when absent."""
        return self.args[index] if index < len(self.args) else ""

    def title(self) -> str:
        """The step as E2B's logs show it, e.g. `RUN echo hi`."""
        if self.type == "ENV":
            pairs = zip(self.args[::2], self.args[1::2], strict=True)
            return short("ENV " + " ".join(f"{k}={v}" for k, v in pairs))
        shown = self.args[:1] if self.type == "RUN" else self.args[:2]  # not RUN's user
        return short(f"{self.type} {' '.join(shown)}")


@dataclass(frozen=True, slots=True)
class ReadSteps:
    """A Dockerfile as the SDK's steps.

    Attributes:
        from_image: the FROM image.
        steps: the steps, in order.
        lines: the Dockerfile line each step comes from (the FROM line for E2B's leading
            `USER root` + `WORKDIR /`, 0 for its trailing defaults).
    """

    from_image: str
    steps: tuple[BuildStep, ...]
    lines: tuple[int, ...]


def _word(text: str) -> str:
    """One shell word as Docker's lexer reads it: quotes removed, `\\x` outside quotes is x,
    inside double quotes only `\\"`, `\\$` and `\\\\` are escapes; `$VAR` is kept."""
    out: list[str] = []
    index, quote = 0, ""
    while index < len(text):
        char = text[index]
        index += 1
        if quote == "'":
            quote = "" if char == "'" else quote
            out.append("" if char == "'" else char)
        elif char in "\"'" and (not quote or char == quote):
            quote = "" if quote else char
        elif char == "\\" and index < len(text):
            if quote and text[index] not in '"$\\':
                out.append(char)
            else:
                out.append(text[index])
                index += 1
        elif char != "\\":
            out.append(char)
    return "".join(out)


def _words(text: str) -> list[str]:
    """`text` split at whitespace outside quotes, each word as Docker reads it."""
    words, current, quote, index = [], "", "", 0
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "'" and index + 1 < len(text):
            current += text[index : index + 2]
            index += 2
            continue
        if char in "\"'" and (not quote or char == quote):
            quote = "" if quote else char
        if char.isspace() and not quote:
            if current:
                words.append(_word(current))
            current = ""
        else:
            current += char
        index += 1
    if current:
        words.append(_word(current))
    return words


def _json_or_words(statement: Statement) -> tuple[list[str], bool]:
    """The arguments of an exec-form (JSON array) instruction, else its words; and which."""
    text = statement.rest.strip()
    if text.startswith("[") and text.endswith("]"):
        return statement.words(), True
    return _words(text), False


def _run_command(lines: list[str], statement: Statement) -> str:
    """A shell-form RUN's command as Docker joins it: each `\\` at a line's end removed, the
    next line appended with its indentation, comment lines inside skipped."""
    parts: list[str] = []
    for number in range(statement.line, statement.end + 1):
        line = lines[number - 1]
        if number == statement.line:
            line = line.lstrip()[len("RUN") :].lstrip()
        elif line.strip().startswith("#") or not line.strip():
            continue
        joined = _CONTINUATION.sub("", line)
        parts.append(joined)
        if joined == line:
            break
    return "".join(parts).strip()


def _env_args(statement: Statement) -> tuple[str, ...]:
    words = _words(statement.rest)
    if statement.keyword == "ENV" and words and "=" not in words[0]:
        name, _, value = statement.rest.strip().partition(" ")
        return (name, _word(value.strip()))  # the legacy `ENV NAME value` form
    pairs = [word.partition("=") for word in words]
    return tuple(item for name, _, value in pairs for item in (name, value))


def _copy_steps(statement: Statement) -> list[BuildStep]:
    words, _ = _json_or_words(statement)
    user = _word(statement.flags.get("chown", ""))
    chmod = _word(statement.flags.get("chmod", ""))
    mode = f"{int(chmod, 8):04o}" if chmod else ""
    return [BuildStep("COPY", (src, words[-1], user, mode)) for src in words[:-1]]


def _steps_of(statement: Statement, lines: list[str]) -> list[BuildStep]:
    keyword = statement.keyword
    if keyword == "RUN":
        words, exec_form = _json_or_words(statement)
        command = shlex.join(words) if exec_form else _run_command(lines, statement)
        return [BuildStep("RUN", (command,))]
    if keyword in ("COPY", "ADD"):
        return _copy_steps(statement)
    if keyword in ("ENV", "ARG"):
        args = _env_args(statement)
        return [BuildStep("ENV", args)] if args else []
    if keyword in ("WORKDIR", "USER"):
        return [BuildStep(keyword, (_word(statement.rest.strip()),))]
    return []  # FROM, metadata, start commands: no step (the SDK ignores what it cannot run)


def read_dockerfile(text: str) -> ReadSteps:
    """The steps `Template().from_dockerfile(text)` sends, for a single-stage Dockerfile.

    Raises:
        ValueError: the Dockerfile has no FROM, or more than one.
    """
    statements = parse(text)
    froms = [s for s in statements if s.keyword == "FROM"]
    if len(froms) != 1:
        raise ValueError(f"expected exactly one FROM, found {len(froms)}")
    lines = text.replace("\r\n", "\n").split("\n")
    start = froms[0].line
    steps = [BuildStep("USER", ("root",)), BuildStep("WORKDIR", ("/",))]
    origin = [start, start]
    for statement in statements:
        if statement.keyword not in _IGNORED:
            made = _steps_of(statement, lines)
            steps += made
            origin += [statement.line] * len(made)
    kinds = {s.keyword for s in statements}
    if "USER" not in kinds:
        steps.append(BuildStep("USER", ("user",)))
        origin.append(0)
    if "WORKDIR" not in kinds:
        steps.append(BuildStep("WORKDIR", ("/home/user",)))
        origin.append(0)
    return ReadSteps(_word(froms[0].words()[0]), tuple(steps), tuple(origin))
