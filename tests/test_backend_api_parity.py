"""The local backend's REST control plane against E2B's API as the unchanged e2b SDK calls it:
`Sandbox.list` paging (`limit`, `x-next-token`) and filters, over real HTTP against
`boxsmith backend serve` (a real process) with sandboxes as containers.

Marked `docker`. One backend serves the module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from e2b import Sandbox, SandboxQuery, SandboxState, Template

from tests.helpers import Backend

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def template(backend: Backend) -> str:
    """A template with nothing added to its base image."""
    name = f"parity-{uuid.uuid4().hex[:8]}"
    Template.build(Template().from_image("debian:bookworm-slim"), name)
    return name


@pytest.fixture(scope="module")
def three(template: str) -> Iterator[tuple[str, list[Sandbox]]]:
    """Three sandboxes sharing a marker in their metadata (the last also `role=odd`), started
    one after another."""
    marker = uuid.uuid4().hex[:8]
    started: list[Sandbox] = []
    try:
        for i in range(3):
            meta = {"marker": marker, **({"role": "odd"} if i == 2 else {})}
            started.append(Sandbox.create(template, metadata=meta, timeout=300))
        yield marker, started
    finally:
        for sbx in started:
            sbx.kill()


def test_list_pages_by_limit_and_next_token(three: tuple[str, list[Sandbox]]) -> None:
    marker, started = three
    pages = Sandbox.list(query=SandboxQuery(metadata={"marker": marker}), limit=2)
    first = pages.next_items()
    assert len(first) == 2
    assert pages.has_next
    token = pages.next_token
    assert token
    second = pages.next_items()
    assert not pages.has_next
    assert pages.next_token is None
    # newest first, as E2B lists them; every sandbox once
    newest_first = [s.sandbox_id for s in reversed(started)]
    assert [s.sandbox_id for s in first + second] == newest_first
    # the token resumes in another paginator too
    resumed = Sandbox.list(
        query=SandboxQuery(metadata={"marker": marker}), limit=2, next_token=token
    )
    assert [s.sandbox_id for s in resumed.next_items()] == newest_first[2:]
    oldest_first = Sandbox.list(
        query=SandboxQuery(metadata={"marker": marker}), limit=3, order="asc"
    ).next_items()
    assert [s.sandbox_id for s in oldest_first] == newest_first[::-1]


def test_list_filters(template: str, three: tuple[str, list[Sandbox]]) -> None:
    marker, started = three

    def ids(**query: object) -> list[str]:
        found = Sandbox.list(query=SandboxQuery(**query)).next_items()  # type: ignore[arg-type]
        return [s.sandbox_id for s in found if s.metadata.get("marker") == marker]

    assert ids(metadata={"marker": marker, "role": "odd"}) == [started[2].sandbox_id]
    assert ids(metadata={"marker": marker, "role": "none"}) == []
    assert ids(state=[SandboxState.PAUSED]) == []
    assert len(ids(state=[SandboxState.RUNNING, SandboxState.PAUSED])) == 3
    assert len(ids(template=template)) == 3
    assert ids(template="parity-no-such-template") == []
    later = started[1].get_info().started_at
    assert ids(started_after=later) == [started[2].sandbox_id, started[1].sandbox_id]
