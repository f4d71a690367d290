"""GitHub Actions integration: workflow-command annotations and the job summary."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["annotation", "in_github_actions", "write_step_summary"]


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    """True inside a GitHub Actions job."""
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, file: str = "", line: int = 0, title: str = "") -> str:
    """A `::error file=...,line=...::message` workflow command."""
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if line:
        props.append(f"line={line}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{_escape_data(message)}"


def write_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> None:
    """Append to `$GITHUB_STEP_SUMMARY` when it is set."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n")
