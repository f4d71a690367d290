"""The mirror map and the stand-in recipes' reference checks, without a Docker engine."""

from __future__ import annotations

import pytest

from boxsmith._internal.build.base_images import DEFAULT_MIRRORS, resolve_mirrors
from boxsmith._internal.build.standins import RECIPES, StandInUnsupported
from boxsmith._internal.docker.client import split_ref
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
        ("debian", "debian:trixie", "debian:bookworm and debian:bookworm-slim"),
        ("python", "python:3.12-slim", "provides Python 3.11 only"),
        ("python", "python:3.11-alpine", "python:3.11[-slim][-bookworm]"),
        ("node", "node:lts-slim", "node:<major>"),
        ("node", "node:19-slim", "not 19"),
        ("buildpack-deps", "buildpack-deps:trixie", "bookworm-curl"),
    ],
)
def test_recipes_reject_what_they_cannot_make(recipe: str, ref: str, reason: str) -> None:
    with pytest.raises(StandInUnsupported) as info:
        RECIPES[recipe].plan(ref)
    assert reason in info.value.message
    assert info.value.exit_code == 3


def test_debian_and_python_plans_need_no_network() -> None:
    assert RECIPES["debian"].plan("debian:bookworm-slim").base is None
    assert RECIPES["python"].plan("python:3.11-slim").base == "debian:bookworm-slim"
    assert RECIPES["python"].plan("python:3.11").base == "buildpack-deps:bookworm"
    assert RECIPES["buildpack-deps"].plan("buildpack-deps:bookworm").base == (
        "buildpack-deps:bookworm-scm"
    )
