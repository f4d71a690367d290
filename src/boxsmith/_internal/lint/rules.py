"""boxsmith's own lint rules: what E2B accepts, drops or gets wrong.

E2B reads a Dockerfile with its own parser (the e2b SDK's `from_dockerfile`), not with Docker: it
rejects a second FROM, `COPY --from` and `ADD` of a URL; it ignores EXPOSE, VOLUME, LABEL and
MAINTAINER and drops any other instruction it does not know (HEALTHCHECK, SHELL, STOPSIGNAL,
ONBUILD); it turns CMD / ENTRYPOINT into the start command with a fixed 20-second wait as the
ready check. The other rules follow from how E2B builds and runs a sandbox: its user's shell,
its default resource tier, where a template's ENV applies.

Each rule is a small class satisfying `Rule`, listed once in `RULES` under its stable code. A
rule judges a `Subject`: the Dockerfile as it is (parsed statements; a file in generated/ may
have been edited by hand) and the validated spec, for the facts that live only there (resources,
start and ready commands). It yields `Hit`s; the runner turns them into located findings.

| code   | level   | what it checks |
| ------ | ------- | -------------- |
| E2B001 | error   | more than one FROM: E2B rejects multi-stage builds |
| E2B002 | error   | `COPY --from`: rejected by E2B |
| E2B003 | error   | `ADD` of a URL: rejected by E2B |
| E2B004 | warning | dropped: EXPOSE HEALTHCHECK LABEL VOLUME MAINTAINER SHELL STOPSIGNAL ONBUILD |
| E2B005 | warning | CMD / ENTRYPOINT: the start command, with a fixed `sleep 20` ready check |
| E2B006 | warning | no WORKDIR or USER after the last build step: implicit sandbox defaults |
| E2B007 | error   | a base image without bash (alpine, busybox, distroless, scratch, chainguard) |
| E2B008 | warning | cpu_count over 8 or memory_mb over 8192: above E2B's default tier |
| E2B009 | warning | start_cmd without ready_cmd: E2B waits a fixed `sleep 20` |
| E2B010 | error   | a secret-like ENV or ARG name with a literal value (the value is never shown) |
| E2B011 | info    | ENV: E2B sets it for the build and start/ready only, not for sandbox commands |
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from boxsmith._internal.dockerfile.parse import Statement
from boxsmith._internal.lint.findings import Level
from boxsmith._internal.spec.catalog import Template

__all__ = ["RULES", "Hit", "Rule", "Subject"]

MAX_CPU = 8  # E2B's default tier (Hobby/Pro without add-ons)
MAX_MEMORY_MB = 8192
_BUILD_STEPS = frozenset({"RUN", "COPY", "ADD"})


@dataclass(frozen=True, slots=True)
class Subject:
    """What a rule judges: one template's spec, its Dockerfile and its rendered e2b.toml."""

    template: Template
    statements: tuple[Statement, ...]
    toml: tuple[str, ...]  # lines of the rendered e2b.toml

    def toml_line(self, key: str) -> int:
        """1-based line of `key = ...` in e2b.toml, 0 when absent."""
        prefix = f"{key} ="
        return next((n for n, line in enumerate(self.toml, 1) if line.startswith(prefix)), 0)


@dataclass(frozen=True, slots=True)
class Hit:
    """One place a rule fired.

    Attributes:
        message: what is wrong and what to do.
        line: Dockerfile line (0 when the fact is not in the Dockerfile).
        toml_line: e2b.toml line, for facts rendered there (0 otherwise).
        spec_path: the spec key path behind it; empty to find it from `line`.
        key: a name inside the instruction at `line` (an ENV name) that narrows the spec position.
    """

    message: str
    line: int = 0
    toml_line: int = 0
    spec_path: tuple[str | int, ...] = ()
    key: str = ""


class Rule(Protocol):
    """A lint rule: a default level, a one-line title, and a check."""

    level: Level
    title: str

    def check(self, subject: Subject) -> Iterator[Hit]:
        """Every place the rule fires in `subject`."""
        ...


class MultiStage:
    """More than one FROM: E2B raises "Multi-stage Dockerfiles are not supported". Reported at
    each FROM but the last, which starts the stage that stays."""

    level = Level.ERROR
    title = "multi-stage build"

    def check(self, subject: Subject) -> Iterator[Hit]:
        froms = [s for s in subject.statements if s.keyword == "FROM"]
        for statement in froms[:-1]:
            yield Hit(
                f"multi-stage build ({len(froms)} FROM instructions): E2B builds a single "
                "stage and rejects this one; do its work in `run` steps of the final stage",
                statement.line,
            )


