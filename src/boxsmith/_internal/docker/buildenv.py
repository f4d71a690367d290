"""E2B's rule for a template's ENV, kept by local builds and sandboxes: a template's ENV is set
for its build and for its start and ready commands, but commands run in the sandbox afterwards
do not see it (the SDK's `set_envs`: "available only during template build"; E2B#1052).

Docker keeps ENV in the image, so boxsmith records at build time which names the template set
and what the base image had for them, in the image label `dev.boxsmith.build-env` (JSON
`{name: base value or null}`). Once a container is ready, each later command gets the base
value back, or the name unset (`UNSET_PRELUDE` in its shell), unless the sandbox's own envs
(`Sandbox.create(envs=...)`, a command's envs) set it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "LABEL",
    "UNSET_PRELUDE",
    "UNSET_VAR",
    "config_env",
    "for_command",
    "label_value",
    "parse",
    "runtime_env",
]

LABEL = "dev.boxsmith.build-env"
UNSET_VAR = "BOXSMITH_UNSET"
# Prefix of a `sh -c` script: unset the names listed in $BOXSMITH_UNSET, then that variable.
# `command` keeps a failing unset (a readonly UID in bash) from ending the shell, as the special
# builtin would in dash and busybox.
UNSET_PRELUDE = (
    f'for n in ${{{UNSET_VAR}-}}; do command unset "$n" 2>/dev/null; done; unset {UNSET_VAR}; '
)
# What every command gets from the runtime itself (envd sets the user's HOME, USER, LOGNAME),
# and PATH, which a shell cannot do without: kept as the image has them.
_KEPT = frozenset({"HOME", "USER", "LOGNAME", "PATH"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def label_value(
    names: Iterable[str],
    base_env: Iterable[str],
    inherited: Mapping[str, str | None] | None = None,
) -> str:
    """The label of an image whose template set `names` on a base with config Env `base_env`
    (`NAME=value` items); `inherited` is the base's own label (a template built from one)."""
    base = dict(item.partition("=")[::2] for item in base_env)
    hidden: dict[str, str | None] = dict(inherited or {})
    for name in names:
        if name not in hidden:
            hidden[name] = base.get(name)
    return json.dumps(hidden, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def config_env(config: Mapping[str, object]) -> list[str]:
    """The `NAME=value` items of an image's config (`Engine.image_config`)."""
    env = config.get("Env")
    return [str(item) for item in env] if isinstance(env, list) else []


def parse(labels: object) -> dict[str, str | None]:
    """The recorded names of an image's labels (a mapping, or the config's `Labels`); {} for
    images built without the label."""
    raw = labels.get(LABEL) if isinstance(labels, Mapping) else None
    if not raw or not isinstance(raw, str):
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): None if v is None else str(v) for k, v in data.items()}


def runtime_env(
    build_env: Mapping[str, str | None], explicit: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """(values to set, names to unset) for a command run after the sandbox got ready; names in
    `explicit` (set by the sandbox or the command), HOME, USER, LOGNAME and PATH are left alone,
    and a name no shell can unset stays."""
    left = set(explicit) | _KEPT
    restore = {k: v for k, v in build_env.items() if v is not None and k not in left}
    unset = sorted(
        k for k, v in build_env.items() if v is None and k not in left and _NAME.match(k)
    )
    return restore, unset


def for_command(
    build_env: Mapping[str, str | None], env: Mapping[str, str]
) -> tuple[dict[str, str], str]:
    """(environment, shell prelude) of a command run after ready whose own environment is
    `env`: the base values restored under it and, when names must go, `UNSET_VAR` listing
    them; the prelude (`UNSET_PRELUDE`, "" when nothing goes) goes before its `sh -c` script."""
    restore, unset = runtime_env(build_env, env)
    environment = {**restore, **env}
    if not unset:
        return environment, ""
    environment[UNSET_VAR] = " ".join(unset)
    return environment, UNSET_PRELUDE
