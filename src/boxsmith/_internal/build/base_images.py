"""Base images for local builds: use them when present, pull them, or make local stand-ins.

`ensure_image` makes sure one reference resolves locally, in this order:
1. an image by that reference exists and is not an outdated boxsmith stand-in: nothing to do;
2. a pull from its registry succeeds within a short timeout;
3. the mirror map has an entry for it: `stand-in:<recipe>` builds a stand-in with that recipe
   (`boxsmith._internal.build.standins.RECIPES`), anything else is a reference to pull and
   `docker tag`, with `{ref}`, `{name}` and `{tag}` replaced (a registry mirror:
   `mirror.example:5000/library/{ref}`);
4. otherwise `ImageUnavailable` (exit 3) says how to provide the image.

The mirror map is data (`DEFAULT_MIRRORS`); keys are references or fnmatch patterns, an exact key
wins, then the first matching pattern; `resolve_mirrors` puts a user's entries (from
`[tool.boxsmith.mirrors]`) first, and an empty value there removes a default. Every stand-in
carries `dev.boxsmith=1`, `dev.boxsmith.stand-in=<the image it stands in for>`,
`dev.boxsmith.stand-in.recipe=<recipe>/<version>` (checked to decide whether to rebuild) and
`dev.boxsmith.stand-in.source` (what went in).
"""

from __future__ import annotations

import difflib
import fnmatch
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from boxsmith._internal.build.standins import RECIPES, StandInUnsupported
from boxsmith._internal.docker.client import LABEL, Engine, EngineError, split_ref
from boxsmith.errors import BoxsmithError, UsageError

__all__ = [
    "DEFAULT_MIRRORS",
    "STAND_IN_LABEL",
    "Ensured",
    "ImageUnavailable",
    "ensure_image",
    "resolve_mirrors",
]

STAND_IN = "stand-in:"
STAND_IN_LABEL = "dev.boxsmith.stand-in"
RECIPE_LABEL = "dev.boxsmith.stand-in.recipe"
SOURCE_LABEL = "dev.boxsmith.stand-in.source"

# Patterns reach a recipe, which then says exactly which tags it can make (python:3.12 cannot be
# made from Debian 12 or 13, for one: the error says to map it to a registry that has it).
DEFAULT_MIRRORS: dict[str, str] = {
    "debian:*": "stand-in:debian",
    "buildpack-deps:*": "stand-in:buildpack-deps",
    "node:*": "stand-in:node",
    "python:*": "stand-in:python",
}


class ImageUnavailable(BoxsmithError):
    """A base image is not local, cannot be pulled and has no stand-in or mirror (exit 3)."""


@dataclass(frozen=True, slots=True)
class Ensured:
    """What `ensure_image` did for one reference.

    Attributes:
        ref: the image reference.
        action: `present`, `pulled`, `mirrored` (pulled from the mirror map and tagged) or
            `built` (a stand-in).
        detail: the stand-in's source, the mirror, or what was found.
        seconds: time spent.
        size: image size in bytes.
    """

    ref: str
    action: str
    detail: str
    seconds: float
    size: int

    def to_json(self) -> dict[str, object]:
        """Plain mapping for `--json` output."""
        return {
            "ref": self.ref,
            "action": self.action,
            "detail": self.detail,
            "seconds": round(self.seconds, 1),
            "size": self.size,
        }


