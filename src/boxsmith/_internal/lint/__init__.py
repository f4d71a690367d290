"""Lint stage: hadolint plus boxsmith's own E2B rules on each rendered e2b.Dockerfile.

Modules: `runner` (`lint_project`, the entry point), `rules` (the own rules E2B001..., one
registry), `hadolint` (the subprocess), `findings` (levels and locations), `report` (text, JSON,
SARIF, GitHub annotations). Dockerfile statements and the line -> spec map are in `dockerfile/`
(`parse`, `source_map`).

Defaults, and why:
- Threshold `warning` (`DEFAULT_THRESHOLD`): a run fails (exit 1) on any finding at warning or
  error. hadolint's own default is `info`, but its info rules fire on every boxsmith render by
  design (DL3059: each spec step is its own RUN, so steps cache and read one by one); they are
  shown, not fatal. `--failure-threshold error|warning|info|style` changes it.
- Ignored for every template (`DEFAULT_IGNORE`; `--no-default-ignore` drops the list,
  `--ignore CODE` and a spec's `lint: {ignore: [...]}` add to it):
  - DL3008 (pin apt versions): pinned Debian versions leave the archive and break rebuilds
    (hadolint PR #1253); pin the base image instead.
  - DL3013, DL3016 (pin pip / npm packages): sandbox templates install current tools on
    purpose; pin in a requirements or lock file copied into the template when it matters.
  - DL3066 (non-numeric USER): E2B's sandbox user is the named `user` it creates at build
    time; its numeric id is not known when the Dockerfile is written.
  - DL3064 (secrets in ENV/ARG): E2B010 checks the same with fewer false alarms (a literal
    value, and name parts: TOKENIZERS_PARALLELISM is no token) and points at the spec key.
"""

from boxsmith._internal.lint.findings import Finding, Level, Location
from boxsmith._internal.lint.runner import (
    DEFAULT_IGNORE,
    DEFAULT_THRESHOLD,
    LintedTemplate,
    LintReport,
    lint_project,
)

__all__ = [
    "DEFAULT_IGNORE",
    "DEFAULT_THRESHOLD",
    "Finding",
    "Level",
    "LintReport",
    "LintedTemplate",
    "Location",
    "lint_project",
]
