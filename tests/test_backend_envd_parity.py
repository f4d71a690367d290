"""The envd data plane as E2B's envd behaves, seen through the unchanged e2b SDK over real HTTP
against `boxsmith backend serve` (a real process), sandboxes as containers of a template built
through the SDK: how a command's end by its timeout or by the sandbox's kill surfaces, reading
files whose `stat` size says nothing (`/proc`), symlinks in `get_info`, unknown users, and the
envd version the backend advertises (0.6.2) with what it turns on in the SDK: file metadata.

Marked `docker`. One backend and one template serve the module.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator

import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    CommandExitException,
    FileType,
    InvalidArgumentException,
    Sandbox,
    SandboxException,
    Template,
    TemplateException,
    TimeoutException,
)
from e2b.sandbox.filesystem.filesystem import WriteEntry
from packaging.version import Version

from tests.helpers import Backend

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"


@pytest.fixture(scope="module")
def template(backend: Backend) -> str:
    name = f"parity-{uuid.uuid4().hex[:8]}"
    Template.build(Template().from_image(BASE).set_user("user").set_workdir("/home/user"), name)
    return name


@pytest.fixture
def sandbox(template: str) -> Iterator[Sandbox]:
    sbx = Sandbox.create(template, timeout=120)
    yield sbx
    sbx.kill()


def test_a_commands_own_timeout_is_a_timeout_not_an_exit(template: str) -> None:
    async def scenario() -> None:
        sbx = await AsyncSandbox.create(template, timeout=120)
        try:
            with pytest.raises(TimeoutException, match="timeout") as raised:
                await sbx.commands.run("sleep 10", timeout=2)
            assert not isinstance(raised.value, CommandExitException)
            # the process was ended with its timeout, as envd ends it
            assert (await sbx.commands.list()) == []
        finally:
            await sbx.kill()

    asyncio.run(scenario())


def test_a_command_ended_by_the_sandboxs_kill_is_a_timeout(template: str) -> None:
    async def scenario() -> None:
        sbx = await AsyncSandbox.create(template, timeout=120)
        handle = await sbx.commands.run("sleep 60", background=True)
        await sbx.kill()
        with pytest.raises(TimeoutException) as raised:
            await handle.wait()
        assert "sandbox was killed or reached its end of life" in str(raised.value)

    asyncio.run(scenario())


def test_the_sync_sdk_sees_the_kill_the_same_way(template: str) -> None:
    sbx = Sandbox.create(template, timeout=120)
    handle = sbx.commands.run("sleep 60", background=True)
    sbx.kill()
    with pytest.raises(SandboxException) as raised:
        handle.wait()
    assert isinstance(raised.value, TimeoutException)
    assert "sandbox was killed or reached its end of life" in str(raised.value)


def test_proc_files_read_as_cat_shows_them(sandbox: Sandbox) -> None:
    for path in ("/proc/cpuinfo", "/proc/sys/kernel/random/boot_id", "/proc/self/status"):
        text = sandbox.files.read(path)
        assert text, path
        if path != "/proc/self/status":  # a different process each time
            assert text == sandbox.commands.run(f"cat {path}").stdout, path
    assert "processor" in sandbox.files.read("/proc/cpuinfo")
    assert len(sandbox.files.read("/proc/sys/kernel/random/boot_id").strip()) == 36
    assert sandbox.files.read("/proc/cpuinfo", format="bytes").startswith(b"processor")


def test_an_empty_file_still_reads_empty(sandbox: Sandbox) -> None:
    sandbox.files.write("empty.txt", b"")
    assert sandbox.files.read("empty.txt") == ""


def test_get_info_of_a_symlink_names_its_absolute_target(sandbox: Sandbox) -> None:
    sandbox.files.write("links/dir/test.txt", "Hello, World!")
    sandbox.commands.run("ln -s test.txt link.txt", cwd="links/dir")
    sandbox.commands.run("ln -s dir/link.txt chain.txt && ln -s dir dirlink", cwd="links")
    home = sandbox.commands.run("pwd").stdout.strip()

    file = sandbox.files.get_info("links/dir/link.txt")
    assert file.type == FileType.SYMLINK  # envd marks the link itself (is_symlink)
    assert file.symlink_target == f"{home}/links/dir/test.txt"
    assert file.path == f"{home}/links/dir/link.txt"
    assert file.name == "link.txt"

    chained = sandbox.files.get_info("links/chain.txt")  # followed to the end, as envd does
    assert chained.symlink_target == f"{home}/links/dir/test.txt"

    listed = {e.name: e for e in sandbox.files.list("links", depth=2)}
    assert listed["link.txt"].symlink_target == f"{home}/links/dir/test.txt"
    assert listed["chain.txt"].symlink_target == f"{home}/links/dir/test.txt"
    assert listed["dirlink"].symlink_target == f"{home}/links/dir"
    assert listed["test.txt"].symlink_target is None
    assert (listed["test.txt"].type, listed["dir"].type) == (FileType.FILE, FileType.DIR)


def test_the_link_entrys_own_type_is_its_targets(sandbox: Sandbox) -> None:
    """The EntryInfo on the wire: `type` is the target's, `is_symlink` marks the link."""
    from e2b.envd.filesystem import filesystem_pb

    sandbox.commands.run("mkdir -p d && ln -sfn d dl")
    rpc = sandbox.files._rpc  # the SDK's own generated client
    entry = rpc.stat(filesystem_pb.StatRequest(path="/home/user/dl")).entry
    assert entry is not None
    assert (entry.type, entry.is_symlink) == (filesystem_pb.FileType.DIRECTORY, True)


