"""The public surface is small and deliberate: adding or removing a name is a visible change."""

from __future__ import annotations

import boxsmith


def test_public_api_does_not_drift() -> None:
    assert sorted(boxsmith.__all__) == [
        "BoxsmithError", "Catalog", "Issue", "Settings", "SpecError", "Template", "TemplateSpec",
        "UsageError", "__version__", "check_project", "generate", "load_catalog", "load_settings",
        "render_project",
    ]  # fmt: skip
    for name in boxsmith.__all__:
        assert hasattr(boxsmith, name)


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
