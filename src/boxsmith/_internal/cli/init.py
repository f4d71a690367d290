"""`boxsmith init [DIR]`: start a project in DIR (default: the current folder).

It writes a starter spec that builds offline and passes its smoke checks, the spec schema its
`$schema` line names, the rendered generated/ folder, `.boxsmith/` in .gitignore,
`[tool.boxsmith]` in pyproject.toml, a tasks.py importing boxsmith's invoke tasks
(`boxsmith.tasks`) and the GitHub workflows: the files in `boxsmith/_internal/scaffold/workflows/`
named `.github/workflows/boxsmith-<name>.yml` (a repository's own ci.yml stays), with boxsmith
pinned to this version (another may render other bytes: the drift gate would turn red) and
their places made the project's (`Layout`): the specs and generated folders of an existing
`[tool.boxsmith]`, and for a project in a sub-folder of a git repository, the workflows at the
repository's top (where GitHub reads them), their jobs run in the sub-folder.

Everything is checked before anything is written: a file that exists with other content is
refused (exit 2, each one named) unless `force`; so are what the render would refuse (an
invalid spec, another spec with the starter's name, a generated folder that is not boxsmith's,
a broken index) and folders the workflows cannot name. .gitignore and pyproject.toml are
amended, never replaced (their bytes stay, the lines are appended; an existing
`[tool.boxsmith]` is kept). Each file is reported as `create`, `identical`, `overwrite` or
`update`, then the commands to run next.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TextIO

import tomlkit
import yaml

from boxsmith import __version__
from boxsmith._internal.cli import render, schema
from boxsmith._internal.render.outputs import write_atomic
from boxsmith._internal.render.pipeline import claimed_index
from boxsmith._internal.spec.catalog import spec_files
from boxsmith._internal.spec.loader import load
from boxsmith.config import Settings, load_settings
from boxsmith.errors import EXIT_OK, UsageError

__all__ = ["WORKFLOWS", "Layout", "repository_top", "run", "starter_name", "workflow"]

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


def repository_top(folder: Path) -> Path | None:
    """The top of the git repository `folder` is in (itself or the nearest folder above it
    holding a `.git`, a folder or, in a worktree or submodule, a file), as git finds it; None
    outside any. `folder` need not exist yet."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


# What a folder the workflows name may hold: a path filter, a YAML value and a shell word take
# these as they are (quoted where needed); glob characters (* ? [ ] ! +), quotes, `$`, `#`, `:`
# and `\` would change what a filter matches or how a line parses.
_NAMEABLE = re.compile(r"[\w .@,=~/-]+")
_BARE = re.compile(r"[\w./][\w./-]*")
_INSTALL = re.compile(r"pip install '?boxsmith(\[[a-z0-9,-]+\])?'?")


@dataclass(frozen=True)
class Layout:
    """Where the workflows go and the places they name, relative to the repository's top.

    Attributes:
        top: the git repository's top (`repository_top`), or the project root outside one
            (it becomes the repository's top when `git init` runs there).
        project: the project root, relative to `top` ("." when it is the top): the jobs that
            run boxsmith run there (`working-directory`).
        specs: the specs folder, relative to `top` (path filters).
        generated: the generated folder, relative to `top` (path filters, the records job).
        generated_here: the generated folder, relative to the project root (the steps there).
    """

    top: Path
    project: str
    specs: str
    generated: str
    generated_here: str

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        """The layout of the project `settings` describe.

        Raises:
            UsageError: a folder outside the repository, or one the workflows cannot name.
        """
        top = repository_top(settings.root) or settings.root
        places = {
            "the project folder": settings.root,
            "specs_dir": settings.specs_dir,
            "generated_dir": settings.generated_dir,
        }
        named = {what: Path(os.path.relpath(path, top)).as_posix() for what, path in places.items()}
        for what, rel in named.items():
            if rel == ".." or rel.startswith("../"):
                raise UsageError(
                    f"{what} {places[what]} is outside the repository at {top}, so its GitHub "
                    "workflows cannot watch it; nothing was written",
                    "set specs_dir and generated_dir in [tool.boxsmith] to folders inside it",
                )
            if not _NAMEABLE.fullmatch(rel):
                raise UsageError(
                    f"{what} {rel!r} (from {top}) has a character the GitHub workflows cannot "
                    "name as it is; nothing was written",
                    "rename the folder: letters, digits, spaces and . _ - @ , = ~ only",
                )
        return cls(
            top=top,
            project=named["the project folder"],
            specs=named["specs_dir"],
            generated=named["generated_dir"],
            generated_here=Path(os.path.relpath(settings.generated_dir, settings.root)).as_posix(),
        )

    def at(self, rel: str) -> str:
        """A path of the project (relative to its root) relative to the repository's top."""
        return rel if self.project == "." else f"{self.project}/{rel}"


