"""The spec schema, declared once: pydantic models with `extra="forbid"`.

A template spec as the YAML files write it (after `extends`, `vars` and `matrix` are resolved).
The JSON Schema for editors is generated from these models (`boxsmith schema`). The building
blocks (base model, formats, validators whose errors carry a fix) are in `fields.py`; the ready
and smoke check models in `checks.py` (re-exported here: a spec is one schema).
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from boxsmith._internal.spec.checks import (
    CommandCheck,
    FileCheck,
    HttpCheck,
    PortCheck,
    ProcessCheck,
    ReadyCheck,
    ReadyCmd,
    SmokeCheck,
    check_name,
)
from boxsmith._internal.spec.fields import (
    IMAGE_RE,
    MODE_RE,
    SEMVER_RE,
    TAG_RE,
    USER_RE,
    AptPackage,
    E2BTag,
    EnvInput,
    ImageEnv,
    OneLine,
    SpecModel,
    Text,
    absolute,
    env_values,
    fail,
    one_line,
    single_line,
)
from boxsmith._internal.spec.names import name_error

__all__ = [
    "META_KEYS",
    "STEP_KINDS",
    "CommandCheck",
    "CopyStep",
    "FileCheck",
    "FileEntry",
    "HttpCheck",
    "LintSettings",
    "PortCheck",
    "ProcessCheck",
    "ReadyCheck",
    "Resources",
    "RunStep",
    "SmokeCheck",
    "Step",
    "TemplateSpec",
    "check_name",
]

# Keys a spec file may hold besides the template's own fields; resolve.py consumes them.
META_KEYS = ("abstract", "extends", "matrix", "vars")


class Resources(SpecModel):
    """Sandbox size; E2B's rules: cpu 1 or even up to 32, memory even and at least 128 MiB."""

    cpu_count: int = Field(2, description="vCPUs: 1 or an even number up to 32 (E2B default 2).")
    memory_mb: int = Field(1024, description="RAM in MiB: even, at least 128 (E2B default 1024).")

    @field_validator("cpu_count")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if not (value == 1 or (value % 2 == 0 and 2 <= value <= 32)):
            raise fail(
                f"cpu_count must be 1 or an even number from 2 to 32, got {value}",
                "use 1, 2, 4, 8, 16 or another even count up to 32",
            )
        return value

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value < 128 or value % 2:
            raise fail(
                f"memory_mb must be an even number of MiB, at least 128, got {value}",
                f"use {max(128, value + value % 2)}",
            )
        return value


class FileEntry(SpecModel):
    """A file or folder copied from the spec's own folder into the image."""

    src: OneLine = Field(description="Path relative to the folder of the spec that declares it.")
    dest: OneLine = Field(description="Absolute path in the image.")
    mode: str | None = Field(None, description="Octal permission string, for example '0755'.")
    owner: OneLine | None = Field(
        None, description="user[:group] that owns the copy (COPY --chown)."
    )

    @field_validator("src")
    @classmethod
    def _src(cls, value: str) -> str:
        normal = posixpath.normpath(value)
        if value.startswith("/") or normal == ".." or normal.startswith("../"):
            raise fail(
                f"src {value!r} points outside the spec's folder",
                "give a path relative to the spec's folder, without leading / or ..",
            )
        if normal == ".":
            raise fail(
                f"src {value!r} is the whole spec folder (other specs and their files too)",
                "put the files in a folder next to the spec and copy that folder",
            )
        if normal in ("e2b.toml", "e2b.Dockerfile"):
            raise fail(f"src {value!r} clashes with a generated file", "rename the file")
        return normal

    @field_validator("dest")
    @classmethod
    def _dest(cls, value: str) -> str:
        return absolute(value, "dest")

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(
                f"mode must be a quoted octal string like '0755', got {value!r}",
                "quote it: YAML reads an unquoted 0755 as the number 493",
            )
        if not MODE_RE.fullmatch(value):
            raise fail(
                f"mode {value!r} is not an octal permission",
                "use 3 or 4 octal digits (0-7), e.g. '0755'",
            )
        return value if value.startswith("0") and len(value) == 4 else value.rjust(4, "0")

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is not None and not USER_RE.fullmatch(value):
            raise fail(f"owner {value!r} is not user[:group]", "write it like 'user:user'")
        return value


