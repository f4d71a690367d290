"""The GitHub workflows are valid against the GitHub workflow schema (check-jsonschema's
vendored copy, offline) and call only commands boxsmith has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from boxsmith._internal.cli.app import build_parser

WORKFLOWS = sorted((Path(__file__).parent.parent / ".github" / "workflows").glob("*.yml"))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(workflow),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_calls_only_existing_commands(workflow: Path) -> None:
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    text = workflow.read_text()
    used = set(re.findall(r"\.venv/bin/boxsmith (\w[\w-]*)", text))
    assert used, "a workflow that never calls boxsmith"
    assert used <= commands, used - commands
    for job in yaml.safe_load(text)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), (
                f"{workflow.name}: pass expressions through env:, never into a shell line"
            )
