"""`boxsmith promote` and `boxsmith rollback`: move a channel tag (default `stable`) by hand.

Consumers pin a channel (`Sandbox.create("nextjs-developer:stable")`); `smoke --target` moves it
to a version whose checks pass. `promote NAME [--version V]` points the channel at V (default:
the spec's current version), `rollback NAME` at the newest published version older than the one
the channel points at now. Only versions published to the target (generated/index.json) count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TextIO

from boxsmith._internal.lock import hold
from boxsmith._internal.publish.targets import check_channel, connect, live_builds
from boxsmith._internal.render.index import INDEX_FILE, load_index
from boxsmith._internal.spec.catalog import load_catalog
from boxsmith._internal.spec.names import version_tag
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK, UsageError

__all__ = ["run", "semver_key"]

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$")


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key following semver precedence (a pre-release sorts before its release)."""
    match = _SEMVER.match(version)
    if match is None:
        return (-1, version)
    major, minor, patch, pre = match.groups()
    pre_key: tuple[Any, ...] = (
        (1,)
        if pre is None
        else (
            0,
            *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")),
        )
    )
    return (int(major), int(minor), int(patch), pre_key)


def run(
    settings: Settings,
    names: Sequence[str],
    labels: Sequence[str],
    *,
    action: str,
    target: str,
    channel: str,
    version: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Move `channel` for each selected template; UsageError when there is nothing to move to.
    Holds the project lock (`boxsmith._internal.lock`): the channel it reads is the one it moves."""
    check_channel(channel)
    with hold(settings, action, err=err):
        templates = load_catalog(settings).select(names, labels)
        if version is not None and len(templates) != 1:
            raise UsageError("--version needs exactly one template", "name one template")
        path = settings.generated_dir / INDEX_FILE
        index = load_index(path, settings.display(path))
        plan: list[tuple[str, str, str | None]] = []  # (name, new version, old version)
        remote = None
        live = live_builds(settings, target)
        for template in templates:
            published = {
                v: entry
                for v, entry in index.templates.get(template.name, {}).items()
                if entry.records(target, live)
            }
            if not published:
                raise UsageError(
                    f"{template.name} has no version published to {target}",
                    f"run `boxsmith publish --target {target} {template.name}` first",
                )
            if remote is None:
                remote = connect(settings, target, err=err)
            from e2b import Template

            tags = Template.get_tags(template.name, **remote.params)
            build = next((t.build_id for t in tags if t.tag == channel), None)
            current = next(
                (
                    v
                    for v, entry in published.items()
                    for p in entry.records(target, live)
                    if build is not None and p.build_id == str(build)
                ),
                None,
            )
            if action == "promote":
                wanted = version or template.version
                if wanted not in published:
                    raise UsageError(
                        f"{template.name}:{wanted} is not published to {target}",
                        f"publish it first, or pick one of {', '.join(sorted(published))}",
                    )
            else:
                if current is None:
                    raise UsageError(
                        f"{template.name}:{channel} points at no version boxsmith published",
                        f"promote one first: `boxsmith promote {template.name} --target {target}`",
                    )
                older = sorted(
                    (v for v in published if semver_key(v) < semver_key(current)), key=semver_key
                )
                if not older:
                    raise UsageError(
                        f"{template.name}:{channel} is at {current}, the oldest published version",
                        "there is nothing older to roll back to",
                    )
                wanted = older[-1]
            plan.append((template.name, wanted, current))
        for name, wanted, current in plan:
            from e2b import Template

            assert remote is not None
            Template.assign_tags(f"{name}:{version_tag(wanted)}", [channel], **remote.params)
            was = f" (was {current})" if current and current != wanted else ""
            out.write(f"{name}:{channel} -> {wanted}{was}\n")
        err.write(f"ok: {len(plan)} channel tag(s) moved on {target}\n")
        return EXIT_OK
