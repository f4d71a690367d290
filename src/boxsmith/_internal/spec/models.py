"""The spec schema, declared once: pydantic models with `extra="forbid"`.

A template spec as the YAML files write it (after `extends`, `vars` and `matrix` are resolved).
The JSON Schema for editors is generated from these models (`boxsmith schema`). The building
blocks (base model, formats, validators whose errors carry a fix) are in `fields.py`; the build
steps and copied files in `steps.py`, the ready and smoke check models in `checks.py` (both
re-exported here: a spec is one schema).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

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
    SEMVER_RE,
    USER_RE,
    AptPackage,
    E2BTag,
    EnvInput,
    ImageEnv,
    NpmPackage,
    OneLine,
    PipPackage,
    SpecModel,
    Text,
    absolute,
    env_values,
    fail,
    npm_name,
    one_line,
    one_per_package,
    pip_name,
    single_line,
)
from boxsmith._internal.spec.names import TAG_RE, name_error
from boxsmith._internal.spec.steps import STEP_KINDS, CopyStep, FileEntry, RunStep, Step

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

# Keys a spec file may hold besides the template's own fields; the loader consumes them.
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
    pip_packages: list[PipPackage] = Field(
        default_factory=list,
        description="Python packages (numpy, numpy==2.1.*, pandas[excel]>=2,<3), installed after "
        "system_packages as E2B's pip_install() does: `pip install ...` as root.",
    )
    npm_packages: list[NpmPackage] = Field(
        default_factory=list,
        description="npm packages (typescript, typescript@^5.6), installed globally after "
        "pip_packages as E2B's npm_install(g=True) does: `npm install -g ...` as root.",
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

    @field_validator("pip_packages")
    @classmethod
    def _pip(cls, value: list[str]) -> list[str]:
        return one_per_package(value, pip_name, "numpy>=2,<3")

    @field_validator("npm_packages")
    @classmethod
    def _npm(cls, value: list[str]) -> list[str]:
        return one_per_package(value, npm_name, "semver@>=7.6 <8")

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
