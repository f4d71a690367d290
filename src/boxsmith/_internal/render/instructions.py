"""Turn a template's steps into Dockerfile instructions E2B accepts.

Single stage, no `COPY --from`, no `ADD`, no BuildKit-only flags (the classic builder and E2B's
`from_dockerfile` both read the result). It always ends with an explicit WORKDIR and USER: the
last ones in the Dockerfile become the sandbox's defaults, and E2B adds its own (`/home/user`,
`user`) only when the Dockerfile set none, so a step's WORKDIR could otherwise leave sandboxes
starting in a folder a later step deleted. Each instruction remembers the spec path it came from
(`Instruction.source`), so lint findings can point at the spec.
"""

from __future__ import annotations

import json
import re
import shlex

from boxsmith._internal.dockerfile.quoting import env_value
from boxsmith._internal.dockerfile.source_map import Instruction
from boxsmith._internal.spec.catalog import Template
from boxsmith._internal.spec.models import TemplateSpec
from boxsmith._internal.spec.steps import FileEntry, RunStep

__all__ = ["chmod_command", "instructions"]

ROOT = "root"
APT_INSTALL = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
APT_CLEANUP = "apt-get clean && rm -rf /var/lib/apt/lists/*"


def _shell_lines(commands: list[str]) -> str:
    return " \\\n    && ".join(commands)


def _env_args(env: dict[str, str]) -> str:
    return " \\\n    ".join(f"{key}={env_value(value)}" for key, value in env.items())


def _copy_args(src: str, dest: str, owner: str | None) -> str:
    flag = f"--chown={owner} " if owner else ""
    if any(ch.isspace() for ch in src + dest):
        return flag + json.dumps([src, dest])
    return f"{flag}{src} {dest}"


def chmod_command(mode: str, dest: str) -> str:
    """The chmod that gives the file a COPY wrote to `dest` its mode. `dest` is one shell word:
    bare when it is plain (`shlex.quote` leaves it as it is), else in double quotes, non-ASCII
    as it is, `\\`, `"` and a backtick escaped. `$VAR` stays live: Docker's COPY substitutes it
    in the destination (E2B's copy script too), so the shell must name the same path."""
    if shlex.quote(dest) == dest:
        return f"chmod {mode} {dest}"
    escaped = re.sub(r'([\\"`])', r"\\\1", dest)
    return f'chmod {mode} "{escaped}"'


class _Builder:
    def __init__(self) -> None:
        self.out: list[Instruction] = []
        self.user = ROOT

    def add(self, keyword: str, args: str, source: tuple[str | int, ...]) -> None:
        self.out.append(Instruction(keyword, args, source))

    def as_user(
        self, user: str | None, keyword: str, args: str, source: tuple[str | int, ...]
    ) -> None:
        """Emit one instruction as `user`, switching back afterwards (Dockerfiles have no
        per-RUN user, unlike E2B's steps)."""
        previous = self.user
        if user and user != previous:
            self.add("USER", user, source)
        self.add(keyword, args, source)
        if user and user != previous:
            self.add("USER", previous, source)

    def copy(self, entry: FileEntry, src: str, source: tuple[str | int, ...]) -> None:
        self.add("COPY", _copy_args(src, entry.dest, entry.owner), source)
        if entry.mode:
            self.as_user(ROOT, "RUN", chmod_command(entry.mode, entry.dest), source)


def _install(command: str, packages: list[str]) -> str:
    """`command` with the packages, sorted and once each, shell-quoted where they need it."""
    return " ".join([command, *(shlex.quote(p) for p in sorted(set(packages)))])


def _packages(b: _Builder, spec: TemplateSpec) -> None:
    """The package steps, each one RUN: apt (installed and cleaned in one layer), then pip as
    E2B's `pip_install()` runs it (`pip install ...` as root), then npm as `npm_install(g=True)`
    does (`npm install -g ...` as root). Like an E2B builder chain (`apt_install`, `pip_install`,
    then the app's files), they come before `files` and `steps`: a pip or npm package may need
    an apt one (a compiler, headers, Debian's npm), steps may use them, and files that change
    more often than the packages leave the packages' layers cached."""
    if spec.system_packages:
        apt = " ".join([APT_INSTALL, *sorted(set(spec.system_packages))])
        b.add("RUN", _shell_lines(["apt-get update", apt, APT_CLEANUP]), ("system_packages",))
    if spec.pip_packages:
        b.as_user(ROOT, "RUN", _install("pip install", spec.pip_packages), ("pip_packages",))
    if spec.npm_packages:
        b.as_user(ROOT, "RUN", _install("npm install -g", spec.npm_packages), ("npm_packages",))


def instructions(template: Template) -> list[Instruction]:
    """Every instruction of the template's Dockerfile, in order."""
    spec = template.spec
    b = _Builder()
    b.add("FROM", spec.base_image, ("base_image",))
    b.add("USER", ROOT, ("base_image",))  # as E2B: steps start as root whatever the base says
    if spec.env:
        b.add("ENV", _env_args(spec.env), ("env",))
    _packages(b, spec)
    for i, entry in enumerate(spec.files):
        b.copy(entry, template.copy_rel[("files", i)], ("files", i))
    for i, step in enumerate(spec.steps):
        where: tuple[str | int, ...] = ("steps", i)
        if isinstance(step.run, RunStep):
            b.as_user(step.run.user, "RUN", _shell_lines(step.run.commands), where)
        elif step.copy_ is not None:
            b.copy(step.copy_, template.copy_rel[("steps", i)], where)
        elif step.env is not None:
            b.add("ENV", _env_args(step.env), where)
        elif step.workdir is not None:
            b.add("WORKDIR", step.workdir, where)
        elif step.user is not None:
            b.add("USER", step.user, where)
            b.user = step.user
    b.add("WORKDIR", spec.workdir, ("workdir",))
    b.add("USER", spec.user, ("user",))
    return b.out
