"""`boxsmith init [DIR]`: start a project in DIR (default: the current folder).

It writes a starter spec that builds offline and passes its smoke checks, the spec schema its
`$schema` line names, the rendered generated/ folder, `.boxsmith/` in .gitignore,
`[tool.boxsmith]` in pyproject.toml, a tasks.py importing boxsmith's invoke tasks
(`boxsmith.tasks`) and the GitHub workflows: the files in `boxsmith/_internal/scaffold/workflows/`
as they are, named `.github/workflows/boxsmith-<name>.yml` so a repository's own ci.yml stays.
Everything is planned before anything is written: a file that exists with other content is
refused (exit 2, each one named) unless `force`, and .gitignore and pyproject.toml are amended,
never replaced (their bytes stay, the lines are appended; an existing `[tool.boxsmith]` is kept).
Each file is reported as `create`, `identical`, `overwrite` or `update`, then the commands to run
next.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TextIO

import tomlkit

from boxsmith._internal.cli import render, schema
from boxsmith._internal.render.outputs import write_atomic
from boxsmith.config import Settings, load_settings
from boxsmith.errors import EXIT_OK, UsageError

__all__ = ["WORKFLOWS", "run", "starter_name"]

SCAFFOLD = files("boxsmith") / "_internal" / "scaffold"
WORKFLOWS = ("ci.yml", "templates.yml", "publish.yml")
STARTER = "starter.yaml"
TASKS_PY = (
    '"""invoke tasks: boxsmith\'s stages (`invoke --list`)."""\n'
    "\n"
    "from boxsmith.tasks import namespace as namespace  # the Collection invoke runs\n"
)
STATE = ".boxsmith/"
GITIGNORE = f"# boxsmith's machine-local state: the project lock, build logs, reports\n{STATE}\n"
TOOL_TABLE = {"specs_dir": "template_specs", "generated_dir": "generated"}


@dataclass(frozen=True)
class Planned:
    """One file init writes: its new bytes and what writing them does."""

    path: Path
    content: bytes
    action: str  # create, identical, overwrite (refused without force), update (amended)


def starter_name(directory: Path) -> str:
    """The starter template's name: the folder's name made an E2B name, then `-starter` (E2B
    names must not clash within a team, and `starter` alone would in many)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", directory.name.lower()).strip("-_")[:100]
    return f"{slug}-starter" if slug else "starter"


def run(
    directory: Path | str,
    *,
    out: TextIO,
    err: TextIO,
    force: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Scaffold a project in `directory`; exit 2 naming each file that exists with other
    content, unless `force`. `env` stands for the environment in settings (default: os.environ).
    """
    root = Path(os.path.abspath(directory))
    if root.exists() and not root.is_dir():
        raise UsageError(f"{directory} is not a folder", "name a folder (it may not exist yet)")
    amended = [_pyproject(root), _gitignore(root)]  # first: a broken pyproject.toml stops here
    settings = load_settings(root, env=env)
    whole = _whole_files(settings, starter_name(root))
    refused = [p for p in whole if p.action == "overwrite"]
    if refused and not force:
        shown = ", ".join(settings.display(p.path) for p in refused)
        raise UsageError(
            f"boxsmith init would overwrite {len(refused)} file(s) that differ from its own: "
            f"{shown}; nothing was written",
            "move them away, or run `boxsmith init --force` to overwrite them",
        )
    for planned in [*whole, *amended]:
        if planned.action != "identical":
            write_atomic(planned.path, planned.content)
        out.write(f"{planned.action:<9} {settings.display(planned.path)}\n")
    code = schema.run(settings, None, out=out, err=err)
    code = code or render.run(settings, [], [], out=out, err=err)
    if code == EXIT_OK:
        _next_steps(settings, out)
    return code


