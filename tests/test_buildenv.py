"""`boxsmith._internal.docker.buildenv`: which of a template's ENV names a ready sandbox's commands
lose, and what they get back from the base image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from boxsmith._internal.docker import buildenv


def test_label_records_the_base_values_of_the_names_the_template_set() -> None:
    base = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "EMPTY="]
    label = buildenv.label_value(["PATH", "GREETING", "EMPTY", "PATH"], base)
    assert json.loads(label) == {
        "EMPTY": "",
        "GREETING": None,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    assert buildenv.parse({buildenv.LABEL: label}) == json.loads(label)


def test_a_child_template_keeps_its_parents_build_env() -> None:
    # The parent's image carries GREETING=hi in its config; it is still the parent's ENV.
    parent = {"GREETING": None, "PATH": "/bin"}
    child = buildenv.label_value(["GREETING", "MODE"], ["GREETING=hi", "PATH=/opt:/bin"], parent)
    assert json.loads(child) == {"GREETING": None, "MODE": None, "PATH": "/bin"}


def test_commands_get_base_values_back_and_lose_the_rest_unless_set_explicitly() -> None:
    build_env = {"LANG": "C.UTF-8", "GREETING": None, "TOKEN": None}
    restore, unset = buildenv.runtime_env(build_env, {"TOKEN": "t1"})
    assert restore == {"LANG": "C.UTF-8"}
    assert unset == ["GREETING"]
    assert buildenv.runtime_env(build_env, ["LANG", "GREETING", "TOKEN"]) == ({}, [])


def test_images_without_a_readable_label_hide_nothing() -> None:
    assert buildenv.parse(None) == {}
    assert buildenv.parse({}) == {}
    assert buildenv.parse({buildenv.LABEL: "not json"}) == {}
    assert buildenv.parse({buildenv.LABEL: "[1, 2]"}) == {}


def test_what_the_runtime_sets_and_names_no_shell_can_unset_are_kept() -> None:
    build_env = {"HOME": None, "USER": None, "PATH": "/bin", "LOGNAME": None, "a-b": None}
    assert buildenv.runtime_env(build_env, ()) == ({}, [])


@pytest.mark.parametrize("shell", ["sh", "bash", "busybox"])
def test_the_prelude_survives_names_a_shell_refuses(shell: str) -> None:
    """dash and busybox end the shell on a failing special builtin; bash has a readonly UID."""
    argv = [shell, "sh"] if shell == "busybox" else [shell]
    if not shutil.which(argv[0]):
        if os.environ.get("CI"):  # scripts/test installs busybox
            pytest.fail(f"{shell} is not installed: apt-get install {shell}")
        pytest.skip(f"no {shell} here")
    script = buildenv.UNSET_PRELUDE + 'echo "${GREETING-unset} ${BOXSMITH_UNSET-gone}"'
    env = {"PATH": "/usr/bin:/bin", "GREETING": "hi", buildenv.UNSET_VAR: "UID a-b GREETING"}
    run = subprocess.run(
        [*argv, "-c", script], check=False, env=env, capture_output=True, text=True
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "unset gone\n", "")
