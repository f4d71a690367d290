"""The ordered build steps of a spec and the files it copies: part of the schema in `models`.

`files` entries and `copy` steps share one model (`FileEntry`); a step holds exactly one of run,
copy, env, workdir and user.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from boxsmith._internal.spec.fields import (
    MODE_RE,
    USER_RE,
    EnvInput,
    ImageEnv,
    OneLine,
    SpecModel,
    absolute,
    env_values,
    fail,
    single_line,
)

__all__ = ["STEP_KINDS", "CopyStep", "FileEntry", "RunStep", "Step"]


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