def _whole_files(settings: Settings, name: str) -> list[Planned]:
    """The files init writes whole: the starter spec, tasks.py and the workflows."""
    starter = (SCAFFOLD / STARTER).read_text(encoding="utf-8")
    wanted = {
        settings.specs_dir / STARTER: starter.replace("\nname: starter\n", f"\nname: {name}\n"),
        settings.root / "tasks.py": TASKS_PY,
    }
    for workflow in WORKFLOWS:
        text = (SCAFFOLD / "workflows" / workflow).read_text(encoding="utf-8")
        wanted[settings.root / ".github" / "workflows" / f"boxsmith-{workflow}"] = text
    planned = []
    for path, text in wanted.items():
        content = text.encode()
        if not path.exists():
            action = "create"
        elif path.is_file() and path.read_bytes() == content:
            action = "identical"
        else:
            action = "overwrite"
        planned.append(Planned(path, content, action))
    return planned


def _gitignore(root: Path) -> Planned:
    """.gitignore with `.boxsmith/` appended, unless a line ignores it already."""
    path = root / ".gitignore"
    old = path.read_bytes() if path.is_file() else b""
    ignored = {line.strip() for line in old.decode(errors="replace").splitlines()}
    if ignored & {".boxsmith", STATE, "/.boxsmith", f"/{STATE}"}:
        return Planned(path, old, "identical")
    return Planned(path, old + _separator(old) + GITIGNORE.encode(), "update" if old else "create")


def _separator(old: bytes) -> bytes:
    """What goes between a file's bytes and lines appended to it: a blank line."""
    if not old or old.endswith(b"\n\n"):
        return b""
    return b"\n" if old.endswith(b"\n") else b"\n\n"


def _pyproject(root: Path) -> Planned:
    """pyproject.toml with `[tool.boxsmith]` appended (created when there is none); one that
    has the table already is kept as it is."""
    path = root / "pyproject.toml"
    old = path.read_bytes() if path.is_file() else b""
    try:
        before = tomllib.loads(old.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{path}: {exc}", "fix it (TOML, UTF-8), then run boxsmith init again"
        ) from exc
    tool = before.get("tool")
    if isinstance(tool, dict) and "boxsmith" in tool:
        return Planned(path, old, "identical")
    table = tomlkit.table()
    table.add(tomlkit.comment("where the specs are and where boxsmith renders them (the defaults)"))
    for key, value in TOOL_TABLE.items():
        table.add(key, value)
    added = tomlkit.dumps({"tool": {"boxsmith": table}}).encode()
    new = old + _separator(old) + added
    try:
        after = tomllib.loads(new.decode())
    except tomllib.TOMLDecodeError:
        after = {}
    table_after = after.get("tool", {}).pop("boxsmith", None)
    if after.get("tool") == {} and "tool" not in before:
        del after["tool"]
    if table_after != TOOL_TABLE or after != before:
        raise UsageError(  # an inline `tool = {...}` cannot take a [tool.boxsmith] table after it
            f"{path}: cannot append a [tool.boxsmith] table to it",
            'add one by hand (`[tool.boxsmith]` then specs_dir = "template_specs"), then run '
            "boxsmith init again",
        )
    return Planned(path, new, "update" if old else "create")


def _next_steps(settings: Settings, out: TextIO) -> None:
    """The commands to run next, each with why."""
    here, root = Path.cwd(), settings.root
    steps = [] if root == here else [(f"cd {os.path.relpath(root, here)}", "")]
    steps += [
        ("pip install 'boxsmith[all]'", "release lints, builds and runs the local backend"),
        ("boxsmith release", "build, smoke-test, publish to the local backend, smoke a sandbox"),
        ("invoke --list", "the same stages as invoke tasks (tasks.py)"),
        (
            "git add .gitignore pyproject.toml tasks.py .github "
            f"{settings.display(settings.specs_dir)} {settings.display(settings.generated_dir)}",
            "",
        ),
    ]
    width = max(len(command) for command, why in steps if why)
    out.write("\nnext:\n")
    for command, why in steps:
        out.write(f"  {command:<{width}}  # {why}\n" if why else f"  {command}\n")
    out.write(
        "then, to publish to E2B from main: the E2B_API_KEY and BOXSMITH_PR_TOKEN secrets\n"
        "  (the top of .github/workflows/boxsmith-publish.yml says which and why)\n"
    )
