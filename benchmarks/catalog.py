"""The projects the benchmarks measure boxsmith on, and the images they make.

- `copy_bundled`: this repository's bundled catalog (template_specs/, generated/,
  pyproject.toml) copied into a fresh folder.
- `write_rich`: N specs that use most of the spec language (a few abstract bases two levels
  deep, specs extending two bases at once, `vars` used through `{{ vars.x }}` in many string
  fields, `files:` entries and `copy` steps with small files next to the specs, steps of every
  kind, every `ready_cmd` helper, smoke checks of every kind), in folders of 100; they are
  rendered and checked, never built (their bases need the network). `edit_rich` changes one.
- `write_buildable`: N small specs that build without any network: distinct content (a var,
  an env value, a copied file, one RUN step) and two smoke checks each, a command and a file.
  Their base image is a private tag of a local image (`private_base`), so the parity base
  boxsmith makes for it is the benchmark's own: other runs of boxsmith on the same engine
  (tests, another checkout) cannot rebuild it under the benchmark, and the benchmark can remove
  it afterwards without touching anyone else's images.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "REPO",
    "VERSION",
    "copy_bundled",
    "edit_rich",
    "parity_images",
    "private_base",
    "remove_images",
    "template_names",
    "write_buildable",
    "write_rich",
]

REPO = Path(__file__).resolve().parents[1]
VERSION = "1.0.0"


def copy_bundled(project: Path) -> None:
    """This repository's bundled catalog, as it is in the working tree, into `project`."""
    for part in ("template_specs", "generated"):
        shutil.copytree(REPO / part, project / part)
    shutil.copy2(REPO / "pyproject.toml", project / "pyproject.toml")


# ------------------------------------------------------------------ buildable specs


def template_names(count: int, prefix: str = "bench") -> list[str]:
    width = max(2, len(str(count)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, count + 1)]


def spec_text(name: str, i: int, base: str) -> str:
    return (
        f"name: {name}\n"
        f'version: "{VERSION}"\n'
        f"description: benchmark template {i} ({{{{ vars.n }}}})\n"
        f"base_image: {base}\n"
        "vars:\n"
        f"  n: {i}\n"
        "env:\n"
        '  BENCH_N: "{{ vars.n }}"\n'
        "files:\n"
        f"  - src: {name}/n.txt\n"
        "    dest: /opt/n.txt\n"
        "steps:\n"
        "  - run: echo {{ vars.n }} > /opt/run.txt\n"
        "start_cmd: sleep infinity\n"
        'ready_cmd: "true"\n'
        "smoke:\n"
        "  - command: cat /opt/n.txt\n"
        f'    stdout: "^{i}$"\n'
        "  - file: /opt/run.txt\n"
    )


def write_buildable(root: Path, names: Sequence[str], base: str) -> None:
    """One spec per name under root/template_specs, each with its copied file."""
    specs = root / "template_specs"
    for i, name in enumerate(names, start=1):
        (specs / name).mkdir(parents=True)
        (specs / name / "n.txt").write_text(f"{i}\n", encoding="utf-8")
        (specs / f"{name}.yaml").write_text(spec_text(name, i, base), encoding="utf-8")


def private_base(base: str, suffix: str) -> str:
    """The name of a private tag of the local image `base`: `bench-base/<base>:<suffix>`."""
    return f"bench-base/{re.sub(r'[^a-z0-9_.-]+', '-', base.lower().replace(':', '-'))}:{suffix}"