def _user_name(value: str | None) -> str | None:
    if value is not None and not USER_RE.fullmatch(value):
        raise fail(f"user {value!r} is not a valid user name", "use a name like 'user'")
    return value


class CopyStep(FileEntry):
    """A `copy` step: like `files`, but at its place in the step order."""


class RunStep(SpecModel):
    """A `run` step: one command, or a list joined with &&, optionally as another user."""

    cmd: str | list[str] = Field(description="Shell command, or a list of them joined with &&.")
    user: OneLine | None = Field(None, description="Run as this user, then switch back.")

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, value: str | list[str]) -> str | list[str]:
        items = [value] if isinstance(value, str) else value
        if not items or any(not item.strip() for item in items):
            raise fail("cmd is empty", "give the shell command to run")
        cleaned = [single_line(item, "cmd") for item in items]
        return cleaned[0] if isinstance(value, str) else cleaned

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return _user_name(value)

    @property
    def commands(self) -> list[str]:
        """The command as a list."""
        return [self.cmd] if isinstance(self.cmd, str) else list(self.cmd)


STEP_KINDS = ("run", "copy", "env", "workdir", "user")


class Step(SpecModel):
    """One ordered build step: exactly one of run, copy, env, workdir, user."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    run: RunStep | None = Field(None, description="Shell command (string, list, or {cmd, user}).")
    copy_: CopyStep | None = Field(None, alias="copy", description="Copy a file: {src, dest}.")
    env: ImageEnv | None = Field(None, description="Environment variables from here on.")
    workdir: OneLine | None = Field(None, description="Working directory from here on (absolute).")
    user: OneLine | None = Field(None, description="User for the steps that follow.")

    @field_validator("run", mode="before", json_schema_input_type=str | list[str] | RunStep | None)
    @classmethod
    def _run_shorthand(cls, value: Any) -> Any:
        return {"cmd": value} if isinstance(value, str | list) else value

    @field_validator("env", mode="before", json_schema_input_type=EnvInput | None)
    @classmethod
    def _env(cls, value: Any) -> Any:
        return env_values(value)

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        return None if value is None else absolute(value, "workdir")

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return _user_name(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        if len(self.model_fields_set) != 1:
            raise fail(
                "a step needs exactly one of run, copy, env, workdir, user",
                "split it into one list item per step",
            )
        if getattr(self, next(iter(self.model_fields_set))) is None:
            raise fail(
                f"step `{self.kind}` has no value",
                f"give `{self.kind}:` a value, or remove the step",
            )
        return self

    @property
    def kind(self) -> str:
        """Which of the step kinds this is."""
        return next(iter(self.model_fields_set)).rstrip("_")


LINT_CODE_RE = re.compile(r"^(?:DL\d{4}|SC\d{4}|E2B\d{3})$")


class LintSettings(SpecModel):
    """Per-template lint settings."""

    ignore: list[str] = Field(
        default_factory=list,
        description="Rule codes to ignore for this template: hadolint (DL3008), ShellCheck "
        "(SC2086) or boxsmith's own (E2B001).",
    )

    @field_validator("ignore")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not LINT_CODE_RE.fullmatch(code):
                raise fail(
                    f"{code!r} is not a lint rule code",
                    "use a hadolint (DL3008), ShellCheck (SC2086) or boxsmith (E2B001) code",
                )
        return value


# The canonical form only: uuid.UUID() also takes braces, `urn:uuid:` and whitespace.
UUID_RE = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
HOST_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?$")


def _host_port(value: str) -> str:
    if not HOST_RE.fullmatch(value) or int(value.partition(":")[2] or 443) > 65535:
        raise fail(
            f"{value!r} is not a host or host:port",
            "write a host name like codeload.github.com, or host:port like example.com:8443",
        )
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]


class TemplateSpec(SpecModel):
    """One E2B sandbox template, fully resolved."""

    name: OneLine = Field(
        description="E2B template name: a-z, 0-9, - and _, at most 128 characters."
    )
    version: str = Field(description="Semantic version; published as the tag name:version.")
    description: Text = Field(description="What the template is for.")
    base_image: OneLine = Field(description="FROM image, e.g. debian:bookworm-slim.")
    resources: Resources = Field(default_factory=Resources)
    team_id: OneLine | None = Field(None, description="E2B team (UUID) that owns the template.")
    env: ImageEnv = Field(default_factory=dict, description="ENV set right after FROM.")
    system_packages: list[AptPackage] = Field(
        default_factory=list, description="apt packages, installed and cleaned in one layer."
    )
    files: list[FileEntry] = Field(default_factory=list, description="Copied before the steps.")
    workdir: OneLine = Field("/home/user", description="Final WORKDIR (the sandbox default).")
    user: OneLine = Field("user", description="Final USER (the sandbox default).")
    steps: list[Step] = Field(default_factory=list, description="Ordered build steps.")
    start_cmd: str | None = Field(None, description="Started in the background before ready.")
    ready_cmd: ReadyCmd | None = Field(None, description="Shell check or a wait_for_* helper.")
    smoke: list[SmokeCheck] = Field(default_factory=list, description="Checks run after build.")
    labels: dict[OneLine, OneLine] = Field(
        default_factory=dict, description="Free labels for grouping."
    )
    tags: list[E2BTag] = Field(default_factory=list, description="Extra E2B tags on publish.")
    lint: LintSettings = Field(default_factory=LintSettings, description="Lint settings.")
    build_hosts: list[HostPort] = Field(
        default_factory=list,
        description=(
            "Hosts the build downloads from besides the package registries (host or host:port, "
            "port 443 by default). A local build where one does not answer is skipped, with the "
            "reason, instead of failing."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if name_error(value):
            fixed = re.sub(r"[^a-z0-9_-]+", "-", value.strip().lower())[:128] or "my-template"
            raise fail(
                f"name {value!r} breaks E2B's rule ^[a-z0-9-_]+$ (at most 128 characters)",
                f"use lowercase letters, digits, - and _, e.g. {fixed!r}",
            )
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise fail(
                f"version must be a quoted semantic version string, got {value!r}",
                'quote it, e.g. version: "1.0.0"',
            )
        one_line(value)
        if not SEMVER_RE.fullmatch(value):
            raise fail(f"version {value!r} is not a semantic version", "use MAJOR.MINOR.PATCH")
        if not TAG_RE.fullmatch(value):
            raise fail(
                f"version {value!r} cannot be an E2B tag (a-z, 0-9, -, _ and . only)",
                "drop +build metadata and use lowercase pre-release names",
            )
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if not value.strip():
            raise fail("description is empty", "say in one line what the template is for")
        return value

    @field_validator("base_image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not IMAGE_RE.fullmatch(value):
            raise fail(f"base_image {value!r} is not an image reference", "e.g. debian:bookworm")
        return value

    @field_validator("team_id")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        if value is not None and not UUID_RE.fullmatch(value):
            raise fail(f"team_id {value!r} is not a UUID", "copy it from the E2B dashboard")
        return value

    @field_validator("env", mode="before", json_schema_input_type=EnvInput | None)
    @classmethod
    def _env(cls, value: Any) -> Any:
        return env_values(value)

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str) -> str:
        return absolute(value, "workdir")

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not USER_RE.fullmatch(value):
            raise fail(f"user {value!r} is not a valid user name", "use 'user', E2B's default")
        return value

    @field_validator("start_cmd")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        return None if value is None else single_line(value, "start_cmd")

    @field_validator("ready_cmd")
    @classmethod
    def _ready(cls, value: Any) -> Any:
        return single_line(value, "ready_cmd") if isinstance(value, str) else value

    def ready_command(self) -> str | None:
        """The ready command as a shell string; E2B's default when only start_cmd is set."""
        if isinstance(self.ready_cmd, ReadyCheck):
            return self.ready_cmd.command()
        if self.ready_cmd is not None:
            return self.ready_cmd
        return "sleep 20" if self.start_cmd else None
