"""Test helpers: build a project tree inline and run the CLI in-process."""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

from boxsmith.cli import main

MINIMAL = """\
name: {name}
version: "1.0.0"
description: test template
base_image: debian:bookworm-slim
"""


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `{relative path: content}` under root (text is dedented); return root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes (to assert nothing was written)."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class Run:
    """Result of an in-process CLI run."""

    code: int
    out: str
    err: str


def cli(root: Path, *args: str) -> Run:
    """Run `boxsmith -C root args...` in-process."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["-C", str(root), *args], out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())
