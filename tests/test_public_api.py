"""The public surface is small and deliberate: adding or removing a name is a visible change.

It is `boxsmith.__all__`, `boxsmith.config.__all__`, `boxsmith.sandbox.__all__` and
`boxsmith.tasks` (the invoke Collection a project's tasks.py imports, and its task names);
everything under `boxsmith._internal` and every `_`-prefixed module may change without notice.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import boxsmith
import boxsmith.sandbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_public_api_does_not_drift() -> None:
    assert sorted(boxsmith.__all__) == [
        "BoxsmithError", "Catalog", "Issue", "Settings", "SpecError", "Template", "TemplateSpec",
        "UsageError", "__version__", "check_project", "generate", "load_catalog", "load_settings",
        "render_project",
    ]  # fmt: skip
    for name in boxsmith.__all__:
        assert hasattr(boxsmith, name)


def test_config_api_does_not_drift() -> None:
    import boxsmith.config

    assert sorted(boxsmith.config.__all__) == [
        "Settings", "find_root", "load_settings", "project_id", "root_marker",
    ]  # fmt: skip


def test_sandbox_api_does_not_drift() -> None:
    assert sorted(boxsmith.sandbox.__all__) == [
        "CodeResult", "DEFAULT_TEMPLATE", "EXIT_TIMED_OUT", "LANGUAGES", "RetryPolicy",
        "SandboxError", "SandboxSession", "SandboxSessionSync", "TEMPLATE_ENV", "is_transient",
        "with_retries",
    ]  # fmt: skip


def test_tasks_api_does_not_drift() -> None:
    """A project's tasks.py imports `namespace` (or `ns`) and users type the task names."""
    import boxsmith.tasks

    assert sorted(boxsmith.tasks.__all__) == ["namespace", "ns"]
    assert sorted(boxsmith.tasks.namespace.task_names) == [
        "build", "check", "images", "lint", "list", "main", "promote", "publish", "release",
        "render", "report", "rollback", "schema", "smoke", "status", "validate",
    ]  # fmt: skip


def test_every_public_name_imports_in_a_fresh_interpreter() -> None:
    """`from boxsmith import name` for each name of both lists, in a new process: the lazy table
    of `boxsmith` must point at modules that define the names, not at what earlier tests
    imported."""
    code = "\n".join(
        f"from {module.__name__} import {', '.join(module.__all__)}"
        for module in (boxsmith, boxsmith.sandbox)
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr


def test_exit_codes_are_the_documented_scheme() -> None:
    from boxsmith import errors

    assert (
        errors.EXIT_OK, errors.EXIT_FINDINGS, errors.EXIT_USAGE, errors.EXIT_INFRA,
        errors.EXIT_INTERRUPTED,
    ) == (0, 1, 2, 3, 130)  # fmt: skip
    assert errors.SpecError([]).exit_code == 2
    assert errors.UsageError("x").exit_code == 2
    assert errors.BoxsmithError("x").exit_code == 3


def test_exports_match_the_lazy_table() -> None:
    assert set(boxsmith.__all__) - {"__version__"} == set(boxsmith._EXPORTS)


def test_examples_use_only_the_public_api() -> None:
    """What the examples import from boxsmith is named in `boxsmith.__all__` or
    `boxsmith.sandbox.__all__`: they show users what they may rely on."""
    public = {"boxsmith", "boxsmith.sandbox"}
    used: list[str] = []
    for example in sorted(EXAMPLES.glob("*.py")):
        for node in ast.walk(ast.parse(example.read_text(), str(example))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names if alias.name.startswith("boxsmith")]
                assert set(modules) <= public, f"{example.name}: import {modules}"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boxsmith"):
                module = str(node.module)
                assert module in public, f"{example.name}: from {module} import ..."
                exported = importlib.import_module(module).__all__
                for alias in node.names:
                    assert alias.name in exported, f"{example.name}: {module}.{alias.name}"
                    used.append(f"{module}.{alias.name}")
    assert used, "no example imports boxsmith: the check above checked nothing"
