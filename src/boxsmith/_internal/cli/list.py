"""`boxsmith list`: templates, versions and their status, from the index."""

from __future__ import annotations

import fnmatch
import json
import subprocess
from collections.abc import Sequence
from typing import Any, TextIO

from boxsmith._internal.cli.options import at_least_one
from boxsmith._internal.render.index import INDEX_FILE, Index, load_index
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, UsageError


def changed_since(settings: Settings, ref: str) -> set[str]:
    """Names of templates with a file under generated/<name>/ that differs from git `ref`.

    generated/ follows the specs (the drift gate, `boxsmith check`, keeps it so), so a change to
    a spec, a base it extends or a file it copies shows up there.
    """
    folder = settings.generated_dir
    try:
        done = subprocess.run(
            [
                "git",
                "-C",
                str(settings.root),
                "diff",
                "--name-only",
                "--relative",
                ref,
                "--",
                str(folder),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError as exc:
        raise UsageError("--changed-since needs git", "install git") from exc
    except subprocess.CalledProcessError as exc:
        raise UsageError(
            f"git cannot compare with {ref!r}: {exc.stderr.strip() or exc}",
            "fetch that ref first (actions/checkout with fetch-depth: 0)",
        ) from exc
    prefix = settings.display(folder).rstrip("/") + "/"
    changed = set()
    for line in done.stdout.splitlines():
        parts = line.removeprefix(prefix).split("/")
        if len(parts) >= 2:  # <name>/<version>/...; generated/index.json itself names none
            changed.add(parts[0])
    return changed


def split(names: Sequence[str], shards: int) -> list[list[str]]:
    """`names` in at most `shards` groups whose sizes differ by one at most, none empty, each
    in name order (round robin over the sorted names)."""
    count = min(shards, len(names))
    return [sorted(names)[i::count] for i in range(count)]


def run(
    settings: Settings,
    names: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
    changed_since_ref: str | None = None,
    shards: int | None = None,
) -> int:
    """Print one row per template version recorded in generated/index.json (with
    `changed_since_ref`, only templates whose generated files differ from that git ref; with
    `shards`, the JSON also splits the names into at most that many balanced groups)."""
    if shards is not None:
        at_least_one("--shards", shards, 20)
        if not as_json:
            raise UsageError("--shards needs --json", "use e.g. --json --shards 20")
    path = settings.generated_dir / INDEX_FILE
    index = load_index(path, settings.display(path))
    changed = changed_since(settings, changed_since_ref) if changed_since_ref else None
    rows = _rows(index, names, changed)
    if as_json:
        names_found = sorted({r["name"] for r in rows})
        data: dict[str, Any] = {"templates": rows, "names": names_found}
        if shards is not None:
            data["shards"] = split(names_found, shards)
        json.dump(data, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not rows and changed is not None:
        err.write(f"no template changed since {changed_since_ref}\n")
        return EXIT_OK
    if not rows:
        err.write(f"no templates in {settings.display(path)}; run `boxsmith render` first\n")
        return EXIT_OK
    _table(rows, out)
    return EXIT_OK


def _rows(index: Index, names: Sequence[str], changed: set[str] | None) -> list[dict[str, Any]]:
    """One row per recorded version of a template that `names` selects (and in `changed`)."""
    rows: list[dict[str, Any]] = []
    for name, versions in index.templates.items():
        if names and not any(fnmatch.fnmatchcase(name, pattern) for pattern in names):
            continue
        if changed is not None and name not in changed:
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
    return rows


def _table(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    """NAME, VERSION, STATUS and SPEC columns, each as wide as its longest cell."""
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