class CopyFrom:
    """`COPY --from=...` needs another stage or image; E2B raises."""

    level = Level.ERROR
    title = "COPY --from"

    def check(self, subject: Subject) -> Iterator[Hit]:
        for statement in subject.statements:
            if statement.keyword == "COPY" and "from" in statement.flags:
                yield Hit(
                    f"COPY --from={statement.flags['from']} is rejected by E2B (single stage "
                    "only); copy from the build context (spec `files`) or install in a `run` step",
                    statement.line,
                )


_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@)", re.IGNORECASE)


class AddUrl:
    """`ADD https://...` (or a git URL): E2B raises."""

    level = Level.ERROR
    title = "ADD of a URL"

    def check(self, subject: Subject) -> Iterator[Hit]:
        for statement in subject.statements:
            if statement.keyword == "ADD" and any(_URL.match(w) for w in statement.words()[:-1]):
                yield Hit(
                    "ADD of a URL is rejected by E2B; download it in a `run` step "
                    "(curl -fsSL URL -o FILE) instead",
                    statement.line,
                )


_DROPPED = {
    "EXPOSE": "sandbox ports are reachable without it",
    "HEALTHCHECK": "use ready_cmd in the spec",
    "LABEL": "use the spec's labels",
    "VOLUME": "sandboxes have no volumes",
    "MAINTAINER": "use the spec's description",
    "SHELL": "call the shell explicitly in the command (bash -c '...')",
    "STOPSIGNAL": "sandboxes are paused or killed, not stopped",
    "ONBUILD": "E2B templates are not base images for docker build",
}


class Dropped:
    """Instructions E2B ignores or drops with only a printed line."""

    level = Level.WARNING
    title = "instruction dropped by E2B"

    def check(self, subject: Subject) -> Iterator[Hit]:
        for statement in subject.statements:
            advice = _DROPPED.get(statement.keyword)
            if advice:
                yield Hit(
                    f"{statement.keyword} is dropped silently by E2B and has no effect; {advice}",
                    statement.line,
                )


class StartCommand:
    """CMD and ENTRYPOINT become `set_start_cmd(cmd, wait_for_timeout(20000))`."""

    level = Level.WARNING
    title = "CMD/ENTRYPOINT as start command"

    def check(self, subject: Subject) -> Iterator[Hit]:
        for statement in subject.statements:
            if statement.keyword in ("CMD", "ENTRYPOINT"):
                yield Hit(
                    f"{statement.keyword} becomes E2B's start command with a fixed `sleep 20` "
                    "ready check; set start_cmd and ready_cmd in the spec instead",
                    statement.line,
                )


class FinalUserWorkdir:
    """The sandbox's default user and folder are the last USER and WORKDIR; without explicit
    ones after the last build step they are whatever a step left behind: a WORKDIR set by a
    step stays the sandbox's folder even when a later step removed it (E2B adds `/home/user` and
    `user` only when the Dockerfile set none)."""

    level = Level.WARNING
    title = "missing final WORKDIR/USER"

    def check(self, subject: Subject) -> Iterator[Hit]:
        statements = subject.statements
        if not statements:
            return
        last_step = max(
            (n for n, s in enumerate(statements) if s.keyword in _BUILD_STEPS), default=-1
        )
        tail = {s.keyword for s in statements[last_step + 1 :]}
        for keyword, key in (("WORKDIR", "workdir"), ("USER", "user")):
            if keyword not in tail:
                yield Hit(
                    f"no {keyword} after the last build step: the sandbox's default "
                    f"{key} is then implicit; end the Dockerfile with `{keyword}` "
                    f"(boxsmith renders the spec's `{key}` there)",
                    statements[-1].end,
                    spec_path=(key,),
                )


_NO_BASH_NAMES = ("alpine", "busybox", "distroless", "scratch")


def _no_bash(image: str) -> str | None:
    """Why `image` has no bash, or None when it probably has."""
    reference = image.split("@", 1)[0].lower()
    slash = reference.rfind("/")
    repo, _, tag = reference[slash + 1 :].partition(":")
    path = reference[: slash + 1] + repo
    if path.startswith("cgr.dev/chainguard/"):
        return "chainguard"
    for name in _NO_BASH_NAMES:
        if repo == name or name in tag or f"/{name}/" in f"/{path}/":
            return name
    return None