def test_an_unknown_user_is_envds_invalid_username(sandbox: Sandbox) -> None:
    with pytest.raises(AuthenticationException, match=r"invalid username: 'root123'"):
        sandbox.commands.run("whoami", user="root123")
    # a known user still runs
    assert sandbox.commands.run("whoami", user="root").stdout == "root\n"


def test_the_sandbox_reports_envd_0_6_2(sandbox: Sandbox) -> None:
    assert sandbox._envd_version == Version("0.6.2")
    assert sandbox.get_info().envd_version == "0.6.2"


def test_metadata_written_comes_back_from_write_get_info_list_and_rename(
    sandbox: Sandbox,
) -> None:
    written = sandbox.files.write("meta/a.txt", "hello", metadata={"Author": "mish", "k": "v 1"})
    expected = {"author": "mish", "k": "v 1"}  # envd lowercases the keys (HTTP headers)
    assert written.metadata == expected
    assert sandbox.files.get_info("meta/a.txt").metadata == expected
    sandbox.files.write("meta/plain.txt", "no metadata")
    listed = {e.name: e.metadata for e in sandbox.files.list("meta")}
    assert listed == {"a.txt": expected, "plain.txt": None}
    assert sandbox.files.get_info("meta/plain.txt").metadata is None
    assert sandbox.files.read("meta/a.txt") == "hello"
    moved = sandbox.files.rename("meta/a.txt", "meta/b.txt")
    assert moved.metadata == expected
    # a copy that keeps xattrs keeps the metadata: it is the file's, not the backend's
    sandbox.commands.run("cp --preserve=xattr meta/b.txt meta/copy.txt")
    assert sandbox.files.get_info("meta/copy.txt").metadata == expected


def test_an_overwrite_replaces_the_whole_set(sandbox: Sandbox) -> None:
    sandbox.files.write("over.txt", "1", metadata={"a": "1", "b": "2"})
    assert sandbox.files.write("over.txt", "2", metadata={"a": "3"}).metadata == {"a": "3"}
    assert sandbox.files.get_info("over.txt").metadata == {"a": "3"}
    assert sandbox.files.write("over.txt", "3").metadata is None
    assert sandbox.files.get_info("over.txt").metadata is None