def resolve_mirrors(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The mirror map: `overrides` first (an empty value drops that key), then the defaults.

    Raises UsageError for a `stand-in:` value naming no recipe, or an unknown placeholder.
    """
    user = dict(overrides or {})
    merged = {**user, **{k: v for k, v in DEFAULT_MIRRORS.items() if k not in user}}
    for key, value in merged.items():
        if value.startswith(STAND_IN) and value[len(STAND_IN) :] not in RECIPES:
            recipe = value[len(STAND_IN) :]
            close = difflib.get_close_matches(recipe, list(RECIPES), n=1)
            raise UsageError(
                f"[tool.boxsmith.mirrors] {key!r}: unknown stand-in recipe {recipe!r}",
                f"did you mean 'stand-in:{close[0]}'?"
                if close
                else f"known recipes: {', '.join(RECIPES)}",
            )
        try:
            value.format(ref="r", name="n", tag="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"[tool.boxsmith.mirrors] {key!r}: bad placeholder in {value!r} ({exc})",
                "use {ref}, {name} or {tag}",
            ) from exc
    return {k: v for k, v in merged.items() if v}


def _mirror_for(ref: str, mirrors: Mapping[str, str]) -> str | None:
    if ref in mirrors:
        return mirrors[ref]
    return next((v for k, v in mirrors.items() if fnmatch.fnmatchcase(ref, k)), None)


@dataclass
class _Run:
    engine: Engine
    mirrors: Mapping[str, str]
    pull_timeout: int
    log: Callable[[str], None]
    done: list[Ensured] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    pull_failed: set[str] = field(default_factory=set)

    def ensure(self, ref: str) -> None:
        if ref in self.seen:
            return
        self.seen.add(ref)
        start = time.monotonic()
        entry = _mirror_for(ref, self.mirrors)
        recipe = (
            RECIPES.get(entry[len(STAND_IN) :]) if entry and entry.startswith(STAND_IN) else None
        )
        info = self.engine.image(ref)
        if info is not None:
            built_by = info.labels.get(RECIPE_LABEL)
            current = f"{recipe.name}/{recipe.version}" if recipe else None
            if current is None or built_by in (None, current):
                what = f"stand-in ({built_by})" if built_by else "local image"
                self.done.append(Ensured(ref, "present", what, time.monotonic() - start, info.size))
                return
            self.log(f"{ref}: stand-in recipe changed ({built_by} -> {current}); rebuilding")
        else:
            try:
                self.engine.pull(ref, timeout=self.pull_timeout)
                self._record(ref, "pulled", "from its registry", start)
                return
            except EngineError as exc:
                self.log(f"{ref}: pull failed ({exc.message.split(': ', 1)[-1]})")
                self.pull_failed.add(ref)
        if entry is None:
            raise self._unavailable(ref, "the mirror map has no entry for it")
        if recipe is None:
            self._mirror(ref, entry, start)
            return
        try:
            plan = recipe.plan(ref)
        except StandInUnsupported as exc:
            raise self._unavailable(ref, exc.message) from exc
        if plan.base is not None:
            self.ensure(plan.base)
            start = time.monotonic()  # report this image's own build time
        labels = {
            LABEL: "1",
            STAND_IN_LABEL: ref,
            RECIPE_LABEL: f"{recipe.name}/{recipe.version}",
            SOURCE_LABEL: plan.source,
        }
        self.log(f"{ref}: building a stand-in: {plan.source}")
        with tempfile.TemporaryDirectory(prefix="boxsmith-standin-") as tmp:
            plan.build(self.engine, ref, labels, Path(tmp), self.log)
        self._record(ref, "built", f"stand-in: {plan.source}", start)

    def _unavailable(self, ref: str, why: str) -> ImageUnavailable:
        name, tag = split_ref(ref)
        pulled = "pulling it failed and " if ref in self.pull_failed else ""
        return ImageUnavailable(
            f"cannot provide base image {ref}: {pulled}{why}",
            f"pull it from a registry or mirror you can reach and `docker tag <that> {ref}`, or "
            f'map it in pyproject.toml: [tool.boxsmith.mirrors] "{ref}" = '
            f'"registry.example.com/library/{name}:{tag}"',
        )

    def _mirror(self, ref: str, entry: str, start: float) -> None:
        name, tag = split_ref(ref)
        source = entry.format(ref=ref, name=name, tag=tag)
        try:
            self.engine.pull(source, timeout=max(self.pull_timeout, 300))
        except EngineError as exc:
            if self.engine.image(source) is None:
                raise self._unavailable(ref, f"its mirror {source} failed: {exc.message}") from exc
            self.log(f"{ref}: pulling {source} failed; using the local {source}")
        self.engine.tag(source, ref)
        self._record(ref, "mirrored", f"from {source}", start)

    def _record(self, ref: str, action: str, detail: str, start: float) -> None:
        info = self.engine.image(ref)
        seconds = time.monotonic() - start
        self.done.append(Ensured(ref, action, detail, seconds, info.size if info else 0))
        self.log(f"{ref}: {action} in {seconds:.1f}s")


def ensure_image(
    engine: Engine,
    ref: str,
    *,
    mirrors: Mapping[str, str] | None = None,
    pull_timeout: int = 20,
    log: Callable[[str], None] | None = None,
) -> list[Ensured]:
    """Make `ref` available in the engine; returns what was done, base images first.

    Args:
        engine: an entered `Engine`.
        ref: the image reference, e.g. `node:21-slim`.
        mirrors: the mirror map (default: `resolve_mirrors()`).
        pull_timeout: seconds to wait for a registry before falling back to the mirror map.
        log: receives progress lines (default: discarded).
    """
    run = _Run(
        engine,
        resolve_mirrors() if mirrors is None else mirrors,
        pull_timeout,
        log or (lambda line: None),
    )
    run.ensure(ref)
    return run.done
