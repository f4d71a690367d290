"""E2B's rules for template names and tags, shared by spec validation, publishing and the local
backend (which refuses what E2B refuses)."""

from __future__ import annotations

import re
import uuid

__all__ = ["MAX_NAME", "MAX_TAG", "NAME_RE", "TAG_RE", "name_error", "tag_error", "version_tag"]

# E2B's rules (its API server's id validation; documented in docs/spec.md)
NAME_RE = re.compile(r"^[a-z0-9_-]+$")
TAG_RE = re.compile(r"^[a-z0-9_.-]+$")
# E2B's CLI refuses names longer than 128 (E2B packages/cli/src/utils/templateName.ts); its
# server stores tags as unbounded text, so tags get the same bound, which is also Docker's
# longest image tag.
MAX_NAME = 128
MAX_TAG = 128


def version_tag(version: str) -> str:
    """The E2B tag of a template version (`+build` metadata is not valid in a tag)."""
    return version.replace("+", "_")


def name_error(name: str) -> str | None:
    """Why E2B refuses `name` as a template name, or None."""
    rule = f"E2B's rule ^[a-z0-9-_]+$ (at most {MAX_NAME} characters)"
    if len(name) > MAX_NAME:
        return f"template name {name[:40]!r}... ({len(name)} characters) breaks {rule}"
    if not NAME_RE.fullmatch(name):
        return f"template name {name!r} breaks {rule}"
    return None


def tag_error(tag: str) -> str | None:
    """Why E2B refuses `tag` as a tag, or None: ^[a-z0-9-_.]+$, at most 128 characters and not
    a UUID (build ids)."""
    if len(tag) > MAX_TAG:
        return f"tag {tag[:40]!r}... ({len(tag)} characters) is longer than {MAX_TAG} characters"
    if not TAG_RE.fullmatch(tag):
        return f"tag {tag!r} breaks E2B's rule ^[a-z0-9-_.]+$"
    try:
        uuid.UUID(tag)
    except ValueError:
        return None
    return f"tag {tag!r} is a UUID, which E2B reserves for build ids"
