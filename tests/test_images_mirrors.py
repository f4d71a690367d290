"""The mirror map and the stand-in recipes' reference checks, without a Docker engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxsmith._internal.build.base_images import DEFAULT_MIRRORS, resolve_mirrors
from boxsmith._internal.build.debootstrap import _check_suite
from boxsmith._internal.build.standins import RECIPES, StandInUnsupported
from boxsmith._internal.docker.client import BuildFailed, split_ref
from boxsmith.errors import UsageError


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("debian:bookworm-slim", ("debian", "bookworm-slim")),
        ("python", ("python", "latest")),
        ("localhost:5000/library/node:21", ("localhost:5000/library/node", "21")),
        ("localhost:5000/node", ("localhost:5000/node", "latest")),
    ],
)
def test_split_ref(ref: str, expected: tuple[str, str]) -> None:
    assert split_ref(ref) == expected


def test_user_entries_come_first_and_an_empty_value_drops_a_default() -> None:
    mirrors = resolve_mirrors({"*": "mirror.example:5000/library/{ref}", "node:*": ""})
    assert next(iter(mirrors)) == "*"
    assert "node:*" not in mirrors
    assert mirrors["python:*"] == DEFAULT_MIRRORS["python:*"]


def test_unknown_recipe_suggests_the_closest() -> None:
    with pytest.raises(UsageError) as info:
        resolve_mirrors({"debian:trixie": "stand-in:debain"})
    assert "stand-in:debian" in info.value.hint


def test_bad_placeholder_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="bad placeholder"):
        resolve_mirrors({"node:*": "mirror.example/{image}"})


@pytest.mark.parametrize(
    ("recipe", "ref", "reason"),
    [
        ("debian", "debian:sid", "debian:bookworm, debian:trixie and their -slim variants"),
        (
            "python",
            "python:3.12-slim",
            "no stand-in has Python 3.12: Debian 12 (bookworm) provides Python 3.11 only, "
            "Debian 13 (trixie) provides Python 3.13 only",
        ),
        ("python", "python:3.11-trixie", "Debian 13 (trixie) provides Python 3.13 only"),
        ("python", "python:3.13-slim-bookworm", "Debian 12 (bookworm) provides Python 3.11 only"),
        ("python", "python:3.11-alpine", "python:3.13[-slim][-trixie]"),
        ("node", "node:lts-slim", "node:<major>"),
        ("node", "node:19-slim", "not 19"),
        ("buildpack-deps", "buildpack-deps:sid", "bookworm-curl"),
    ],
)
def test_recipes_reject_what_they_cannot_make(recipe: str, ref: str, reason: str) -> None:
    with pytest.raises(StandInUnsupported) as info:
        RECIPES[recipe].plan(ref)
    assert reason in info.value.message
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    ("ref", "base"),
    [
        ("python:3.11-slim", "debian:bookworm-slim"),
        ("python:3.11-slim-bookworm", "debian:bookworm-slim"),
        ("python:3.11", "buildpack-deps:bookworm"),
        ("python:3.13-slim", "debian:trixie-slim"),
        ("python:3.13-slim-trixie", "debian:trixie-slim"),
        ("python:3.13", "buildpack-deps:trixie"),
        ("python:3.13-trixie", "buildpack-deps:trixie"),
        ("buildpack-deps:trixie", "buildpack-deps:trixie-scm"),
        ("buildpack-deps:trixie-scm", "buildpack-deps:trixie-curl"),
        ("buildpack-deps:trixie-curl", "debian:trixie"),
    ],
)
def test_python_comes_from_the_debian_release_that_ships_it(ref: str, base: str) -> None:
    """Python 3.11 is bookworm's python3, 3.13 trixie's; each on that release's own tiers."""
    assert RECIPES[split_ref(ref)[0]].plan(ref).base == base


@pytest.mark.parametrize(
    "ref", ["debian:trixie", "debian:trixie-slim", "debian:13", "debian:13-slim"]
)
def test_debian_makes_trixie(ref: str) -> None:
    plan = RECIPES["debian"].plan(ref)
    assert plan.base is None
    assert plan.source.startswith("debootstrap --variant=minbase trixie from ")
    assert plan.source.endswith(", slimmed") == ref.endswith("-slim")


def test_debian_and_python_plans_need_no_network() -> None:
    assert RECIPES["debian"].plan("debian:bookworm-slim").base is None
    assert RECIPES["python"].plan("python:3.11-slim").base == "debian:bookworm-slim"
    assert RECIPES["python"].plan("python:3.11").base == "buildpack-deps:bookworm"
    assert RECIPES["buildpack-deps"].plan("buildpack-deps:bookworm").base == (
        "buildpack-deps:bookworm-scm"
    )


def test_a_debootstrap_without_the_suite_says_so_before_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older debootstrap (no script for the suite) is named as the problem, with the fix."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/bookworm").write_text("")
    monkeypatch.setenv("DEBOOTSTRAP_DIR", str(tmp_path))
    _check_suite("/usr/sbin/debootstrap", "bookworm")
    with pytest.raises(BuildFailed) as info:
        _check_suite("/usr/sbin/debootstrap", "trixie")
    assert f"cannot make Debian trixie: it has no {tmp_path}/scripts/trixie script" in (
        info.value.message
    )
    assert "newer debootstrap" in info.value.hint
    assert info.value.exit_code == 3
