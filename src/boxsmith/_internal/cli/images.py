"""`boxsmith images ensure`: make the base images local builds need available in Docker."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TextIO

from boxsmith._internal.build.base_images import Ensured, ensure_image, resolve_mirrors
from boxsmith._internal.cli.options import positive_seconds
from boxsmith._internal.docker.client import Engine
from boxsmith.config import Settings
from boxsmith.errors import EXIT_INFRA, EXIT_OK, BoxsmithError


def _spec_base_images(settings: Settings) -> list[str]:
    from boxsmith._internal.spec.catalog import load_catalog  # lazy: ~0.25 s, not for named images

    return sorted({t.spec.base_image for t in load_catalog(settings).templates})


def run(
    settings: Settings,
    refs: Sequence[str],
    *,
    out: TextIO,
    err: TextIO,
    mirrors: Mapping[str, str] | None = None,
    pull_timeout: int = 20,
    as_json: bool = False,
) -> int:
    """Ensure each image in `refs` (default: every spec's base image); exit 3 if any is missing.

    Results go to `out` (one line per image, or JSON); progress and errors go to `err`.
    """
    positive_seconds("--pull-timeout", pull_timeout, 20)
    wanted = list(dict.fromkeys(refs)) or _spec_base_images(settings)
    table = resolve_mirrors(mirrors)
    results: list[Ensured] = []
    failures: list[BoxsmithError] = []

    def progress(line: str) -> None:
        err.write(f"images: {line}\n")

    with Engine(err=err, project=settings.project_id) as engine:
        for ref in wanted:
            try:
                for item in ensure_image(
                    engine,
                    ref,
                    mirrors=table,
                    pull_timeout=pull_timeout,
                    log=progress,
                ):
                    if item.ref not in {r.ref for r in results}:
                        results.append(item)
            except BoxsmithError as exc:  # report every image, then fail
                failures.append(exc)
                err.write(exc.format() + "\n")
    if as_json:
        json.dump(
            {
                "images": [r.to_json() for r in results],
                "errors": [f.message for f in failures],
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        for r in results:
            out.write(f"{r.action:<9} {r.ref:<28} {r.size / 1e6:7.1f} MB  {r.detail}\n")
    err.write(_summary(results, failures))
    return EXIT_INFRA if failures else EXIT_OK


def _summary(results: Sequence[Ensured], failures: Sequence[BoxsmithError]) -> str:
    """`N image(s): 1 pulled, 2 present`, nothing to do or how many are missing."""
    changed = [r for r in results if r.action != "present"]
    counts = ", ".join(
        f"{sum(r.action == a for r in results)} {a}"
        for a in ("built", "pulled", "mirrored", "present")
        if any(r.action == a for r in results)
    )
    return (
        f"{len(results)} image(s): {counts or 'none'}"
        f"{'' if changed or failures else '; nothing to do'}"
        f"{f'; {len(failures)} missing' if failures else ''}\n"
    )