def workflow(name: str, layout: Layout) -> str:
    """The scaffold's workflow `name` as init writes it for `layout`: each `pip install` of
    boxsmith pinned to this version, and each line that names a place naming the project's
    (the scaffold names the defaults of a project at the repository's top)."""
    text = (SCAFFOLD / "workflows" / name).read_text(encoding="utf-8")
    text = _INSTALL.sub(
        lambda m: (
            f"pip install 'boxsmith{m[1]}=={__version__}'"
            if m[1]
            else f"pip install boxsmith=={__version__}"
        ),
        text,
    )
    places = {
        "working-directory: .": f"working-directory: {_yaml(layout.project)}",
        "cache-dependency-path: pyproject.toml": (
            f"cache-dependency-path: {_yaml(layout.at('pyproject.toml'))}"
        ),
        '- "pyproject.toml"': f"- {_quoted(layout.at('pyproject.toml'))}",
        '- "template_specs/**"': f"- {_quoted(_below(layout.specs))}",
        '- "generated/**"': f"- {_quoted(_below(layout.generated))}",
        "path: reports/": f"path: {_yaml(layout.at('reports/'))}",
        "path: .boxsmith/reports/": f"path: {_yaml(layout.at('.boxsmith/reports/'))}",
        "path: records.patch": f"path: {_yaml(layout.at('records.patch'))}",  # made in project
        "git diff --binary -- generated > records.patch": (
            f"git diff --binary -- {shlex.quote(layout.generated_here)} > records.patch"
        ),
        "git add generated": f"git add {shlex.quote(layout.generated)}",  # at the top
    }
    lines = text.splitlines(keepends=True)
    return "".join(
        line.replace(line.strip(), places[line.strip()], 1) if line.strip() in places else line
        for line in lines
    )


def _below(folder: str) -> str:
    """A path filter for everything below `folder` (relative to the top)."""
    return "**" if folder == "." else f"{folder}/**"