def test_every_upload_form_carries_metadata(sandbox: Sandbox) -> None:
    meta = {"source": "test"}
    many = sandbox.files.write_files(
        [WriteEntry(path="forms/one.txt", data="1"), WriteEntry(path="forms/two.txt", data="2")],
        metadata=meta,
    )  # one multipart request
    assert [w.metadata for w in many] == [meta, meta]
    streamed = sandbox.files.write("forms/stream.bin", io.BytesIO(b"x" * 100_000), metadata=meta)
    gzipped = sandbox.files.write("forms/gz.txt", "z" * 1000, gzip=True, metadata=meta)
    assert (streamed.metadata, gzipped.metadata) == (meta, meta)  # octet-stream, gzip
    listed = {e.name: e.metadata for e in sandbox.files.list("forms")}
    assert listed == dict.fromkeys(["one.txt", "two.txt", "stream.bin", "gz.txt"], meta)
    assert sandbox.files.read("forms/stream.bin", format="bytes") == b"x" * 100_000


def test_metadata_through_a_symlink_is_the_targets(sandbox: Sandbox) -> None:
    sandbox.files.write("sl/target.txt", "t")
    sandbox.commands.run("ln -s target.txt link.txt", cwd="sl")
    written = sandbox.files.write("sl/link.txt", "through", metadata={"via": "link"})
    assert written.metadata == {"via": "link"}
    assert sandbox.files.get_info("sl/target.txt").metadata == {"via": "link"}
    assert sandbox.files.get_info("sl/link.txt").metadata == {"via": "link"}


def test_the_async_sdk_writes_and_reads_metadata(template: str) -> None:
    async def scenario() -> None:
        sbx = await AsyncSandbox.create(template, timeout=120)
        try:
            info = await sbx.files.write("async.txt", b"a", metadata={"x": "y"})
            assert info.metadata == {"x": "y"}
            assert (await sbx.files.get_info("async.txt")).metadata == {"x": "y"}
        finally:
            await sbx.kill()

    asyncio.run(scenario())


def test_metadata_past_envds_limits_is_refused_and_nothing_is_written(sandbox: Sandbox) -> None:
    too_much = {f"k{i}": "v" * 200 for i in range(20)}  # > 4096 bytes with the names
    with pytest.raises(InvalidArgumentException, match=r"invalid metadata: total metadata size"):
        sandbox.files.write("limits.txt", "x", metadata=too_much)
    with pytest.raises(InvalidArgumentException, match=r"invalid metadata: metadata key"):
        sandbox.files.write("limits.txt", "x", metadata={"k" * 247: "v"})
    assert not sandbox.files.exists("limits.txt")


def test_watch_features_past_0_6_2_stay_refused_by_the_sdk(sandbox: Sandbox) -> None:
    """0.6.3 (entry info in watch events) is not advertised: the SDK says so before asking."""
    with pytest.raises(TemplateException, match="include entry info in watch events"):
        sandbox.files.watch_dir("/home/user", include_entry=True)
    with pytest.raises(TemplateException, match="watch directories on network mounts"):
        sandbox.files.watch_dir("/home/user", allow_network_mounts=True)


def test_a_long_listing_in_a_sandbox_with_metadata_is_read_in_batches(sandbox: Sandbox) -> None:
    """Past what one exec's arguments hold (2 MiB here), a listing of a sandbox whose files got
    metadata still answers, each entry with its own metadata (one long name carries some)."""
    stem = "a-file-name-long-enough-to-fill-the-arguments-of-one-exec-quickly-" + "x" * 150
    sandbox.commands.run(
        f"mkdir -p /tmp/many && cd /tmp/many && seq 11000 | sed 's/^/{stem}-/' | xargs touch"
    )
    marked = f"/tmp/many/{stem}-7"
    sandbox.files.write(marked, "kept\n", metadata={"owner": "agent"})
    entries = sandbox.files.list("/tmp/many")
    assert len(entries) == 11000
    with_metadata = {entry.path: entry.metadata for entry in entries if entry.metadata}
    assert with_metadata == {marked: {"owner": "agent"}}


def test_a_sandbox_without_metadata_lists_without_reading_it(sandbox: Sandbox) -> None:
    """No write with metadata in this sandbox: entries come with no metadata field at all
    (and a listing pays no exec to look for it)."""
    sandbox.files.write("/tmp/plain.txt", "plain\n")
    (entry,) = [e for e in sandbox.files.list("/tmp") if e.name == "plain.txt"]
    assert entry.metadata is None
