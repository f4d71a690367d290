"""From specs to the generated folder: the desired state, `render` (write it) and `check` (compare).

Both commands compute the same desired state in memory (`generate`); `render` writes the
difference atomically, `check` reports it as drift. Nothing is written when any spec is invalid,
or when the generated folder is not boxsmith's (`outputs.claim`). Only the files the index
records are ever deleted; an update or delete of a file whose content is not what boxsmith
recorded is flagged as replacing a hand edit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from boxsmith._internal.render import TOML
from boxsmith._internal.render.folder import (
    Rendered,
    RenderedFile,
    content_hash,
    digest,
    render_template,
    stamp_publish,
    unstamp_publish,
)
from boxsmith._internal.render.index import INDEX_FILE, Index, VersionEntry, load_index
from boxsmith._internal.render.outputs import Action, Change, DesiredFile, apply, claim, plan
from boxsmith._internal.spec.catalog import Catalog, Template, load_catalog
from boxsmith.config import Settings
from boxsmith.errors import Issue, SpecError

__all__ = [
    "Generation",
    "RenderReport",
    "check_project",
    "claimed_index",
    "generate",
    "render_project",
]


@dataclass(frozen=True, slots=True)
class Generation:
    """The desired content of the generated folder."""

    catalog: Catalog
    rendered: tuple[Rendered, ...]  # the selected templates
    desired: dict[str, DesiredFile]
    keep: tuple[str, ...]  # published version folders that no spec renders any more
    scope: tuple[str, ...] | None  # where stale files may be deleted; None means everywhere
    index: Index
    # every file the index on disk records (boxsmith wrote it), with the hash of what it wrote
    # when known (`file_hash`); only these are ever deleted
    written: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderReport:
    """What `render` or `check` found, per file."""

    generation: Generation
    changes: tuple[Change, ...]
    applied: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    tampered: tuple[tuple[str, str], ...] = ()  # (folder, problem): kept versions edited

    @property
    def drift(self) -> tuple[Change, ...]:
        """The changes that are not `identical`."""
        return tuple(c for c in self.changes if c.action is not Action.IDENTICAL)


def file_hash(rel: str, data: bytes) -> str:
    """The hash of a generated file's content as recorded in the index (`VersionEntry.hashes`):
    header comments and stamped publish ids left out, as in the content hash, so neither
    rewording a header nor publishing counts as an edit."""
    if rel == TOML:
        data = unstamp_publish(data.decode("utf-8", "replace")).encode()
    return digest((RenderedFile(rel, data),))


def _hashes(rendered: Rendered) -> dict[str, str]:
    return {f.rel: file_hash(f.rel, f.content) for f in rendered.files}


def _written(old: Index, rendered: Sequence[Rendered]) -> dict[str, str | None]:
    """Every file the old index records, with the hash boxsmith wrote when known: recorded
    (`hashes`), or, for an index from before per-file hashes, the fresh render's when the
    version's content hash is unchanged (then the render is what was written)."""
    fresh = {(r.template.name, r.template.version): r for r in rendered}
    written: dict[str, str | None] = {INDEX_FILE: None}
    for name, versions in old.templates.items():
        for version, entry in versions.items():
            known: dict[str, str] = dict(entry.hashes)
            same = fresh.get((name, version))
            if not known and same is not None and same.content_hash == entry.content_hash:
                known = _hashes(same)
            for rel in entry.files:
                written[f"{name}/{version}/{rel}"] = known.get(rel)
    return written


def _stamped(rendered: Rendered, entry: VersionEntry | None) -> Rendered:
    record = entry.primary_publish() if entry else None
    if record is None:
        return rendered
    toml = rendered.file(TOML)
    text = stamp_publish(toml.content.decode(), record.model_dump())
    return rendered.with_file(RenderedFile(TOML, text.encode(), toml.executable))


