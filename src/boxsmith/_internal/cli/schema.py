"""`boxsmith schema`: write the JSON Schema generated from the spec models."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from boxsmith._internal.render.outputs import write_atomic
from boxsmith._internal.spec.schema import schema_json
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK


def run(
    settings: Settings, output: str | None, *, out: TextIO, err: TextIO, to_stdout: bool = False
) -> int:
    """Write the schema to `output` (default: the configured schema path) or stdout."""
    text = schema_json()
    if to_stdout:
        out.write(text)
        return EXIT_OK
    target = Path(output) if output else settings.schema_path
    path = target if target.is_absolute() else settings.root / target
    action = (
        "identical"
        if path.is_file() and path.read_text(encoding="utf-8") == text
        else ("update" if path.exists() else "create")
    )
    if action != "identical":
        write_atomic(path, text.encode())
    out.write(f"{action:<9} {settings.display(path)}\n")
    return EXIT_OK
