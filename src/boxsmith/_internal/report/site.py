"""Write the site: gather its data (`data.collect`), make every page in a staging folder beside
the target, then put it in place of the previous site in two renames, so a reader (or a Pages
upload) never sees half a site. A folder that holds something else is never replaced."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from boxsmith._internal.report.catalog import catalog_page, page_name
from boxsmith._internal.report.data import Site, collect
from boxsmith._internal.report.layout import ASSETS
from boxsmith._internal.report.template_page import template_page
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = ["MARKER", "write_site"]

MARKER = ".boxsmith-report"
"""The file that says a folder is a site boxsmith wrote (and may replace)."""
_PNG = b"\x89PNG\r\n\x1a\n"


def write_site(settings: Settings, out: Path) -> tuple[Path, Site]:
    """Write the catalog site into `out`; (its index.html, what it shows).

    Raises:
        UsageError: `out` is a file, or a folder with files that are not a boxsmith site.
    """
    _check_target(settings, out)
    site = collect(settings)
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write(site, staging, settings)
        _swap(staging, out)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {settings.display(out)}: {exc.strerror or exc}",
            "choose a folder you can write with --out",
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html", site


def _check_target(settings: Settings, out: Path) -> None:
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file()):
        raise UsageError(
            f"{settings.display(out)} exists and is not a site `boxsmith report` wrote",
            "choose another folder with --out, or remove that one",
        )


def _write(site: Site, folder: Path, settings: Settings) -> None:
    (folder / "t").mkdir(parents=True)
    files = {**ASSETS, MARKER: "", "index.html": catalog_page(site)}
    copies: dict[Path, str] = {}

    def shot(named: str, report: Path) -> str | None:
        """Copy a screenshot the smoke report names into shots/; its path in the site."""
        source = _find_png(named, [report.parent, settings.root, settings.state_dir / "reports"])
        if source is None:
            return None
        if source not in copies:
            copies[source] = f"shots/{len(copies) + 1}.png"  # nothing a URL must escape
            (folder / "shots").mkdir(exist_ok=True)
            shutil.copyfile(source, folder / copies[source])
        return copies[source]

    for view in site.templates:
        files[page_name(view)] = template_page(view, site.lint_note, shot)
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")


def _find_png(named: str, bases: list[Path]) -> Path | None:
    """The PNG file `named` (absolute, or relative to one of `bases`); None when none is."""
    path = Path(named)
    for candidate in [path] if path.is_absolute() else [base / path for base in bases]:
        try:
            with candidate.open("rb") as handle:
                if handle.read(len(_PNG)) == _PNG:
                    return candidate.resolve()
        except OSError:
            continue
    return None


def _swap(staging: Path, out: Path) -> None:
    """`staging` becomes `out`; the previous site (if any) is removed after."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
        return
    old = out.parent / f".{out.name}.{os.getpid()}.old"
    shutil.rmtree(old, ignore_errors=True)
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
