"""How `extends` combines a spec with its bases (documented in docs/spec.md, "Reuse").

Bases apply left to right, then the spec itself:
- scalars and `ready_cmd`: the later value replaces the earlier one;
- `env`, `labels`, `vars`, `resources`: merged by key, the later value wins per key;
- `system_packages`, `tags`: union, earlier items first, no duplicates;
- `pip_packages`, `npm_packages`: union by package: a later item for the same package (another
  version) replaces the earlier one in place;
- `files`: concatenated; a later entry with the same `dest` replaces the earlier one in place;
- `steps`: the base's steps run first, then the spec's;
- `smoke`: concatenated; a later check with the same `name` replaces the earlier one in place;
- `abstract`, `extends`, `matrix` are never inherited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from boxsmith._internal.spec.fields import npm_name, pip_name
from boxsmith._internal.spec.located import LDict, LList

__all__ = ["NOT_INHERITED", "merge"]

NOT_INHERITED = frozenset({"abstract", "extends", "matrix", "name"})


def _by_key(base: Any, child: Any) -> Any:
    if not (isinstance(base, LDict) and isinstance(child, LDict)):
        return child
    out = LDict(child.pos)
    for key in base:
        out.copy_entry(child if key in child else base, key)
    for key in child:
        if key not in out:
            out.copy_entry(child, key)
    return out


def _union(base: Any, child: Any) -> Any:
    if not (isinstance(base, LList) and isinstance(child, LList)):
        return child
    out = LList(child.pos, base.entries())
    for value, where in child.entries():
        if value not in out:
            out.add(value, where)
    return out


def _concat(base: Any, child: Any) -> Any:
    if not (isinstance(base, LList) and isinstance(child, LList)):
        return child
    return LList(child.pos, [*base.entries(), *child.entries()])


def _replace_by(field: str) -> Callable[[Any, Any], Any]:
    """Entries (mappings) with the same `field` value: the later one replaces in place."""
    return _replace_same(lambda value: value.get(field) if isinstance(value, dict) else None)


def _replace_package(name_of: Callable[[str], str]) -> Callable[[Any, Any], Any]:
    """Package items for the same package (by `name_of`): the later one (its version) replaces
    the earlier in place."""
    return _replace_same(lambda value: name_of(value) if isinstance(value, str) else None)


def _replace_same(ident_of: Callable[[Any], object]) -> Callable[[Any, Any], Any]:
    def merge_list(base: Any, child: Any) -> Any:
        if not (isinstance(base, LList) and isinstance(child, LList)):
            return child
        entries = base.entries()
        # only what the base listed is replaced, each once: the child's own stay as written
        inherited = set(range(len(entries)))
        for value, where in child.entries():
            ident = ident_of(value)
            hit = next(
                (
                    i
                    for i, (old, _) in enumerate(entries)
                    if i in inherited and ident is not None and ident_of(old) == ident
                ),
                None,
            )
            if hit is None:
                entries.append((value, where))
            else:
                entries[hit] = (value, where)
                inherited.discard(hit)
        return LList(child.pos, entries)

    return merge_list


_RULES: dict[str, Callable[[Any, Any], Any]] = {
    "env": _by_key,
    "labels": _by_key,
    "lint": _by_key,
    "vars": _by_key,
    "resources": _by_key,
    "system_packages": _union,
    "pip_packages": _replace_package(pip_name),
    "npm_packages": _replace_package(npm_name),
    "tags": _union,
    "files": _replace_by("dest"),
    "steps": _concat,
    "smoke": _replace_by("name"),
}


def merge(base: LDict, child: LDict) -> LDict:
    """`child` laid over `base` by the rules above; positions follow the values."""
    out = LDict(child.pos)
    for key in base:
        if key not in NOT_INHERITED:
            out.copy_entry(base, key)
    for key in child:
        rule = _RULES.get(key)
        if rule is not None and key in out:
            out.put(key, rule(out[key], child[key]), child.key_pos[key], child.val_pos[key])
        else:
            out.copy_entry(child, key)
    return out