def parity_images(private: str) -> list[str]:
    """The parity bases boxsmith made for the private tag `private`, whatever their key: named
    `boxsmith/parity:<private, each run of other characters made a dash>-<key>`."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", private)
    done = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(i for i in done.stdout.split() if i.startswith(f"boxsmith/parity:{stem}-"))


def remove_images(images: Sequence[str]) -> None:
    """`docker rmi` each of `images`, in order; a failure (other than a missing image) is only
    reported on stderr."""
    for image in images:
        done = subprocess.run(["docker", "rmi", image], capture_output=True, check=False)
        text = done.stderr.decode(errors="replace")
        if done.returncode != 0 and "No such image" not in text:
            sys.stderr.write(f"clean-up: docker rmi {image}: {text.strip()}\n")


# ----------------------------------------------------------------------- rich specs

TEAM_ID = "5b0b7c4e-3f0a-4c1e-9d5e-6a7f8b9c0d1e"
SCHEMA_LINE = "# yaml-language-server: $schema=../boxsmith.schema.json\n"


# --------------------------------------------------------------------------- synthetic project

BASES: dict[str, dict[str, Any]] = {
    # Level 1: the root every other base builds on.
    "root": {
        "name": "bench-root",
        "abstract": True,
        "team_id": TEAM_ID,
        "resources": {"cpu_count": 2, "memory_mb": 1024},
        "labels": {"suite": "bench"},
        "vars": {"owner": "boxsmith-bench", "greeting": "hello"},
        "env": {"BENCH_OWNER": "{{ vars.owner }}"},
        "smoke": [{"name": "runs as user", "command": "id -un", "stdout": "^user$"}],
    },
    # Level 2: runtime bases extending the root.
    "python": {
        "name": "bench-python",
        "abstract": True,
        "extends": ["bench-root"],
        "vars": {"python": "3.11"},
        "base_image": "python:{{ vars.python }}-slim",
        "labels": {"runtime": "python"},
        "env": {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        "system_packages": ["curl"],
        "smoke": [
            {
                "name": "python version",
                "command": "python3 --version",
                "stdout": "^Python {{ vars.python | replace('.', '\\\\.') }}\\.",
            }
        ],
    },
    "node": {
        "name": "bench-node",
        "abstract": True,
        "extends": ["bench-root"],
        "vars": {"node_major": "20", "port": 3000},
        "base_image": "node:{{ vars.node_major }}-slim",
        "labels": {"runtime": "node"},
        "ready_cmd": {"wait_for_url": "http://localhost:{{ vars.port }}"},
        "smoke": [
            {
                "name": "node runs",
                "command": "node --version",
                "stdout": "^v{{ vars.node_major }}\\.",
            },
            {"name": "dev server listens", "port": "{{ vars.port }}", "timeout": 10, "retries": 5},
        ],
    },
    "debian": {
        "name": "bench-debian",
        "abstract": True,
        "extends": "bench-root",
        "base_image": "debian:bookworm-slim",
        "labels": {"runtime": "shell"},
        "steps": [{"run": "mkdir -p /opt/bench"}],
    },
    # A mixin with no base of its own, combined with a runtime base (two bases in `extends`).
    "tools": {
        "name": "bench-tools",
        "abstract": True,
        "system_packages": ["git", "jq"],
        "env": {"BENCH_TOOLS": "1"},
        "files": [{"src": "tools/motd.txt", "dest": "/etc/motd"}],
        "smoke": [{"name": "motd in place", "file": "/etc/motd", "contains": "bench"}],
    },
}

# Which bases each spec extends, cycling over the specs.
EXTENDS: list[str | list[str]] = [
    ["bench-python"],  # two levels deep
    ["bench-node"],  # two levels deep, inherits ready_cmd
    ["bench-python", "bench-tools"],  # two bases
    ["bench-debian", "bench-tools"],  # two bases
    "bench-root",  # one level, string form
]


def _ready_cmd(i: int) -> Any:
    """Cycle over every ready_cmd form; None keeps the inherited one (node specs)."""
    forms: list[Any] = [
        {"wait_for_port": "{{ vars.port }}"},
        {"wait_for_url": "http://localhost:{{ vars.port }}/health"},
        {"wait_for_url": {"url": "http://localhost:{{ vars.port }}/", "status": 204}},
        {"wait_for_file": "/tmp/{{ vars.app }}.ready"},
        {"wait_for_process": "{{ vars.app }}"},
        {"wait_for_timeout": 5000},
        "test -S /tmp/{{ vars.app }}.sock",
        None,
    ]
    return forms[i % len(forms)]


def _spec(i: int, folder: str) -> dict[str, Any]:
    """One concrete spec; every string field of interest goes through {{ vars.x }}."""
    name = f"bench-{i:04d}"
    kind = i % len(EXTENDS)
    spec: dict[str, Any] = {
        "name": name,
        "version": f"1.{i % 7}.{i % 3}",
        "extends": EXTENDS[kind],
        "description": (
            f"Synthetic template number {i} ({{{{ vars.app }}}} on port {{{{ vars.port }}}}), "
            "owned by {{ vars.owner }}; generated by benchmarks/render.py."
        ),
        "vars": {"app": f"app{i}", "port": 8000 + i % 50000, "tier": ("web", "worker")[i % 2]},
    }
    if kind == 4:  # the root base has no image
        spec["vars"]["debian"] = "bookworm"
        spec["base_image"] = "debian:{{ vars.debian }}-slim"
    if i % 3 == 0:
        spec["resources"] = {"cpu_count": 4, "memory_mb": 2048}
    spec["labels"] = {"tier": "{{ vars.tier }}", "shard": folder}
    spec["env"] = {"APP_NAME": "{{ vars.app }}", "APP_PORT": "{{ vars.port }}", "DEBUG": i % 2 == 0}
    if i % 4 == 0:
        spec["system_packages"] = ["curl", "procps"]
    spec["files"] = [
        {"src": f"{name}/start.sh", "dest": "/usr/local/bin/start-{{ vars.app }}", "mode": "0755"}
    ]
    spec["steps"] = [
        {"run": "echo {{ vars.greeting }} from {{ vars.app }} > /tmp/greeting"},
        {"env": {"STAGE": "build", "APP_HOME": "/opt/{{ vars.app }}"}},
        {"workdir": "/opt/{{ vars.app }}"},
        {"user": "root"},
        {"run": ["mkdir -p /opt/{{ vars.app }}/data", "chown -R user:user /opt/{{ vars.app }}"]},
        {
            "copy": {
                "src": f"{name}/app.txt",
                "dest": "/opt/{{ vars.app }}/app.txt",
                "owner": "user:user",
            }
        },
        {"user": "user"},
        {"run": {"cmd": "ls -la /opt/{{ vars.app }} > /tmp/listing", "user": "root"}},
    ]
    spec["start_cmd"] = "/usr/local/bin/start-{{ vars.app }} --port {{ vars.port }}"
    ready = _ready_cmd(i)
    if ready is not None or kind != 1:
        spec["ready_cmd"] = ready if ready is not None else {"wait_for_port": "{{ vars.port }}"}
    spec["smoke"] = [
        {"name": "greeting", "command": "cat /tmp/greeting", "stdout": "from {{ vars.app }}$"},
        {"name": "app file", "file": "/opt/{{ vars.app }}/app.txt", "contains": "{{ vars.app }}"},
        {"name": "app port", "port": "{{ vars.port }}", "timeout": 5, "retries": 3},
        {"name": "app http", "http": "http://localhost:{{ vars.port }}/", "status": 200},
        {"name": "app process", "process": "start-{{ vars.app }}", "retries": 2, "interval": 1},
    ]
    if i % 10 == 0:  # replaces the root base's check of the same name in place
        spec["smoke"].append({"name": "runs as user", "command": "whoami", "stdout": "^user$"})
    return spec


def _dump(data: dict[str, Any]) -> str:
    return SCHEMA_LINE + yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


def write_rich(root: Path, count: int) -> int:
    """Write `count` concrete specs (plus the bases and their files) under root; return the
    number of spec files written."""
    specs = root / "template_specs"
    bases = specs / "bases"
    (bases / "tools").mkdir(parents=True)
    (bases / "tools" / "motd.txt").write_text("Welcome to a boxsmith bench sandbox.\n")
    for key, data in BASES.items():
        (bases / f"{key}.yaml").write_text(_dump(data), encoding="utf-8")
    for i in range(count):
        folder = f"g{i // 100:02d}"
        name = f"bench-{i:04d}"
        payload = specs / folder / name
        payload.mkdir(parents=True)
        start = payload / "start.sh"
        start.write_text(f'#!/bin/sh\n# start {name}\nexec sleep infinity "$@"\n')
        start.chmod(0o755)
        (payload / "app.txt").write_text(f"app{i}: synthetic payload for {name}\n")
        (specs / folder / f"{name}.yaml").write_text(_dump(_spec(i, folder)), encoding="utf-8")
    return count + len(BASES)


def edit_rich(root: Path, i: int, edit: int) -> str:
    """Change spec `i` of `write_rich` (its description, with `edit` in it); its name."""
    folder, name = f"g{i // 100:02d}", f"bench-{i:04d}"
    spec = _spec(i, folder)
    spec["description"] += f" Edit {edit}."
    (root / "template_specs" / folder / f"{name}.yaml").write_text(_dump(spec), encoding="utf-8")
    return name
