"""YAML loading that remembers where every key and value came from.

Mappings load as `LDict` and sequences as `LList`; both are plain `dict`/`list` subclasses (so
pydantic validates them as usual) that also carry the position of each child. Merging specs
(`extends`) builds new containers that keep the positions of whichever file set each value, so an
error on a merged spec still points at the file and line a user has to edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from boxsmith.errors import Issue

try:  # libyaml is ~10x faster; positions are the same
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the wheel
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_SPEC_BYTES",
    "MAX_VALUES",
    "LDict",
    "LList",
    "Pos",
    "YamlIssue",
    "load_yaml",
    "locate",
    "read_spec",
]

MAX_SPEC_BYTES = 1 << 20  # one spec file; a larger one is refused before it is parsed
MAX_ALIASES = 1000  # alias expansions in one file (a "billion laughs" file needs 10**9)
MAX_VALUES = 100_000  # keys, items and scalars in one file with its aliases expanded
MAX_DEPTH = 100  # levels of nesting


class Pos(NamedTuple):
    """A 1-based position in a displayed file (a tuple: cheap to make for every YAML node)."""

    file: str
    line: int
    column: int


class LDict(dict[str, Any]):
    """A mapping with the position of itself, of each key and of each value."""

    __slots__ = ("key_pos", "pos", "val_pos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[str, Pos] = {}
        self.val_pos: dict[str, Pos] = {}

    def put(self, key: str, value: Any, key_pos: Pos, val_pos: Pos) -> None:
        """Set a key together with its positions."""
        self[key] = value
        self.key_pos[key] = key_pos
        self.val_pos[key] = val_pos

    def copy_entry(self, other: LDict, key: str) -> None:
        """Copy one key, value and positions from another located mapping."""
        self.put(key, other[key], other.key_pos[key], other.val_pos[key])


class LList(list[Any]):
    """A sequence with the position of itself and of each item."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, pos: Pos, items: Iterable[tuple[Any, Pos]] = ()) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[Pos] = []
        for value, where in items:
            self.add(value, where)

    def add(self, value: Any, where: Pos) -> None:
        """Append an item with its position."""
        self.append(value)
        self.item_pos.append(where)

    def entries(self) -> list[tuple[Any, Pos]]:
        """Items paired with their positions."""
        return list(zip(self, self.item_pos, strict=True))