def _yaml(value: str) -> str:
    """`value` as a YAML string: as it is where YAML reads it back as that string."""
    return value if _BARE.fullmatch(value) and yaml.safe_load(value) == value else _quoted(value)


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def run(
    directory: Path | str,
    *,
    out: TextIO,
    err: TextIO,
    force: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Scaffold a project in `directory`; exit 2 naming each file that exists with other
    content, unless `force`, or what the render would refuse, with nothing written. `env`
    stands for the environment in settings (default: os.environ).
    """
    root = Path(os.path.abspath(directory))
    if root.exists() and not root.is_dir():
        raise UsageError(f"{directory} is not a folder", "name a folder (it may not exist yet)")
    amended = [_pyproject(root), _gitignore(root)]  # first: a broken pyproject.toml stops here
    settings = load_settings(root, env=env)
    layout = Layout.of(settings)
    name = starter_name(root)
    whole = _whole_files(settings, name, layout)
    refused = [p for p in whole if p.action == "overwrite"]
    if refused and not force:
        shown = ", ".join(_display(settings, p.path) for p in refused)
        raise UsageError(
            f"boxsmith init would overwrite {len(refused)} file(s) that differ from its own: "
            f"{shown}; nothing was written",
            "move them away, or run `boxsmith init --force` to overwrite them",
        )
    _preflight(settings, name)
    for planned in [*whole, *amended]:
        if planned.action != "identical":
            write_atomic(planned.path, planned.content)
        out.write(f"{planned.action:<9} {_display(settings, planned.path)}\n")
    code = schema.run(settings, None, out=out, err=err)
    code = code or render.run(settings, [], [], out=out, err=err)
    if code == EXIT_OK:
        _next_steps(settings, layout, out)
    return code


def _display(settings: Settings, path: Path) -> str:
    """A path as init lists it: relative to the project root (`..` up to a repository's top)."""
    return Path(os.path.relpath(path, settings.root)).as_posix()


def _whole_files(settings: Settings, name: str, layout: Layout) -> list[Planned]:
    """The files init writes whole: the starter spec, tasks.py and the workflows."""
    starter = (SCAFFOLD / STARTER).read_text(encoding="utf-8")
    wanted = {
        settings.specs_dir / STARTER: starter.replace("\nname: starter\n", f"\nname: {name}\n"),
        settings.root / "tasks.py": TASKS_PY,
    }
    for file in WORKFLOWS:
        wanted[layout.top / ".github" / "workflows" / f"boxsmith-{file}"] = workflow(file, layout)
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


def _preflight(settings: Settings, name: str) -> None:
    """Refuse, before anything is written, what the render after the writes would refuse: a
    generated folder that is not boxsmith's or holds a broken index, an invalid spec (every
    issue of every file, as `validate` reports them) and another spec of the starter's name.
    The starter itself is init's own, valid by construction."""
    starter = settings.specs_dir / STARTER
    try:
        claimed_index(settings)
    except UsageError as exc:
        raise UsageError(f"{exc.message}; nothing was written", exc.hint) from exc
    others = (
        [p for p in spec_files(settings) if p != starter] if settings.specs_dir.is_dir() else []
    )
    for template in load(settings, others).templates:  # SpecError: "...; nothing was written"
        if template.name == name:
            raise UsageError(
                f"{template.spec_file} defines the template {name!r}, the starter's name, which "
                f"init would write to {settings.display(starter)}; nothing was written",
                f"rename that template (`name:`), or move its file to {settings.display(starter)}",
            )


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


def _next_steps(settings: Settings, layout: Layout, out: TextIO) -> None:
    """The commands to run next, each with why."""
    here, root = Path.cwd(), settings.root
    steps = [] if root == here else [(f"cd {shlex.quote(os.path.relpath(root, here))}", "")]
    workflows = _display(settings, layout.top / ".github")
    added = [".gitignore", "pyproject.toml", "tasks.py", workflows]
    added += [settings.display(settings.specs_dir), settings.display(settings.generated_dir)]
    steps += [
        (
            f"pip install 'boxsmith[all]=={__version__}'",
            "release lints, builds and runs the local backend",
        ),
        ("boxsmith release", "build, smoke-test, publish to the local backend, smoke a sandbox"),
        ("invoke --list", "the same stages as invoke tasks (tasks.py)"),
        (f"git add {shlex.join(added)}", ""),
    ]
    width = max(len(command) for command, why in steps if why)
    out.write("\nnext:\n")
    for command, why in steps:
        out.write(f"  {command:<{width}}  # {why}\n" if why else f"  {command}\n")
    if layout.project != ".":
        out.write(
            f"the workflows are in {workflows}/workflows/, at the top of the git repository "
            f"(GitHub reads them there); their jobs run in {layout.project}\n"
        )
    out.write(
        "then, to publish to E2B from main: the E2B_API_KEY and BOXSMITH_PR_TOKEN secrets\n"
        f"  (the top of {workflows}/workflows/boxsmith-publish.yml says which and why)\n"
    )
