"""LINT: judge each selected template's e2b.Dockerfile with hadolint and boxsmith's own rules.

`lint_project` validates and renders in memory (`pipeline.generate`), then for each template
judges the Dockerfile in generated/ when it exists (it may have been edited by hand; `check`
reports that, lint still judges the file as it will be built) or else the fresh render. Every
finding is located twice: the generated file and line, and the spec key behind that line.

Ignores come from three places and apply to hadolint's and the own rules alike: the defaults
(`DEFAULT_IGNORE`, see the package docstring), extra codes from the caller, and each template's
`lint.ignore`. Ignored findings are counted, not shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from boxsmith._internal.dockerfile.parse import parse
from boxsmith._internal.dockerfile.source_map import SourceMap
from boxsmith._internal.lint.findings import Finding, Level, Location
from boxsmith._internal.lint.hadolint import find_hadolint, run_hadolint
from boxsmith._internal.lint.rules import RULES, Hit, Subject
from boxsmith._internal.render import DOCKERFILE, TOML
from boxsmith._internal.render.folder import Rendered
from boxsmith._internal.render.pipeline import generate
from boxsmith.config import Settings
from boxsmith.errors import EXIT_FINDINGS, EXIT_OK

__all__ = [
    "DEFAULT_IGNORE",
    "DEFAULT_THRESHOLD",
    "LintReport",
    "LintedTemplate",
    "lint_project",
]

DEFAULT_THRESHOLD = Level.WARNING
DEFAULT_IGNORE: tuple[str, ...] = ("DL3008", "DL3013", "DL3016", "DL3064", "DL3066")


@dataclass(frozen=True, slots=True)
class LintedTemplate:
    """Which Dockerfile was judged for one template.

    Attributes:
        ref: `name:version`.
        dockerfile: display path of its e2b.Dockerfile in generated/.
        on_disk: the file in generated/ was judged (False: not rendered yet, the render was).
        edited: the file in generated/ differs from what the spec renders now.
    """

    ref: str
    dockerfile: str
    on_disk: bool
    edited: bool


@dataclass(frozen=True, slots=True)
class LintReport:
    """Every finding of one lint run, sorted, and the threshold that decides the exit code."""

    templates: tuple[LintedTemplate, ...]
    findings: tuple[Finding, ...]  # not ignored
    ignored: tuple[Finding, ...]
    threshold: Level

    @property
    def failing(self) -> tuple[Finding, ...]:
        """Findings at or above the threshold."""
        return tuple(f for f in self.findings if f.level >= self.threshold)

    @property
    def exit_code(self) -> int:
        """EXIT_FINDINGS when anything fails the threshold, else EXIT_OK."""
        return EXIT_FINDINGS if self.failing else EXIT_OK

    def counts(self) -> dict[str, int]:
        """Findings per level, highest first."""
        return {
            str(level): sum(1 for f in self.findings if f.level is level)
            for level in sorted(Level, reverse=True)
        }


def _spec_location(rendered: Rendered, source_map: SourceMap, hit: Hit) -> Location | None:
    """The spec position behind a hit: its own key path, or the instruction that wrote its line;
    None when the line was not rendered from the spec or the key is not written in any spec."""
    template = rendered.template
    path = hit.spec_path
    if not path and hit.line:
        instruction = source_map.instruction(hit.line)
        path = instruction.source if instruction else ()
    if not path:
        return None
    where = template.position(*path)
    if where is None or where == template.data.pos:  # the key is a default, written nowhere
        return None
    if hit.key:  # narrow an ENV line down to the variable (`env: {KEY: ...}` or a step's env)
        for extra in (("env", hit.key), (hit.key,)):
            deeper = template.position(*path, *extra)
            if deeper is not None and deeper != where:
                where = deeper
                break
    return Location(where.file, where.line, where.column)


def _lint_one(
    rendered: Rendered, settings: Settings, binary: str
) -> tuple[LintedTemplate, list[Finding]]:
    template = rendered.template
    folder = settings.generated_dir / rendered.folder
    path = folder / DOCKERFILE
    expected = rendered.file(DOCKERFILE).content.decode()
    on_disk = path.is_file()
    actual = path.read_bytes().decode(errors="replace") if on_disk else expected
    dockerfile, toml = settings.display(path), settings.display(folder / TOML)
    source_map = SourceMap(expected, actual, rendered.instructions)
    subject = Subject(
        template, tuple(parse(actual)), tuple(rendered.file(TOML).content.decode().split("\n"))
    )

    def finding(code: str, level: Level, tool: str, hit: Hit, column: int = 1) -> Finding:
        if hit.line and not hit.toml_line:
            generated = Location(dockerfile, hit.line, column)
        else:
            generated = Location(toml, max(hit.toml_line, 1))
        spec = _spec_location(rendered, source_map, hit)
        return Finding(code, level, hit.message, tool, template.ref, generated, spec)

    findings = [
        finding(code, rule.level, "boxsmith", hit)
        for code, rule in RULES.items()
        for hit in rule.check(subject)
    ]
    findings += [
        finding(h.code, h.level, "hadolint", Hit(h.message, h.line), h.column)
        for h in run_hadolint(binary, actual, display=dockerfile, cwd=settings.root)
    ]
    return LintedTemplate(template.ref, dockerfile, on_disk, actual != expected), findings


def lint_project(
    settings: Settings,
    names: Sequence[str] = (),
    labels: Sequence[str] = (),
    *,
    threshold: Level = DEFAULT_THRESHOLD,
    ignore: Iterable[str] = DEFAULT_IGNORE,
) -> LintReport:
    """Lint the selected templates.

    Args:
        settings: the project.
        names: template names or globs (default: all).
        labels: `key=value` filters.
        threshold: findings at or above this level fail the run (`LintReport.exit_code`).
        ignore: codes ignored for every template (default: `DEFAULT_IGNORE`); each template's
            `lint.ignore` is added.

    Raises:
        SpecError: invalid specs (exit 2).
        BoxsmithError: hadolint is missing or failed (exit 3).
    """
    generation = generate(settings, names, labels)
    binary = find_hadolint()
    globally = frozenset(ignore)
    templates: list[LintedTemplate] = []
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for rendered in generation.rendered:
        info, findings = _lint_one(rendered, settings, binary)
        templates.append(info)
        skip = globally | set(rendered.template.spec.lint.ignore)
        for finding in findings:
            (dropped if finding.code in skip else kept).append(finding)
    return LintReport(
        tuple(templates),
        tuple(sorted(kept, key=Finding.sort_key)),
        tuple(sorted(dropped, key=Finding.sort_key)),
        threshold,
    )