class NoBash:
    """E2B creates `user` with /bin/bash as its shell and runs start, ready and sandbox
    commands through bash; an image without bash fails to build or to run anything, and images
    without an os-release file (distroless, scratch) are refused outright."""

    level = Level.ERROR
    title = "base image without bash"

    def check(self, subject: Subject) -> Iterator[Hit]:
        froms = [s for s in subject.statements if s.keyword == "FROM"]
        if not froms:
            return
        final = froms[-1]
        words = final.words()
        image = words[0] if words else ""
        kind = None if "$" in image else _no_bash(image)
        if kind:
            yield Hit(
                f"base image {image} has no bash ({kind}): E2B runs the sandbox's commands with "
                "/bin/bash; use a Debian-based image (debian:bookworm-slim, a -slim tag)",
                final.line,
            )


class Resources:
    """cpu_count and memory_mb above E2B's default tier fail unless the team's plan allows."""

    level = Level.WARNING
    title = "resources over the default tier"

    def check(self, subject: Subject) -> Iterator[Hit]:
        resources = subject.template.spec.resources
        for key, value, limit, unit in (
            ("cpu_count", resources.cpu_count, MAX_CPU, "vCPU"),
            ("memory_mb", resources.memory_mb, MAX_MEMORY_MB, "MiB"),
        ):
            if value > limit:
                yield Hit(
                    f"{key} {value} is over E2B's default tier limit of {limit} {unit}; builds "
                    "fail unless your team's plan allows it",
                    toml_line=subject.toml_line(key),
                    spec_path=("resources", key),
                )


class StartWithoutReady:
    """A start command without a ready command makes E2B wait a fixed 20 s before the snapshot."""

    level = Level.WARNING
    title = "start_cmd without ready_cmd"

    def check(self, subject: Subject) -> Iterator[Hit]:
        spec = subject.template.spec
        if spec.start_cmd and spec.ready_cmd is None:
            yield Hit(
                "start_cmd has no ready_cmd: E2B snapshots after a fixed `sleep 20`, too short "
                "for a slow start and wasted time for a fast one; add ready_cmd (e.g. "
                "wait_for_port: 3000)",
                toml_line=subject.toml_line("ready_cmd") or subject.toml_line("start_cmd"),
                spec_path=("start_cmd",),
            )


_SECRET_PARTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY")
_REFERENCE = re.compile(r"^\$(?:\{[A-Za-z_][A-Za-z0-9_]*(?:[:?+-][^}]*)?\}|[A-Za-z_]\w*)$")


def secret_like(name: str) -> bool:
    """A name like *_KEY, *TOKEN*, *SECRET*, *PASSWORD*, judged per `_`-separated part, so
    GITHUB_TOKEN and NPM_AUTHTOKEN match while TOKENIZERS_PARALLELISM does not."""
    parts = name.upper().split("_")
    if len(parts) > 1 and parts[-1] == "KEY":
        return True
    return any(part.endswith(_SECRET_PARTS) for part in parts)


class Secrets:
    """A literal value in an ENV or ARG is baked into every layer and every sandbox."""

    level = Level.ERROR
    title = "secret in ENV or ARG"

    def check(self, subject: Subject) -> Iterator[Hit]:
        for statement in subject.statements:
            if statement.keyword not in ("ENV", "ARG"):
                continue
            for name, value in statement.pairs():
                literal = value is not None and value.strip() and not _REFERENCE.match(value)
                if literal and secret_like(name):
                    yield Hit(
                        f"{statement.keyword} {name} holds a literal secret-like value (not "
                        "shown); it is baked into the image and every sandbox: pass it at run "
                        "time (Sandbox.create(envs=...)) instead",
                        statement.line,
                        key=name,
                    )


class BuildTimeEnv:
    """E2B applies a template's ENV during the build and to its start and ready commands, but
    commands run in a sandbox later do not see it (the SDK's `set_envs`: "available only during
    template build"; E2B#1052), while Docker keeps ENV in the image. Secret-like names are
    E2B010's."""

    level = Level.INFO
    title = "ENV only at build time on E2B"

    def check(self, subject: Subject) -> Iterator[Hit]:
        for statement in subject.statements:
            if statement.keyword != "ENV":
                continue
            for name, _ in statement.pairs():
                if not secret_like(name):
                    yield Hit(
                        f"ENV {name} is set for the E2B build and the start/ready commands "
                        "only: commands run in a sandbox later do not see it; pass what they "
                        "need with Sandbox.create(envs=...)",
                        statement.line,
                        key=name,
                    )


RULES: dict[str, Rule] = {
    "E2B001": MultiStage(),
    "E2B002": CopyFrom(),
    "E2B003": AddUrl(),
    "E2B004": Dropped(),
    "E2B005": StartCommand(),
    "E2B006": FinalUserWorkdir(),
    "E2B007": NoBash(),
    "E2B008": Resources(),
    "E2B009": StartWithoutReady(),
    "E2B010": Secrets(),
    "E2B011": BuildTimeEnv(),
}
