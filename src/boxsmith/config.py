"""Project settings: where specs, generated output and the schema live.

Precedence, resolved in one place (`load_settings`): explicit arguments (the CLI's flags) over
environment variables (`BOXSMITH_SPECS_DIR`, `BOXSMITH_GENERATED_DIR`) over `[tool.boxsmith]` in the
project's pyproject.toml over built-in defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from boxsmith.errors import UsageError

__all__ = ["Settings", "load_settings"]

_DEFAULTS = {
    "specs_dir": "template_specs",
    "generated_dir": "generated",
    "schema_path": "template_specs/boxsmith.schema.json",
}
_ENV = {"specs_dir": "BOXSMITH_SPECS_DIR", "generated_dir": "BOXSMITH_GENERATED_DIR"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved, absolute locations for one project."""

    root: Path
    specs_dir: Path
    generated_dir: Path
    schema_path: Path

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
    unknown = set(table) - set(_DEFAULTS)
    if unknown:
        raise UsageError(
            f"pyproject.toml: unknown [tool.boxsmith] key(s): {', '.join(sorted(unknown))}",
            f"known keys: {', '.join(sorted(_DEFAULTS))}",
        )
    values: dict[str, Path] = {}
    for key, default in _DEFAULTS.items():
        raw = overrides.get(key) or environ.get(_ENV.get(key, ""), "") or table.get(key) or default
        path = Path(raw)
        values[key] = path if path.is_absolute() else base / path
    return Settings(root=base, **values)


def _read_tool_table(pyproject: Path) -> dict[str, str]:
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
    return {str(k): str(v) for k, v in table.items()}
