"""`boxsmith report`: write the catalog site (`boxsmith._internal.report`) and print the path of
its index.html (with `--json`: that path and the pages).

Reads as `boxsmith status` does (no build, no publish, no network) and runs lint in-process when
hadolint is installed. Exit 0 once the site is written, whatever state it shows (drift, failed
smoke runs are shown, not failures); 2 when DIR cannot be used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from boxsmith._internal.report.catalog import page_name
from boxsmith._internal.report.site import write_site
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK

__all__ = ["default_folder", "run"]


def default_folder(settings: Settings) -> Path:
    """`.boxsmith/report/`: machine-local, beside the history it draws from."""
    return settings.state_dir / "report"


def run(
    settings: Settings,
    output: str | None = None,
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Write the site into `output` (relative: to the project root; default `.boxsmith/report`)."""
    folder = Path(output) if output else default_folder(settings)
    if not folder.is_absolute():
        folder = settings.root / folder
    index, site = write_site(settings, folder)
    for line in site.notes.splitlines():
        err.write(f"report: {line.removeprefix('status: ')}\n")
    if as_json:
        pages = [page_name(view) for view in site.templates]
        data = {"index": str(index), "templates": len(site.templates), "pages": pages}
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        out.write(f"{index}\n")
    err.write(
        f"ok: report of {len(site.templates)} template(s) written to {settings.display(folder)}/\n"
    )
    return EXIT_OK
