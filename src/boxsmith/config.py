"""Project settings: where the project is, and where specs, generated output and the schema live.

The project root, when none is given (the CLI's `-C/--root`), is found as git and ruff find
theirs (`find_root`): the nearest folder, from the current one up to the filesystem root, that
holds a pyproject.toml with a `[tool.boxsmith]` table or a `template_specs/` folder (the default
specs folder); none: the current folder. Like git and ruff, the walk does not stop at $HOME.

Precedence, resolved in one place (`load_settings`): explicit arguments (the CLI's flags) over
environment variables (`BOXSMITH_SPECS_DIR`, `BOXSMITH_GENERATED_DIR`) over `[tool.boxsmith]` in the
project's pyproject.toml over built-in defaults. A relative path in the environment or
pyproject.toml is relative to the project root (found or given), never to the current folder,
so they mean the same folders from anywhere inside the project. (The CLI makes a relative path
flag absolute first, against the folder the command runs in, as git and ruff do.)

Run settings come from the environment (or a flag) only, never from pyproject.toml: they are
about this machine and this run, not the project. `BOXSMITH_NO_WAIT=1` (the CLI's `--no-wait`):
a state-changing command refuses (exit 3) instead of waiting while another run holds the
project's lock (`boxsmith._internal.lock`). `BOXSMITH_CONTAINER_LIFETIME=<seconds>`: the most a
container boxsmith starts for `smoke --local` lives, even when boxsmith is killed (default: sized
from the ready timeout and the smoke checks' timeouts, `boxsmith._internal.smoke.container_target`).

`template_py = true` in `[tool.boxsmith]` renders, next to each e2b.toml and e2b.Dockerfile, a
`template.py` that builds the same template with the e2b SDK's Template builder
(`boxsmith._internal.render.template_py`); off by default.

`[tool.boxsmith.mirrors]` holds the base-image mirror map (`boxsmith._internal.build.base_images`):
image reference or fnmatch pattern -> `stand-in:<recipe>` or a reference to pull instead (`{ref}`,
`{name}`, `{tag}` are replaced); an empty value removes a built-in entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from boxsmith.errors import UsageError

__all__ = ["Settings", "find_root", "load_settings", "project_id", "root_marker"]

_log = logging.getLogger(__name__)

_DEFAULTS = {
    "specs_dir": "template_specs",
    "generated_dir": "generated",
    "schema_path": "template_specs/boxsmith.schema.json",
}
_SPECS = _DEFAULTS["specs_dir"]  # a folder holding it is a project root (`find_root`)
_TABLES = ("mirrors",)
_FLAGS = ("template_py",)  # booleans of the project, not paths
_ENV = {"specs_dir": "BOXSMITH_SPECS_DIR", "generated_dir": "BOXSMITH_GENERATED_DIR"}
NO_WAIT_ENV = "BOXSMITH_NO_WAIT"
LIFETIME_ENV = "BOXSMITH_CONTAINER_LIFETIME"


@dataclass(frozen=True)
class Settings:
    """Resolved, absolute locations for one project, and the run settings.

    Attributes:
        template_py: render a `template.py` (the e2b SDK's Template builder) next to each
            e2b.toml (`template_py = true` in `[tool.boxsmith]`).
        no_wait: refuse (exit 3) instead of waiting for another run's project lock.
        container_lifetime: seconds a `smoke --local` container lives at most; None to size it
            from the ready timeout and the checks.
    """

    root: Path
    specs_dir: Path
    generated_dir: Path
    schema_path: Path
    mirror_entries: tuple[tuple[str, str], ...] = ()
    template_py: bool = field(default=False, kw_only=True)
    no_wait: bool = field(default=False, kw_only=True)
    container_lifetime: float | None = field(default=None, kw_only=True)

    @property
    def mirrors(self) -> dict[str, str]:
        """`[tool.boxsmith.mirrors]`, in file order."""
        return dict(self.mirror_entries)

    @property
    def state_dir(self) -> Path:
        """Machine-local state (never committed): stamps, build logs, reports."""
        return self.root / ".boxsmith"

    @property
    def project_id(self) -> str:
        """A short id of the project root, for labels on what boxsmith starts for it."""
        return project_id(self.root)

    def display(self, path: Path) -> str:
        """A path as users see it: relative to the project root, with forward slashes."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def project_id(root: Path) -> str:
    """A short id of the project at `root`: the label boxsmith puts on containers it starts for
    the project (`boxsmith._internal.docker.client.PROJECT_LABEL`)."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]


def find_root(start: Path | str | None = None) -> Path:
    """The project root for a command run in `start` (default: the current folder).

    The nearest of `start` and the folders above it that holds a pyproject.toml with a
    `[tool.boxsmith]` table or a `template_specs/` folder; `start` itself when none does. A
    pyproject.toml that says `[tool.boxsmith]` but is not valid TOML (or not UTF-8) stops the
    walk with a UsageError naming it, as the settings of that root would.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        why = root_marker(folder)
        if why:
            _log.debug("project root %s (it holds %s)", folder, why)
            return folder
    _log.debug("no project root above %s (no [tool.boxsmith], no %s/)", here, _SPECS)
    return here


_TOOL_TABLE = b"[tool.boxsmith"


def root_marker(folder: Path) -> str:
    """What makes `folder` a project root ("" when nothing does): `template_specs/` or
    `pyproject.toml with [tool.boxsmith]`."""
    if (folder / _SPECS).is_dir():
        return f"{_SPECS}/"
    pyproject = folder / "pyproject.toml"
    try:
        raw = pyproject.read_bytes() if pyproject.is_file() else b""
        # only a file that says [tool.boxsmith] is read as TOML (another project's, not UTF-8
        # or broken, is not ours to judge)
        table = _read_tool_table(pyproject) if _TOOL_TABLE in raw.replace(b" ", b"") else None
    except OSError:  # unreadable (no permission): not this folder
        return ""
    return "pyproject.toml with [tool.boxsmith]" if table is not None else ""


def load_settings(
    root: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    no_wait: bool | None = None,
    **overrides: str | Path | None,
) -> Settings:
    """Resolve settings for the project at `root` (default: `find_root()` from the current folder).

    Args:
        root: project root, used as given; pyproject.toml there may hold a `[tool.boxsmith]`
            table. Relative paths in the settings resolve against it.
        env: environment to read overrides from (default: `os.environ`).
        no_wait: the `--no-wait` flag; None leaves it to BOXSMITH_NO_WAIT.
        **overrides: explicit values (`specs_dir`, `generated_dir`, `schema_path`); None is unset.
    """
    base = Path(root).resolve() if root is not None else find_root()
    environ = os.environ if env is None else env
    table = _read_tool_table(base / "pyproject.toml") or {}
    known = {*_DEFAULTS, *_TABLES, *_FLAGS}
    unknown = set(table) - known
    if unknown:
        raise UsageError(
            f"pyproject.toml: unknown [tool.boxsmith] key(s): {', '.join(sorted(unknown))}",
            f"known keys: {', '.join(sorted(known))}",
        )
    values: dict[str, Path] = {}
    for key, default in _DEFAULTS.items():
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise UsageError(
                f"pyproject.toml: [tool.boxsmith] {key} must be a string, got {value!r}",
                f'write {key} = "{default}"',
            )
        raw = overrides.get(key) or environ.get(_ENV.get(key, ""), "") or value
        if not raw and key == "schema_path":  # unset: the schema lives with the specs
            values[key] = values["specs_dir"] / Path(default).name
            continue
        path = Path(raw or default)
        values[key] = path if path.is_absolute() else base / path
    return Settings(
        root=base,
        mirror_entries=_string_table(table, "mirrors"),
        template_py=_table_flag(table, "template_py"),
        no_wait=no_wait if no_wait is not None else _flag(environ, NO_WAIT_ENV),
        container_lifetime=_seconds(environ, LIFETIME_ENV),
        **values,
    )


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise UsageError(f"{name} must be 1 or 0, got {raw!r}", f"set {name}=1, or unset it")


def _seconds(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"{name} must be a positive number of seconds, got {raw!r}",
            f"set e.g. {name}=900, or unset it",
        )
    return value


def _table_flag(table: Mapping[str, object], key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(
            f"pyproject.toml: [tool.boxsmith] {key} must be true or false, got {value!r}",
            f"write {key} = true (TOML booleans are unquoted)",
        )
    return value


def _string_table(table: Mapping[str, object], key: str) -> tuple[tuple[str, str], ...]:
    raw = table.get(key, {})
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise UsageError(
            f"pyproject.toml: [tool.boxsmith.{key}] must be a table of strings",
            f'write e.g. [tool.boxsmith.{key}] then "node:*" = "mirror.example/library/{{ref}}"',
        )
    return tuple((str(k), str(v)) for k, v in raw.items())


def _read_tool_table(pyproject: Path) -> dict[str, object] | None:
    """The `[tool.boxsmith]` table of `pyproject`; None when there is no such file or table."""
    if not pyproject.is_file():
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{pyproject}: not UTF-8 ({exc.reason} at byte {exc.start})",
            "save pyproject.toml as UTF-8, as TOML requires",
        ) from exc
    if "[tool.boxsmith" not in text.replace(" ", ""):  # skip the TOML parser when unused
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{pyproject}: {exc}", "fix the TOML syntax") from exc
    table = data.get("tool", {}).get("boxsmith")
    if not isinstance(table, dict):
        return None
    return {str(k): v for k, v in table.items()}
