"""Project settings: where specs, generated output and the schema live.

Precedence, resolved in one place (`load_settings`): explicit arguments (the CLI's flags) over
environment variables (`BOXSMITH_SPECS_DIR`, `BOXSMITH_GENERATED_DIR`) over `[tool.boxsmith]` in the
project's pyproject.toml over built-in defaults.

`[tool.boxsmith.mirrors]` holds the base-image mirror map (`boxsmith.images`): image reference or
fnmatch pattern -> `stand-in:<recipe>` or a reference to pull instead (`{ref}`, `{name}`, `{tag}`
are replaced); an empty value removes a built-in entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from boxsmith.errors import UsageError, Value

__all__ = ["Settings", "load_settings"]

_DEFAULTS = {
    "specs_dir": "template_specs",
    "generated_dir": "generated",
    "schema_path": "template_specs/boxsmith.schema.json",
}
_TABLES = ("mirrors",)
_ENV = {"specs_dir": "BOXSMITH_SPECS_DIR", "generated_dir": "BOXSMITH_GENERATED_DIR"}


class Settings(Value):
    """Resolved, absolute locations for one project."""

    __slots__ = ("generated_dir", "mirror_entries", "root", "schema_path", "specs_dir")
    root: Path
    specs_dir: Path
    generated_dir: Path
    schema_path: Path
    mirror_entries: tuple[tuple[str, str], ...]

    def __init__(
        self,
        root: Path,
        specs_dir: Path,
        generated_dir: Path,
        schema_path: Path,
        mirror_entries: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._init(
            root=root,
            specs_dir=specs_dir,
            generated_dir=generated_dir,
            schema_path=schema_path,
            mirror_entries=mirror_entries,
        )

    @property
    def mirrors(self) -> dict[str, str]:
        """`[tool.boxsmith.mirrors]`, in file order."""
        return dict(self.mirror_entries)

    @property
    def state_dir(self) -> Path:
        """Machine-local state (never committed): stamps, build logs, reports."""
        return self.root / ".boxsmith"

    def display(self, path: Path) -> str:
        """A path as users see it: relative to the project root, with forward slashes."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def load_settings(
    root: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: str | Path | None,
) -> Settings:
    """Resolve settings for the project at `root` (default: the current directory).

    Args:
        root: project root; pyproject.toml there may hold a `[tool.boxsmith]` table.
        env: environment to read overrides from (default: `os.environ`).
        **overrides: explicit values (`specs_dir`, `generated_dir`, `schema_path`); None is unset.
    """
    base = Path(root if root is not None else Path.cwd()).resolve()
    environ = os.environ if env is None else env
    table = _read_tool_table(base / "pyproject.toml")
    known = {*_DEFAULTS, *_TABLES}
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
        raw = overrides.get(key) or environ.get(_ENV.get(key, ""), "") or value or default
        path = Path(raw)
        values[key] = path if path.is_absolute() else base / path
    return Settings(root=base, mirror_entries=_string_table(table, "mirrors"), **values)


def _string_table(table: Mapping[str, object], key: str) -> tuple[tuple[str, str], ...]:
    raw = table.get(key, {})
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise UsageError(
            f"pyproject.toml: [tool.boxsmith.{key}] must be a table of strings",
            f'write e.g. [tool.boxsmith.{key}] then "node:*" = "mirror.example/library/{{ref}}"',
        )
    return tuple((str(k), str(v)) for k, v in raw.items())


def _read_tool_table(pyproject: Path) -> dict[str, object]:
    if not pyproject.is_file():
        return {}
    text = pyproject.read_text(encoding="utf-8")
    if "[tool.boxsmith" not in text.replace(" ", ""):  # skip the TOML parser when unused
        return {}
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{pyproject}: {exc}", "fix the TOML syntax") from exc
    table = data.get("tool", {}).get("boxsmith", {})
    return {str(k): v for k, v in table.items()}
