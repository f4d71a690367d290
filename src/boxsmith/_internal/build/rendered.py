"""A rendered template version as builds and smoke tests see it, and the labels on its image.

Kept apart from `boxsmith._internal.build.builder` (which loads the Docker SDK, the stand-in
recipes and the build machinery) so that `boxsmith smoke` starts without them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from boxsmith._internal.dockerfile.parse import Statement, parse
from boxsmith._internal.render import DOCKERFILE
from boxsmith._internal.spec.catalog import Template, load_catalog
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = [
    "BUILD_KEY_LABEL",
    "TEMPLATE_LABEL",
    "USER_LABEL",
    "VERSION_LABEL",
    "WORKDIR_LABEL",
    "BuildUnit",
    "image_ref",
    "load_unit",
    "select_units",
]

BUILD_KEY_LABEL = "dev.boxsmith.build-key"
TEMPLATE_LABEL = "dev.boxsmith.template"
VERSION_LABEL = "dev.boxsmith.version"
USER_LABEL = "dev.boxsmith.user"
WORKDIR_LABEL = "dev.boxsmith.workdir"


@dataclass(frozen=True, slots=True)
class BuildUnit:
    """One rendered template version, ready to build.

    Attributes:
        template: the validated template behind it.
        folder: `generated/<name>/<version>/`.
        display: `folder` as users see it.
        statements: the instructions of its e2b.Dockerfile.
        base_image: the FROM image.
        user: the final USER (the sandbox default).
        workdir: the final WORKDIR.
    """

    template: Template
    folder: Path
    display: str
    statements: tuple[Statement, ...]
    base_image: str
    user: str
    workdir: str

    @property
    def ref(self) -> str:
        """`name:version`."""
        return self.template.ref

    @property
    def image(self) -> str:
        """The local image tag, `boxsmith/<name>:<version>`."""
        return image_ref(self.template.name, self.template.version)


def image_ref(name: str, version: str) -> str:
    """The local image tag of a template version (`+build` metadata is not valid in a tag)."""
    return f"boxsmith/{name}:{version.replace('+', '_')}"


def load_unit(settings: Settings, template: Template) -> BuildUnit:
    """Read a template's rendered folder; UsageError (exit 2) when it was never rendered."""
    folder = settings.generated_dir / template.name / template.version
    dockerfile = folder / DOCKERFILE
    display = settings.display(folder)
    if not dockerfile.is_file():
        raise UsageError(
            f"{template.ref} is not rendered: {settings.display(dockerfile)} does not exist",
            "run `boxsmith render` first",
        )
    statements = tuple(parse(dockerfile.read_text(encoding="utf-8")))
    froms = [s for s in statements if s.keyword == "FROM"]
    if len(froms) != 1:
        raise UsageError(
            f"{settings.display(dockerfile)}: expected exactly one FROM, found {len(froms)}",
            "run `boxsmith render` to restore the generated file",
        )
    user, workdir = "user", "/home/user"  # what E2B uses when a template never sets them
    for statement in statements:
        if statement.keyword == "USER" and statement.words():
            user = statement.words()[0]
        elif statement.keyword == "WORKDIR" and statement.words():
            workdir = posixpath.normpath(posixpath.join(workdir, statement.words()[0]))
    return BuildUnit(
        template=template,
        folder=folder,
        display=display,
        statements=statements,
        base_image=froms[0].words()[0],
        user=user,
        workdir=workdir,
    )


def select_units(
    settings: Settings, names: Sequence[str], labels: Sequence[str]
) -> list[BuildUnit]:
    """The rendered folders of the selected templates (UsageError when one is not rendered)."""
    return [load_unit(settings, t) for t in load_catalog(settings).select(names, labels)]
