"""A rendered template version as builds and smoke tests see it, and the labels on its image.

Template images are a project's own: `boxsmith/<project id>/<name>:<version>` (`image_ref`, the
project id from `Settings.project_id`), labelled with the project, the template, the version, the
build key and the id of the parity base it was built FROM, so `smoke --local` can recompute the
build key from the rendered files without building (`composite.build_key`) and refuse an image
that is not this project's build of them. Another repository with a template of the same name
and version has its own tag and never replaces this project's image.

Kept apart from `boxsmith._internal.build.builder` (which loads the Docker SDK, the stand-in
recipes and the build machinery) so that `boxsmith smoke` starts without them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from boxsmith._internal.docker.labels import PROJECT_LABEL
from boxsmith._internal.dockerfile.parse import Statement, parse
from boxsmith._internal.render import DOCKERFILE
from boxsmith._internal.spec.catalog import Template, load_catalog
from boxsmith.config import Settings
from boxsmith.errors import UsageError

__all__ = [
    "BUILD_KEY_LABEL",
    "PARITY_ID_LABEL",
    "PROJECT_LABEL",
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
PARITY_ID_LABEL = "dev.boxsmith.parity-id"  # the parity base's image id, part of the build key
TEMPLATE_LABEL = "dev.boxsmith.template"
VERSION_LABEL = "dev.boxsmith.version"
USER_LABEL = "dev.boxsmith.user"
WORKDIR_LABEL = "dev.boxsmith.workdir"


@dataclass(frozen=True, slots=True)
class BuildUnit:
    """One rendered template version, ready to build.

    Attributes:
        template: the validated template behind it.
        project: the project's id (`Settings.project_id`): its images are its own.
        folder: `generated/<name>/<version>/`.
        display: `folder` as users see it.
        statements: the instructions of its e2b.Dockerfile.
        base_image: the FROM image.
        user: the final USER (the sandbox default).
        workdir: the final WORKDIR.
    """

    template: Template
    project: str
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
        """The local image tag, `boxsmith/<project id>/<name>:<version>`."""
        return image_ref(self.project, self.template.name, self.template.version)


def image_ref(project: str, name: str, version: str) -> str:
    """The local image tag of a project's template version (`+build` metadata is not valid in
    a tag)."""
    return f"boxsmith/{project}/{name}:{version.replace('+', '_')}"


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
        project=settings.project_id,
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
