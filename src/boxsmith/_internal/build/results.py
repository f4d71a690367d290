"""One template's build outcome: `BuildResult`, its JSON row, the text explaining a failure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BuildResult", "describe_failure", "final_text"]

_NOISE = re.compile(r"^ ---> |^Removing intermediate container |^Successfully (built|tagged) ")


@dataclass(slots=True)
class BuildResult:
    """The outcome of one template's build.

    Attributes:
        status: `built`, `cached` (key matched its last good build), `failed` or `skipped`.
        reason: why it failed or was skipped ("" otherwise).
        notes: one-line remarks, e.g. that the base image is a local stand-in.
    """

    name: str
    version: str
    image: str
    status: str = "waiting"
    seconds: float = 0.0
    image_id: str = ""
    size: int = 0
    key: str = ""
    reason: str = ""
    step: str = ""
    log: str = ""
    log_file: Path | None = None
    hint: str = ""
    base_id: str = ""
    parity: str = ""
    parity_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Built or cached: an image to smoke-test exists."""
        return self.status in ("built", "cached")

    def to_json(self) -> dict[str, object]:
        """Plain mapping for `--json` output."""
        return {
            "name": self.name,
            "version": self.version,
            "image": self.image,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "image_id": self.image_id,
            "size": self.size,
            "build_key": self.key,
            "parity_base": self.parity,
            "reason": self.reason,
            "failed_step": self.step,
            "log": self.log,
            "notes": self.notes,
        }


def final_text(result: BuildResult) -> str:
    """The progress line a finished build ends with."""
    if result.status == "built":
        return f"built in {result.seconds:.1f}s"
    if result.status == "cached":
        return "unchanged (cached)"
    return f"{result.status}: {result.reason.splitlines()[0] if result.reason else ''}"


def describe_failure(result: BuildResult, tail_lines: int = 15) -> str:
    """The failing instruction and the end of its log, for the error report."""
    if result.hint:
        return f"{result.name}:{result.version}: cannot build here: {result.reason}\n" + (
            f"  fix: {result.hint}"
        )
    lines = [f"{result.name}:{result.version}: build failed: {result.reason}"]
    if result.step:
        lines.append(f"  failing instruction: {result.step}")
    if result.log_file is not None:
        lines += _log_tail(result.log_file, result.log, tail_lines)
    return "\n".join(lines)


def _log_tail(log_file: Path, shown: str, tail_lines: int) -> list[str]:
    """The failing step's own output lines (not the builder's), from the build log."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        text = []
    starts = [n for n, line in enumerate(text) if line.startswith("Step ")]
    own = [
        line
        for line in text[starts[-1] + 1 if starts else 0 :]
        if line.strip() and not _NOISE.match(line)
    ][-tail_lines:]
    if not own:
        return [f"  it printed nothing (full log: {shown})"]
    return [f"  its last output (full log: {shown}):", *(f"    {line}" for line in own)]