def _immutable(template: Template, previous: VersionEntry) -> Issue:
    where = template.position("version") or template.data.pos
    targets = ", ".join(sorted({p.target for p in previous.publishes}))
    return Issue(
        where.file,
        where.line,
        where.column,
        f"{template.ref} is published ({targets}) and is immutable, but its content would change",
        "bump version (e.g. the patch number) to publish the change",
        "version",
    )


def _record(
    selected: Sequence[Template],
    results: Sequence[Rendered],
    old: Index,
    templates: dict[str, dict[str, VersionEntry]],
) -> list[Rendered]:
    """Record each fresh render in `templates` (the new index) and return the renders to write,
    publish ids stamped in.

    Raises:
        SpecError: new content for a published (immutable) version.
    """
    issues: list[Issue] = []
    rendered: list[Rendered] = []
    for template, result in zip(selected, results, strict=True):
        previous = old.entry(template.name, template.version)
        if previous and previous.published and previous.content_hash != result.content_hash:
            issues.append(_immutable(template, previous))
            continue
        rendered.append(_stamped(result, previous))
        unchanged = previous is not None and previous.content_hash == result.content_hash
        same_files = previous is not None and previous.files == [f.rel for f in result.files]
        templates.setdefault(template.name, {})[template.version] = VersionEntry(
            spec=template.spec_file,
            spec_hash=template.spec_hash,
            content_hash=result.content_hash,
            files=[f.rel for f in result.files],
            # kept as recorded while the content and the files are unchanged: an index from
            # before per-file hashes stays byte-identical until its content changes (a
            # template.py added or removed changes the files, not the content)
            hashes=previous.hashes if previous and unchanged and same_files else _hashes(result),
            publishes=list(previous.publishes) if previous else [],
        )
    if issues:
        raise SpecError(issues)
    return rendered


def _keep_published(old: Index, templates: dict[str, dict[str, VersionEntry]]) -> list[str]:
    """Carry every published version no spec renders any more into `templates`; their folders."""
    keep: list[str] = []
    for name, versions in old.templates.items():
        for version, entry in versions.items():
            if entry.published and version not in templates.get(name, {}):
                templates.setdefault(name, {})[version] = entry
                keep.append(f"{name}/{version}")
    return sorted(keep)


def claimed_index(settings: Settings) -> Index:
    """The index of the project's generated folder, once the folder is proved boxsmith's to
    write in (`outputs.claim`; UsageError otherwise, as for a broken index)."""
    claim(
        settings.generated_dir,
        project=settings.root,
        specs=settings.specs_dir,
        index=INDEX_FILE,
        shown=settings.display(settings.generated_dir),
    )
    path = settings.generated_dir / INDEX_FILE
    return load_index(path, settings.display(path))


def generate(
    settings: Settings, names: Sequence[str] = (), labels: Sequence[str] = ()
) -> Generation:
    """Validate every spec and render the selected templates in memory.

    Raises:
        SpecError: invalid specs, or new content for a published (immutable) version.
    """
    catalog = load_catalog(settings)
    selected = catalog.select(names, labels)
    old = claimed_index(settings)
    chosen = {t.name for t in selected}
    filtered = bool(names or labels)
    templates: dict[str, dict[str, VersionEntry]] = {
        name: dict(versions)
        for name, versions in old.templates.items()
        if filtered and name not in chosen
    }
    results = [
        render_template(template, with_template_py=settings.template_py) for template in selected
    ]
    rendered = _record(selected, results, old, templates)
    keep = _keep_published(old, templates)
    index = Index(templates={n: dict(sorted(v.items())) for n, v in sorted(templates.items())})
    desired: dict[str, DesiredFile] = {}
    for item in rendered:
        for f in item.files:
            desired[f"{item.folder}/{f.rel}"] = DesiredFile(f.content, f.executable)
    desired[INDEX_FILE] = DesiredFile(index.dumps())
    scope = tuple(sorted(chosen)) if filtered else None
    written = _written(old, results)
    return Generation(catalog, tuple(rendered), desired, tuple(keep), scope, index, written)


