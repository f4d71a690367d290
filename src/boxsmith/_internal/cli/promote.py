"""`boxsmith promote` and `boxsmith rollback`: move a channel tag (default `stable`) by hand.

Consumers pin a channel (`Sandbox.create("nextjs-developer:stable")`); `smoke --target` moves it
to a version whose checks pass. `promote NAME [--version V]` points the channel at V (default:
the spec's current version), `rollback NAME` at the newest published version older than the one
the channel points at now. Only versions published to the target (generated/index.json) count;
`boxsmith._internal.publish.channels` decides where each channel goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from boxsmith._internal.cli.options import channel_tag
from boxsmith._internal.extras import TARGET_EXTRAS, require
from boxsmith._internal.lock import hold
from boxsmith._internal.publish.channels import plan_moves
from boxsmith.config import Settings
from boxsmith.errors import EXIT_OK

__all__ = ["run"]


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
    channel_tag(channel)
    if target in TARGET_EXTRAS:  # the SDK moves the tag; for local, in the backend it starts
        require([TARGET_EXTRAS[target]])
    with hold(settings, action, err=err):
        plan = plan_moves(
            settings,
            names,
            labels,
            action=action,
            target=target,
            channel=channel,
            version=version,
            err=err,
        )
        for move in plan.moves:
            plan.apply(move)
            was = f" (was {move.was})" if move.was and move.was != move.version else ""
            out.write(f"{move.name}:{channel} -> {move.version}{was}\n")
        err.write(f"ok: {len(plan.moves)} channel tag(s) moved on {target}\n")
        return EXIT_OK