class YamlIssue(Exception):
    """A file that is not a YAML document boxsmith can read; carries the located issue."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def read_spec(path: Path, file: str) -> str:
    """The text of one spec file, at most MAX_SPEC_BYTES long.

    Raises:
        YamlIssue: the file is larger (located at its line 1; the rest is never read).
        UnicodeDecodeError: the file is not UTF-8.
        OSError: it cannot be read.
    """
    with path.open("rb") as handle:
        data = handle.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise YamlIssue(
            Issue(
                file,
                1,
                1,
                f"the spec file is larger than {MAX_SPEC_BYTES // 1024} KiB",
                "split it: move shared parts into an abstract base spec (`extends`)",
            )
        )
    return data.decode("utf-8")


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document into located containers.

    Raises:
        YamlIssue: syntax errors, several documents, duplicate or non-string keys.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Converter(loader, file).convert(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        source_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        has_tab = "\t" in source_line
        hint = _yaml_hint(f"{problem} {exc.context or ''}", has_tab)
        if has_tab:
            context += " (this line holds a tab character; YAML indents with spaces only)"
        raise YamlIssue(Issue(file, line, col, f"YAML syntax: {problem}{context}", hint)) from exc
    except yaml.YAMLError as exc:
        raise YamlIssue(Issue(file, 0, 0, f"YAML: {exc}", "write a single YAML document")) from exc
    finally:
        loader.dispose()


def _yaml_hint(problem: str, has_tab: bool) -> str:
    if "single document" in problem:
        return "keep one template per file; remove the extra `---` documents"
    if has_tab or "tab" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote the value, or put a space after the colon of the key before it"
    return "fix the YAML syntax at this position (check indentation and quoting)"


def _pos(node: yaml.Node, file: str) -> Pos:
    mark = node.start_mark
    return Pos(file, mark.line + 1, mark.column + 1)


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ALIAS_HINT = (
    "write the repeated values out, or share them through an abstract base spec (`extends`)"
)


class _Converter:
    """Builds the located containers from the composed nodes, within the limits: an alias is
    the same node object as its anchor, so a node seen again is an alias being expanded."""

    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.values = 0
        self.aliases = 0
        self.seen: set[int] = set()
        self.flat: dict[int, int] = {}  # mapping node -> its number of keys once merged

    def _limit(self, node: yaml.Node, message: str, hint: str) -> YamlIssue:
        where = _pos(node, self.file)
        return YamlIssue(Issue(self.file, where.line, where.column, message, hint))

    def _count(self, node: yaml.Node, depth: int) -> None:
        self.values += 1
        if id(node) in self.seen:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise self._limit(
                    node,
                    f"YAML aliases expand to more than {MAX_ALIASES} copies of anchored values "
                    "(aliases inside a copied value count too); this value is copied once more",
                    _ALIAS_HINT,
                )
        else:
            self.seen.add(id(node))
        if self.values > MAX_VALUES:
            raise self._limit(
                node,
                f"the file holds more than {MAX_VALUES} values with its aliases expanded",
                _ALIAS_HINT + "; or split the file",
            )
        if depth > MAX_DEPTH:
            raise self._limit(
                node, f"values nest more than {MAX_DEPTH} levels deep", "flatten the structure"
            )

    def _merged_size(self, node: yaml.MappingNode) -> int:
        """How many keys `node` has once its `<<` merge keys are flattened (merges of merges
        multiply), without flattening."""
        known = self.flat.get(id(node))
        if known is not None:
            return known
        self.flat[id(node)] = 0  # a merge that includes itself adds nothing more
        size = 0
        for key, value in node.value:
            if key.tag != _MERGE_TAG:
                size += 1
                continue
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            size += sum(self._merged_size(m) for m in merged if isinstance(m, yaml.MappingNode))
            if size > MAX_VALUES:
                raise self._limit(
                    node,
                    f"YAML merge keys (<<) here bring in more than {MAX_VALUES} keys",
                    _ALIAS_HINT,
                )
        self.flat[id(node)] = size
        return size

    def convert(self, node: yaml.Node, depth: int = 0) -> Any:
        self._count(node, depth)
        file = self.file
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:  # most scalars: skip the constructor machinery
                return node.value
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            out_list = LList(_pos(node, file))
            for item in node.value:
                out_list.append(self.convert(item, depth + 1))
                out_list.item_pos.append(_pos(item, file))
            return out_list
        assert isinstance(node, yaml.MappingNode)
        explicit = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        if len(explicit) != len(node.value):
            self._merged_size(node)
            self.loader.flatten_mapping(node)  # resolve `<<: *anchor` merge keys (they come first)
        out = LDict(_pos(node, file))
        key_pos, val_pos = out.key_pos, out.val_pos
        merged: set[str] = set()
        for key_node, value_node in node.value:
            key = (
                key_node.value
                if key_node.tag == _STR_TAG
                else self.loader.construct_object(key_node)
            )
            where = _pos(key_node, file)
            if not isinstance(key, str):
                raise YamlIssue(
                    Issue(
                        file,
                        where.line,
                        where.column,
                        f"key {key!r} is not a string",
                        "quote the key",
                    )
                )
            if id(key_node) not in explicit:
                merged.add(key)
            elif key in merged:  # an explicit key overrides one brought in by `<<`
                merged.discard(key)
                del out[key]
            if key in out and key not in merged:
                raise YamlIssue(
                    Issue(
                        file,
                        where.line,
                        where.column,
                        f"duplicate key {key!r} (first at line {key_pos[key].line})",
                        "keep one of them; YAML would silently drop the first",
                    )
                )
            out[key] = self.convert(value_node, depth + 1)
            key_pos[key] = where
            val_pos[key] = _pos(value_node, file)
        return out


def locate(root: Any, path: Sequence[str | int], *, key: bool = False) -> Pos | None:
    """The position of the value (or, with `key`, the key) at `path` under `root`.

    Path elements that do not exist (for example pydantic's union tags) are skipped; the deepest
    position found is returned.
    """
    node, best = root, getattr(root, "pos", None)
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if isinstance(node, LDict) and isinstance(part, str) and part in node:
            best = node.key_pos[part] if (key and last) else node.val_pos[part]
            node = node[part]
        elif isinstance(node, LList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_pos[part]
            node = node[part]
        elif isinstance(node, LDict | LList) and isinstance(part, int):
            break
    return best
