"""`boxsmith validate`: check every spec, report all errors at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.spec.catalog import load_catalog
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, SpecError


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Validate the specs; print the templates found (or, with `as_json`, the errors too)."""
    try:
        catalog = load_catalog(settings)
    except SpecError as exc:
        if not as_json:
            raise
        json.dump({"ok": False, "errors": [i.to_json() for i in exc.issues]}, out, indent=2)
        out.write("\n")
        return exc.exit_code
    templates = catalog.select(names, labels)
    if as_json:
        json.dump(
            {
                "ok": True,
                "templates": [
                    {
                        "name": t.name,
                        "version": t.version,
                        "spec": t.spec_file,
                        "variant": t.variant,
                        "spec_hash": t.spec_hash,
                        "labels": t.spec.labels,
                    }
                    for t in templates
                ],
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        for t in templates:
            out.write(f"ok  {t.ref:<40} {t.spec_file}\n")
        err.write(f"{len(templates)} template(s) valid from {len(catalog.files)} spec file(s)\n")
    return EXIT_OK
