"""The Dockerfile of E2B's build steps, each step written the way E2B's build server runs it.

Both builds of a template write it: the local backend's build of the SDK's steps
(`boxsmith._internal.backend.builds`) and the local proof build (`boxsmith build`, which reads
the steps from e2b.Dockerfile as the SDK does: `e2b_steps.read_dockerfile`). The same steps on
the same parity base give the same Dockerfile and, with each COPY step's files at the same place
in the build context (`copy_dir`), the engine's cache answers the second build with the first
one's layers. `dockerfile_for` writes, on boxsmith's parity base
(`boxsmith._internal.build.parity`):

- E2B's prefix `USER root` + `WORKDIR /`; its finalize (`parity.sh finalize`), then the last USER
  and WORKDIR set (`user` and `/home/user` when never set, the parent's for `fromTemplate`);
- RUN with bash (sh when the image has none) as the step's user, USER switched around it;
- COPY owned by the step's user or else the current one (`u` means `u:u`), sources resolved like
  E2B's copy script (the path before the first glob; a directory's contents are copied) from the
  step's folder of the build context, `copy_dir(n)`; the mode is set in the build context, since
  the legacy builder has no `COPY --chmod`;
- WORKDIR created by the current user (Docker alone would create it as root);
- USER creating a missing user with passwordless sudo;
- `force` (skip_cache) busts Docker's RUN cache from that step on with a unique ARG.

Each instruction keeps its origin (`StepOrigin`): the step it comes from, so a failed build
names E2B's `reason.step` and the command that failed.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from boxsmith._internal.build.e2b_steps import BuildStep
from boxsmith._internal.build.parity import SCRIPT_IN_IMAGE, ca_args
from boxsmith._internal.dockerfile.quoting import env_quoted

__all__ = [
    "BASE",
    "DEFAULT_USER",
    "DEFAULT_WORKDIR",
    "FINALIZE",
    "LOGIN",
    "StepOrigin",
    "copy_dir",
    "create_user",
    "dockerfile_for",
    "static_prefix",
]

BASE, FINALIZE = "base", "finalize"  # E2B's reason.step for the phases around the steps
DEFAULT_USER, DEFAULT_WORKDIR = "user", "/home/user"
SKIP_CACHE_ARG = "BOXSMITH_SKIP_CACHE"
LOGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")  # a user name the USER step may create
# E2B runs every command with /bin/bash; `sh -c RUNNER cmd` does so where bash exists.
_RUNNER = 'exec "$(command -v bash || echo /bin/sh)" -c "$0"'


@dataclass(frozen=True, slots=True)
class StepOrigin:
    """Where one Dockerfile instruction comes from.

    Attributes:
        step: the SDK step number ("1" is the first step, as E2B's `reason.step`), or
            "base" / "finalize".
        instruction: the Dockerfile instruction.
        title: that step as E2B shows it (`RUN echo hi`, `FROM debian:bookworm-slim`).
        command: the shell command the instruction runs, named when it fails ("" for none).
    """

    step: str
    instruction: str
    title: str
    command: str = ""


def static_prefix(src: str) -> str:
    """What E2B copies for `src`: its path up to the last `/` before a glob character
    (doublestar's SplitPattern on `src/`), normalized; "." for the whole upload."""
    pattern, split, index = src.rstrip("/") + "/", -1, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1
        elif char == "/":
            split = index
        elif char in "*?[{":
            break
        index += 1
    return posixpath.normpath(pattern[:split]) if split > 0 else "."


def copy_dir(step: str) -> str:
    """The folder of COPY step `step` ("1", "2", ...) in the build context: named by the step,
    not by the files hash (which only the SDK computes), so a local build and the backend's build
    of the same steps put the same files at the same path, as the engine's cache needs."""
    return f"copy-{step}"


def _sh_quoted(text: str) -> str:
    """`text` in sh double quotes, `$VAR` expanded as E2B's `mkdir -p "<path>"` does."""
    return '"' + re.sub(r'([\\"`])', r"\\\1", text) + '"'


def create_user(login: str) -> str:
    """The script that creates user `login` (when missing) with passwordless sudo."""
    name, sudoers = shlex.quote(login), "/etc/sudoers.d/e2b-" + re.sub(r"[^\w-]", "_", login)
    return (
        f"id -u {name} >/dev/null 2>&1 || {{ if command -v useradd >/dev/null 2>&1; "
        f"then useradd -m -s /bin/bash {name}; else adduser -D {name}; fi; }}; "
        f"if [ -d /etc/sudoers.d ]; then echo '{login} ALL=(ALL:ALL) NOPASSWD: ALL' > {sudoers}"
        f" && chmod 0440 {sudoers}; fi; "
        f"if getent group sudo >/dev/null 2>&1; then usermod -aG sudo {name} || true; fi"
    )


@dataclass
class _Writer:
    """The instructions so far, with the step they belong to and the user and folder in force
    (`user`, `cwd`) and in force at the end (`final_user`, `final_dir`)."""

    final_user: str
    final_dir: str
    step: str = BASE
    title: str = ""
    user: str = "root"
    cwd: str = "/"
    origins: list[StepOrigin] = field(default_factory=list)

    def add(self, instruction: str, command: str = "") -> None:
        self.origins.append(StepOrigin(self.step, instruction, self.title, command))

    def run(self, script: str, command: str) -> None:
        self.add(f"RUN {json.dumps(['/bin/sh', '-c', script])}", command)

    def run_step(self, step: BuildStep) -> None:
        command, run_as = step.arg(0), step.arg(1) or self.user
        if run_as != self.user:
            self.add(f"USER {run_as}")
        self.add(f"RUN {json.dumps(['/bin/sh', '-c', _RUNNER, command])}", command)
        if run_as != self.user:
            self.add(f"USER {self.user}")

    def copy_step(self, step: BuildStep) -> None:
        owner = step.arg(2) or self.user
        owner = owner if ":" in owner else f"{owner}:{owner}"
        base = static_prefix(step.arg(0))
        source = copy_dir(self.step) + ("" if base == "." else f"/{base}")
        self.add(f"COPY --chown={owner} {json.dumps([source, step.arg(1)])}")

    def env_step(self, step: BuildStep) -> None:
        pairs = zip(step.args[::2], step.args[1::2], strict=True)
        self.add("ENV " + " ".join(f"{key}={env_quoted(value)}" for key, value in pairs))

    def workdir_step(self, step: BuildStep) -> None:
        path = step.arg(0)
        if self.user != "root":
            self.run(f"mkdir -p -- {_sh_quoted(path)}", f'mkdir -p "{path}"')
        self.add(f"WORKDIR {path}")
        self.cwd = self.final_dir = posixpath.normpath(posixpath.join(self.cwd, path))

    def user_step(self, step: BuildStep) -> None:
        name = step.arg(0)
        login = name.split(":")[0]
        if login not in ("root", DEFAULT_USER) and LOGIN.fullmatch(login):
            if self.user != "root":
                self.add("USER root")
            self.run(create_user(login), f"create user {login}")
        self.add(f"USER {name}")
        self.user = self.final_user = name


_STEPS: dict[str, Callable[[_Writer, BuildStep], None]] = {
    "RUN": _Writer.run_step,
    "COPY": _Writer.copy_step,
    "ENV": _Writer.env_step,
    "WORKDIR": _Writer.workdir_step,
    "USER": _Writer.user_step,
}


def dockerfile_for(
    steps: Sequence[BuildStep],
    *,
    title: str,
    base_ref: str,
    ca: bool,
    force: bool = False,
    user: str = DEFAULT_USER,
    workdir: str = DEFAULT_WORKDIR,
    nonce: str | None = None,
) -> tuple[str, list[StepOrigin]]:
    """The Dockerfile of `steps` and the origin of each of its instructions, in order.

    Args:
        steps: the build steps.
        title: the base as E2B's log names it (`FROM debian:bookworm-slim`).
        base_ref: the parity base to build FROM.
        ca: add the ARGs that point tools at the parity base's host CA (`ca_args`).
        force: rebuild every step (the request's `force`).
        user, workdir: the final USER and WORKDIR when the steps set none.
        nonce: the value of the cache-busting ARG for `force` (default: a random one).
    """
    out = _Writer(user, workdir, title=title)
    out.add(f"FROM {base_ref}")
    for line in [*ca_args(ca), "USER root", "WORKDIR /"]:
        out.add(line)
    bust = f"ARG {SKIP_CACHE_ARG}={nonce or uuid.uuid4().hex}"
    busted = force
    if busted:
        out.add(bust)
    for number, step in enumerate(steps, 1):
        out.step, out.title = str(number), step.title()
        if step.force and not busted:
            out.add(bust)
            busted = True
        _STEPS[step.type](out, step)
    out.step, out.title = FINALIZE, f"finalize (user {out.final_user}, workdir {out.final_dir})"
    out.add("USER root")
    out.add(f"RUN sh {SCRIPT_IN_IMAGE} finalize")
    out.add(f"USER {out.final_user}")
    out.add(f"WORKDIR {out.final_dir}")
    return "\n".join(o.instruction for o in out.origins) + "\n", out.origins
