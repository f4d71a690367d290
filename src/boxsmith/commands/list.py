"""`boxsmith list`: templates, versions and their status, from the index."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from typing import Any, TextIO

from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK
from boxsmith.index import INDEX_FILE, load_index


def run(
    settings: Settings, names: Sequence[str], *, out: TextIO, err: TextIO, as_json: bool = False
) -> int:
    """Print one row per template version recorded in generated/index.json."""
    path = settings.generated_dir / INDEX_FILE
    index = load_index(path, settings.display(path))
    rows: list[dict[str, Any]] = []
    for name, versions in index.templates.items():
        if names and not any(fnmatch.fnmatchcase(name, pattern) for pattern in names):
            continue
        for version, entry in versions.items():
            targets = sorted({p.target for p in entry.publishes})
            rows.append(
                {
                    "name": name,
                    "version": version,
                    "status": f"published ({', '.join(targets)})" if targets else "rendered",
                    "spec": entry.spec,
                    "content_hash": entry.content_hash,
                    "publishes": [p.model_dump(mode="json") for p in entry.publishes],
                }
            )
    if as_json:
        json.dump({"templates": rows}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not rows:
        err.write(f"no templates in {settings.display(path)}; run `boxsmith render` first\n")
        return EXIT_OK
    widths = [
        max(
            len(str(r[k]))
            for r in [*rows, dict.fromkeys(("name", "version", "status", "spec"), "")]
        )
        for k in ("name", "version", "status", "spec")
    ]
    header = ("NAME", "VERSION", "STATUS", "SPEC")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for r in rows:
        cells = (r["name"], r["version"], r["status"], r["spec"])
        out.write(
            "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n"
        )
    return EXIT_OK
