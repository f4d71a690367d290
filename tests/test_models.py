"""The spec models: defaults, shorthands and E2B's rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from boxsmith._internal.spec.models import (
    CommandCheck,
    HttpCheck,
    PortCheck,
    ReadyCheck,
    TemplateSpec,
    check_name,
)

BASE: dict[str, Any] = {
    "name": "app",
    "version": "1.2.3",
    "description": "d",
    "base_image": "debian:bookworm-slim",
}


def spec(**extra: Any) -> TemplateSpec:
    return TemplateSpec.model_validate({**BASE, **extra})


def errors(**extra: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        spec(**extra)
    return [dict(e) for e in info.value.errors()]


def test_defaults_follow_e2b() -> None:
    s = spec()
    assert (s.resources.cpu_count, s.resources.memory_mb) == (2, 1024)
    assert (s.workdir, s.user) == ("/home/user", "user")
    assert s.ready_command() is None


def test_start_without_ready_gets_e2b_default_sleep() -> None:
    assert spec(start_cmd="serve").ready_command() == "sleep 20"


@pytest.mark.parametrize("cpu", [1, 2, 4, 32])
def test_cpu_counts_e2b_accepts(cpu: int) -> None:
    assert spec(resources={"cpu_count": cpu}).resources.cpu_count == cpu


@pytest.mark.parametrize("cpu", [0, 3, 33, 34])
def test_cpu_counts_e2b_rejects(cpu: int) -> None:
    (error,) = errors(resources={"cpu_count": cpu})
    assert error["loc"] == ("resources", "cpu_count")
    assert "1 or an even number" in error["msg"]


@pytest.mark.parametrize(("memory", "hint"), [(127, "128"), (1001, "1002")])
def test_memory_rules_with_hint(memory: int, hint: str) -> None:
    (error,) = errors(resources={"memory_mb": memory})
    assert hint in error["ctx"]["hint"]


@pytest.mark.parametrize("version", ["1.0.0", "0.1.0-rc.1", "10.20.30"])
def test_versions_that_are_valid_tags(version: str) -> None:
    assert spec(version=version).version == version


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0+build.5", "1.0.0-RC1"])
def test_versions_rejected(version: str) -> None:
    (error,) = errors(version=version)
    assert error["loc"] == ("version",)


def test_name_rule_and_suggestion() -> None:
    (error,) = errors(name="My App")
    assert "^[a-z0-9-_]+$" in error["msg"]
    assert "'my-app'" in error["ctx"]["hint"]
    assert errors(name="a" * 129)[0]["loc"] == ("name",)
    assert spec(name="a" * 128).name == "a" * 128


def test_step_shorthands_and_kinds() -> None:
    s = spec(
        steps=[
            {"run": "echo hi"},
            {"run": ["a", "b"]},
            {"run": {"cmd": "whoami", "user": "user"}},
            {"copy": {"src": "x", "dest": "/x", "mode": "755"}},
            {"env": {"A": 1, "B": True}},
            {"workdir": "/w"},
            {"user": "user"},
        ]
    )
    assert [step.kind for step in s.steps] == [
        "run", "run", "run", "copy", "env", "workdir", "user",
    ]  # fmt: skip
    assert s.steps[1].run is not None
    assert s.steps[1].run.commands == ["a", "b"]
    assert s.steps[3].copy_ is not None
    assert s.steps[3].copy_.mode == "0755"
    assert s.steps[4].env == {"A": "1", "B": "true"}


def test_unquoted_mode_is_refused_with_reason() -> None:
    (error,) = errors(files=[{"src": "x", "dest": "/x", "mode": 493}])
    assert "quoted octal" in error["msg"]
    assert "0755" in error["ctx"]["hint"]


@pytest.mark.parametrize(
    ("helper", "command"),
    [
        ({"wait_for_port": 3000}, '[ -n "$(ss -Htuln sport = :3000)" ]'),
        ({"wait_for_file": "/tmp/a b"}, "[ -f '/tmp/a b' ]"),
        ({"wait_for_process": "node"}, "pgrep node > /dev/null"),
        ({"wait_for_timeout": 500}, "sleep 1"),
        ({"wait_for_timeout": 20000}, "sleep 20"),
    ],
)
def test_ready_helpers_render_shell(helper: dict[str, Any], command: str) -> None:
    assert ReadyCheck.model_validate(helper).command() == command


def test_ready_helpers_match_the_e2b_sdk() -> None:
    # here, not at the top: the e2b SDK takes most of a second to import
    from e2b import wait_for_file, wait_for_port, wait_for_process, wait_for_timeout, wait_for_url

    pairs = [
        ({"wait_for_port": 8080}, wait_for_port(8080)),
        (
            {"wait_for_url": "http://localhost:3000/x?a=1"},
            wait_for_url("http://localhost:3000/x?a=1"),
        ),
        (
            {"wait_for_url": {"url": "http://h/", "status": 204}},
            wait_for_url("http://h/", status_code=204),
        ),
        ({"wait_for_file": "/tmp/ready"}, wait_for_file("/tmp/ready")),
        ({"wait_for_process": "my proc"}, wait_for_process("my proc")),
        ({"wait_for_timeout": 2500}, wait_for_timeout(2500)),
    ]
    for helper, sdk in pairs:
        assert ReadyCheck.model_validate(helper).command() == sdk.get_cmd()


def test_smoke_checks_are_told_apart_by_key() -> None:
    s = spec(
        smoke=[
            {"command": "true", "stdout": "^ok$"},
            {"port": 80, "retries": 3},
            {"http": "http://localhost/", "status": 204},
        ]
    )
    assert [type(c) for c in s.smoke] == [CommandCheck, PortCheck, HttpCheck]
    assert [check_name(c) for c in s.smoke] == [
        "command: true", "port: 80", "http: http://localhost/",
    ]  # fmt: skip


def test_smoke_check_keys_are_per_kind() -> None:
    (error,) = errors(smoke=[{"port": 80, "status": 200}])
    assert error["type"] == "extra_forbidden"
    assert error["loc"][-1] == "status"


def test_tags_follow_e2b_and_refuse_uuids() -> None:
    assert spec(tags=["stable", "v1.2"]).tags == ["stable", "v1.2"]
    assert "UUID" in errors(tags=["123e4567-e89b-12d3-a456-426614174000"])[0]["msg"]


def test_model_is_immutable() -> None:
    with pytest.raises(ValidationError):
        spec().name = "other"  # type: ignore[misc]


PIP_FORMS = [
    "numpy", "numpy==2.1.*", "pandas[excel,performance]>=2,<3", "zope.interface~=5.0",
    "jupyter_kernel_gateway", "Django!=4.0.1", "pkg===1.0+local", "torch>=2.4.0rc1",
]  # fmt: skip
NPM_FORMS = [
    "typescript", "typescript@5.6.3", "typescript@^5.6", "@types/node", "@types/node@~22.1",
    "semver@>=7.6 <8", "next@latest", "lodash@4.x || 5.x", "left-pad@*",
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "form"),
    [*(("pip_packages", f) for f in PIP_FORMS), *(("npm_packages", f) for f in NPM_FORMS)],
)
def test_package_lists_take_pip_and_npm_forms_as_written(key: str, form: str) -> None:
    assert getattr(spec(**{key: [form]}), key) == [form]
    assert getattr(spec(), key) == []
    assert getattr(spec(**{key: [form, form]}), key) == [form, form]  # rendered once


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("pip_packages", "numpy=2.1", "pip pins with =="),
        ("pip_packages", "numpy >= 2", "without spaces"),
        ("pip_packages", "--pre", "use a run step"),
        ("pip_packages", "pkg @ https://x/p.whl", "need a run step"),
        ("pip_packages", "six; python_version<'3'", "need a run step"),
        ("pip_packages", "six\nx", "without spaces"),
        ("pip_packages", "num$py", "e.g. 'numpy==2.1.*'"),
        ("npm_packages", "lodash=4", "npm pins with @"),
        ("npm_packages", "git+https://x/y.git", "need a run step"),
        ("npm_packages", "./local", "need a run step"),
        ("npm_packages", "React", "lowercase"),
        ("npm_packages", "-g", "use a run step"),
        ("npm_packages", "semver@`id`", "e.g. 'typescript@^5.6'"),
    ],
)
def test_package_items_refused_with_a_fix(key: str, value: str, hint: str) -> None:
    (error,) = errors(**{key: ["six" if key == "pip_packages" else "semver", value]})
    assert error["loc"] == (key, 1)
    assert error["ctx"]["hint"].find(hint) >= 0, error["ctx"]["hint"]


def test_a_package_is_listed_once_whatever_its_spelling() -> None:
    (error,) = errors(pip_packages=["Jupyter-Kernel_Gateway", "jupyter.kernel.gateway>=3"])
    assert error["msg"].startswith("jupyter-kernel-gateway is listed twice")
    (error,) = errors(npm_packages=["@types/node@^22", "@types/node@20"])
    assert error["msg"].startswith("@types/node is listed twice")
    assert spec(npm_packages=["@types/node", "node"]).npm_packages == ["@types/node", "node"]
