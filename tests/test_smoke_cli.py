"""A first end-to-end pass over the CLI in-process, and `boxsmith smoke`'s refusals."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import pytest
from e2b import Sandbox

from boxsmith._internal.cli import smoke
from boxsmith._internal.progress import Progress
from boxsmith._internal.publish.targets import PublishTarget
from boxsmith._internal.smoke.sandbox_run import _SandboxRun
from boxsmith.config import load_settings
from boxsmith.errors import UsageError
from tests.helpers import cli


def test_render_then_check_is_clean(minimal_project: Path) -> None:
    first = cli(minimal_project, "render")
    assert first.code == 0, first.err
    assert "create    generated/app/1.0.0/e2b.toml" in first.out
    check = cli(minimal_project, "check")
    assert check.code == 0, check.out + check.err


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_smoke_run_refuses_a_ready_timeout_that_is_not_positive(
    minimal_project: Path, seconds: float
) -> None:
    """The check is in `run()`, which the CLI and the invoke task both call: before any engine."""
    with pytest.raises(UsageError) as refused:
        smoke.run(
            load_settings(minimal_project),
            [],
            [],
            out=io.StringIO(),
            err=io.StringIO(),
            ready_timeout=seconds,
        )
    assert refused.value.exit_code == 2
    assert "--ready-timeout must be a positive number of seconds" in refused.value.message
    assert "--ready-timeout 600" in refused.value.hint


def test_smoke_usage_errors(minimal_project: Path) -> None:
    nowhere = cli(minimal_project, "smoke")
    assert nowhere.code == 2
    assert "smoke needs a target: --local" in nowhere.err
    zero = cli(minimal_project, "smoke", "--local", "--ready-timeout", "0")
    assert zero.code == 2
    assert "--ready-timeout must be" in zero.err
    no_jobs = cli(minimal_project, "smoke", "--target", "local", "-j", "0")
    assert no_jobs.code == 2
    assert "--jobs must be at least 1, got 0" in no_jobs.err
    assert not (minimal_project / ".boxsmith" / "backend").exists()  # refused before any start


class _Unkillable:
    """A sandbox whose kill fails, as when the network to E2B has gone."""

    sandbox_id = "sbx-1"

    def kill(self) -> bool:
        raise ConnectionError("network unreachable")


def test_a_sandbox_that_ctrl_c_cannot_kill_is_named(minimal_project: Path) -> None:
    """On Ctrl-C every running sandbox is killed; one whose kill fails is reported (it lives on
    until its timeout), not passed over in silence."""
    run = _SandboxRun(
        load_settings(minimal_project),
        PublishTarget("e2b", "E2B cloud", {}),
        Progress(io.StringIO(), "smoke"),
        "stable",
        promote=True,
        notes=[],
    )
    run.live["app:1.0.0"] = ("sandbox sbx-1 (app:1.0.0, e2b)", cast(Sandbox, _Unkillable()))
    run.kill_all()
    assert run.stop.is_set()
    assert run.live == {}
    assert run.notes == [
        "app:1.0.0: could not kill sandbox sbx-1 (app:1.0.0, e2b): network unreachable "
        "(it ends at its timeout)"
    ]
