"""The readiness and smoke check models of a spec: E2B's `wait_for_*` ready helpers and the
command, file, port, http, process and page checks that `boxsmith smoke` runs (the smoke stage).
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from boxsmith._internal.spec.fields import (
    EnvInput,
    EnvName,
    OneLine,
    SpecModel,
    absolute,
    env_values,
    fail,
    one_line,
)

__all__ = [
    "CHECK_KINDS",
    "CommandCheck",
    "FileCheck",
    "HttpCheck",
    "PageCheck",
    "PagePort",
    "PortCheck",
    "ProcessCheck",
    "ReadyCheck",
    "ReadyCmd",
    "SmokeCheck",
    "WaitForUrl",
    "check_name",
]


class WaitForUrl(SpecModel):
    """`wait_for_url` with an explicit status."""

    url: OneLine
    status: int = Field(200, ge=100, le=599)


class ReadyCheck(SpecModel):
    """One of E2B's ready helpers, rendered into the same shell check the SDK produces."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    wait_for_port: int | None = Field(None, ge=1, le=65535)
    # these become part of e2b.toml's ready_cmd, which is one line
    wait_for_url: str | WaitForUrl | None = None
    wait_for_file: OneLine | None = None
    wait_for_process: OneLine | None = None
    wait_for_timeout: int | None = Field(None, ge=0, description="Milliseconds (at least 1 s).")

    @field_validator("wait_for_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        return one_line(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> ReadyCheck:
        if len(self.model_fields_set) != 1:
            raise fail(
                "ready_cmd takes exactly one helper",
                "use one of wait_for_port, wait_for_url, wait_for_file, wait_for_process, "
                "wait_for_timeout, or write a shell command as a string",
            )
        return self

    def command(self) -> str:
        """The shell command, identical to e2b.template.readycmd's."""
        if self.wait_for_port is not None:
            return f'[ -n "$(ss -Htuln sport = :{self.wait_for_port})" ]'
        if self.wait_for_url is not None:
            target = self.wait_for_url
            url, status = (target, 200) if isinstance(target, str) else (target.url, target.status)
            return (
                f'curl -s -o /dev/null -w "%{{http_code}}" {shlex.quote(url)} | grep -q "{status}"'
            )
        if self.wait_for_file is not None:
            return f"[ -f {shlex.quote(self.wait_for_file)} ]"
        if self.wait_for_process is not None:
            return f"pgrep {shlex.quote(self.wait_for_process)} > /dev/null"
        return f"sleep {max(1, (self.wait_for_timeout or 0) // 1000)}"


def _ready_tag(value: Any) -> str:
    return "shell-command" if isinstance(value, str) else "ready-helper"


ReadyCmd = Annotated[
    Annotated[str, Tag("shell-command")] | Annotated[ReadyCheck, Tag("ready-helper")],
    Discriminator(_ready_tag),
]


class _Check(SpecModel):
    """Fields every smoke check has."""

    kind: ClassVar[str] = ""

    name: str | None = Field(None, description="Shown in reports; defaults to the check itself.")
    timeout: float = Field(30.0, gt=0, le=3600, description="Seconds for one attempt.")
    retries: int = Field(0, ge=0, le=100, description="Extra attempts after a failure.")
    interval: float = Field(2.0, ge=0, le=300, description="Seconds between attempts.")


def _regex(value: str | None, what: str) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise fail(
                f"{what} is not a valid regular expression: {exc}", "fix the pattern"
            ) from exc
    return value


class CommandCheck(_Check):
    """Run a command; compare exit code and (regex) output."""

    kind: ClassVar[str] = "command"
    command: str
    exit_code: int = 0
    stdout: str | None = Field(None, description="Regex searched in stdout.")
    stderr: str | None = Field(None, description="Regex searched in stderr.")
    user: str | None = None
    cwd: str | None = None
    env: dict[EnvName, str] = Field(default_factory=dict)

    _env = field_validator("env", mode="before", json_schema_input_type=EnvInput)(
        classmethod(lambda cls, v: env_values(v))
    )

    @field_validator("stdout", "stderr")
    @classmethod
    def _patterns(cls, value: str | None) -> str | None:
        return _regex(value, "pattern")


class FileCheck(_Check):
    """A file exists (or not), optionally containing a regex."""

    kind: ClassVar[str] = "file"
    file: str
    exists: bool = True
    contains: str | None = Field(None, description="Regex searched in the file.")

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        return absolute(value, "file")

    @field_validator("contains")
    @classmethod
    def _contains(cls, value: str | None) -> str | None:
        return _regex(value, "contains")


class PortCheck(_Check):
    """A TCP or UDP port is listening."""

    kind: ClassVar[str] = "port"
    port: int = Field(ge=1, le=65535)


class HttpCheck(_Check):
    """An HTTP GET answers with a status (and optionally a body regex)."""

    kind: ClassVar[str] = "http"
    http: str = Field(description="URL inside the sandbox, e.g. http://localhost:3000/")
    status: int = Field(200, ge=100, le=599)
    body: str | None = Field(None, description="Regex searched in the response body.")

    @field_validator("http")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise fail(
                f"http must be an http(s) URL, got {value!r}", "write http://localhost:PORT/"
            )
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        return _regex(value, "body")


class ProcessCheck(_Check):
    """A process whose name matches a regex is running (pgrep; pgrep -f with `full`)."""

    kind: ClassVar[str] = "process"
    process: str = Field(description="Regex searched in the process name (or command line).")
    full: bool = Field(
        False,
        description="Search the whole command line (pgrep -f) instead of the process name "
        "and program path. The shells that run commands count too.",
    )

    @field_validator("process")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return _regex(value, "process") or value


class PagePort(SpecModel):
    """Where a page check's page is: a port of the sandbox and a path on it."""

    port: int = Field(ge=1, le=65535)
    path: OneLine = Field("/", description="Path (and query) on the port, starting with /.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise fail(f"path must start with /, got {value!r}", f"write /{value}")
        return value


class PageCheck(_Check):
    """A page on a port renders in a headless Chromium: its title, a selector, visible text,
    and no JavaScript errors."""

    kind: ClassVar[str] = "page"
    page: PagePort = Field(description="The port and path to open, e.g. {port: 8501, path: /}.")
    title: str | None = Field(None, description="Regex searched in the page's title.")
    selector: str | None = Field(None, description="A CSS selector that must match an element.")
    text: str | None = Field(None, description="Text that must be visible on the page.")
    wait_for: str | None = Field(
        None,
        description="A CSS selector to wait for instead of network idle before the assertions.",
    )
    console_errors: Literal["fail", "allow"] = Field(
        "fail",
        description="fail: an uncaught exception or a console.error message fails the check; "
        "allow: they are reported but do not count.",
    )

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return _regex(value, "title")


CHECK_KINDS = ("command", "file", "port", "http", "process", "page")


def _check_tag(value: Any) -> str | None:
    if isinstance(value, _Check):
        return f"{value.kind}-check"
    if not isinstance(value, dict):
        return None
    present = [kind for kind in CHECK_KINDS if kind in value]
    return f"{present[0]}-check" if len(present) == 1 else None


SmokeCheck = Annotated[
    Annotated[CommandCheck, Tag("command-check")]
    | Annotated[FileCheck, Tag("file-check")]
    | Annotated[PortCheck, Tag("port-check")]
    | Annotated[HttpCheck, Tag("http-check")]
    | Annotated[ProcessCheck, Tag("process-check")]
    | Annotated[PageCheck, Tag("page-check")],
    Discriminator(
        _check_tag,
        custom_error_type="boxsmith",
        custom_error_message=(
            "a smoke check needs exactly one of command, file, port, http, process, page"
        ),
        custom_error_context={
            "hint": "start the check with one of command:, file:, port:, http:, process:, page:"
        },
    ),
]


def check_name(
    check: CommandCheck | FileCheck | PortCheck | HttpCheck | ProcessCheck | PageCheck,
) -> str:
    """A check's display name: its `name`, or derived from what it checks."""
    if check.name:
        return check.name
    if isinstance(check, CommandCheck):
        return f"command: {check.command}"
    if isinstance(check, FileCheck):
        return f"file: {check.file}"
    if isinstance(check, PortCheck):
        return f"port: {check.port}"
    if isinstance(check, HttpCheck):
        return f"http: {check.http}"
    if isinstance(check, PageCheck):
        return f"page: {check.page.port}{check.page.path}"
    return f"process: {check.process}"