def _plan(settings: Settings, generation: Generation) -> list[Change]:
    """The plan, with each update or delete of a file that is not what boxsmith wrote (content
    differs from the recorded hash, or not recorded at all) flagged as a hand edit."""
    written = generation.written
    changes = plan(
        settings.generated_dir,
        generation.desired,
        generation.keep,
        generation.scope,
        owned=written,
    )
    return [
        replace(c, hand_edit=True)
        if c.action in (Action.UPDATE, Action.DELETE)
        and c.rel != INDEX_FILE
        and _edited(c, written)
        else c
        for c in changes
    ]


def _edited(change: Change, written: Mapping[str, str | None]) -> bool:
    if change.rel not in written or change.old is None:  # not boxsmith's, or now a link
        return True
    recorded = written[change.rel]
    return recorded is not None and recorded != file_hash(change.rel.split("/", 2)[-1], change.old)


def _report(
    settings: Settings, generation: Generation, applied: bool, changes: list[Change]
) -> RenderReport:
    counts = {a.value: 0 for a in Action}
    for change in changes:
        counts[change.action.value] += 1
    tampered = tuple(verify_kept(settings, generation))
    return RenderReport(generation, tuple(changes), applied, counts, tampered)


def verify_kept(settings: Settings, generation: Generation) -> list[tuple[str, str]]:
    """(folder as users see it, problem) for each kept published version (no spec renders it
    any more, so nothing else looks at it) whose files no longer hash to the recorded content."""
    problems: list[tuple[str, str]] = []
    for folder in generation.keep:
        name, version = folder.split("/", 1)
        entry = generation.index.entry(name, version)
        if entry is None:
            continue
        base = settings.generated_dir / folder
        files: list[RenderedFile] = []
        missing = [rel for rel in entry.files if not (base / rel).is_file()]
        if missing:
            shown = ", ".join(missing)
            problems.append((settings.display(base), f"published files are missing: {shown}"))
            continue
        for rel in entry.files:
            path = base / rel
            data = path.read_bytes()
            if rel == TOML:
                data = unstamp_publish(data.decode("utf-8", "replace")).encode()
            files.append(RenderedFile(rel, data, bool(path.stat().st_mode & 0o111)))
        actual = content_hash(tuple(files))
        if actual != entry.content_hash:
            problems.append(
                (
                    settings.display(base),
                    f"published {name}:{version} was changed on disk (content {actual}, "
                    f"recorded {entry.content_hash})",
                )
            )
    return problems


def render_project(
    settings: Settings,
    names: Sequence[str] = (),
    labels: Sequence[str] = (),
    *,
    dry_run: bool = False,
) -> RenderReport:
    """Render the selected templates into the generated folder (or only plan, with `dry_run`)."""
    generation = generate(settings, names, labels)
    changes = _plan(settings, generation)
    if not dry_run:
        apply(settings.generated_dir, changes, last=INDEX_FILE)
    return _report(settings, generation, not dry_run, changes)


def check_project(
    settings: Settings, names: Sequence[str] = (), labels: Sequence[str] = ()
) -> RenderReport:
    """Re-render in memory and compare with the generated folder; writes nothing."""
    generation = generate(settings, names, labels)
    changes = _plan(settings, generation)
    if generation.scope is not None:  # a filtered check judges only its own templates
        prefixes = tuple(f"{s}/" for s in generation.scope)
        index_path = settings.generated_dir / INDEX_FILE
        on_disk = load_index(index_path, settings.display(index_path))
        own_entries_differ = any(
            on_disk.templates.get(name) != generation.index.templates.get(name)
            for name in generation.scope
        )
        changes = [
            c
            for c in changes
            if c.rel.startswith(prefixes) or (c.rel == INDEX_FILE and own_entries_differ)
        ]
    return _report(settings, generation, False, changes)
