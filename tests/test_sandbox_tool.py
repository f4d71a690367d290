"""boxsmith.sandbox: the retry policy on its own, create retries over a stub API on the wire, and
sessions end to end with the unchanged e2b SDK against `boxsmith backend serve`.

The retry and stub tests need no Docker and run in the fast suite; the rest are marked `docker`
and share one backend and one template (python:3.11-slim: python3 and bash, no node).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    InvalidArgumentException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    SandboxNotRunningException,
    SandboxQuery,
    ServiceBusyException,
    Template,
    TimeoutException,
)

from boxsmith.sandbox import (
    EXIT_TIMED_OUT,
    CodeResult,
    RetryPolicy,
    SandboxError,
    SandboxSession,
    SandboxSessionSync,
    _teardown,
    with_retries,
)
from tests.helpers import Backend

ROOT = Path(__file__).resolve().parents[1]


# --- the retry policy, with injected failures and sleep ------------------------------------------


def test_retry_delays_double_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(attempts=5, base_delay=1, max_delay=4)
    assert [policy.delay(n, lambda: 1.0) for n in range(4)] == [1, 2, 4, 4]
    assert [policy.delay(n, lambda: 0.0) for n in range(4)] == [0.5, 1, 2, 2]
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def _flaky(error: BaseException, failures: int) -> tuple[Any, list[int], list[float]]:
    calls: list[int] = []
    sleeps: list[float] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "made"

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run(policy: RetryPolicy) -> str:
        return await with_retries(call, policy, sleep=sleep, rand=lambda: 1.0)

    return run, calls, sleeps


@pytest.mark.parametrize(
    "error",
    [
        RateLimitException("429: Rate limit exceeded"),
        ServiceBusyException("503: Service temporarily unavailable"),
        httpx.ConnectError("connection refused"),
        ConnectionError("connection refused"),
        SandboxException("502: bad gateway"),
        SandboxException("upstream failed", status_code=504),
        TimeoutException("Request timed out"),
    ],
    ids=repr,
)
def test_transient_failures_are_retried(error: BaseException) -> None:
    run, calls, sleeps = _flaky(error, failures=2)
    assert asyncio.run(run(RetryPolicy(attempts=4, base_delay=1))) == "made"
    assert (len(calls), sleeps) == (3, [1.0, 2.0])


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationException("401: Unauthorized"),
        NotFoundException("404: template 'nope' not found"),
        SandboxException("400: bad request", status_code=400),
        SandboxException("409: conflict"),
        InvalidArgumentException("bad idempotency key"),
        SandboxNotRunningException("sandbox was killed"),
        ValueError("a bug"),
    ],
    ids=repr,
)
def test_other_failures_are_raised_at_once(error: BaseException) -> None:
    run, calls, sleeps = _flaky(error, failures=1)
    with pytest.raises(type(error)) as caught:
        asyncio.run(run(RetryPolicy(attempts=4)))
    assert caught.value is error
    assert (len(calls), sleeps) == (1, [])


def test_retries_stop_after_the_last_attempt() -> None:
    error = ServiceBusyException("busy")
    run, calls, sleeps = _flaky(error, failures=10)
    with pytest.raises(ServiceBusyException):
        asyncio.run(run(RetryPolicy(attempts=3, base_delay=0.5)))
    assert (len(calls), sleeps) == (3, [0.5, 1.0])


# --- create over the wire, against a stub API that refuses ----------------------------------------


class StubApi:
    """An E2B API on 127.0.0.1 that answers every request with `status`, recording each one."""

    def __init__(self, status: int) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append((self.path, headers, json.loads(body or b"null")))
                data = json.dumps({"code": status, "message": "stub says no"}).encode()
                self.send_response(status)
                self.send_header("Should-Retry", "false")  # the SDK's own retries stay out of it
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StubApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def session(self, **options: Any) -> SandboxSession:
        return SandboxSession(
            "tpl", api_key="e2b_stub", api_url=self.url, sandbox_url=self.url, **options
        )


def _held_hand_over(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """A thread stuck inside `loop.call_soon_threadsafe`, as the SDK's Rust thread can be."""
    inside, release = threading.Event(), threading.Event()
    wake = loop._write_to_self  # type: ignore[attr-defined]

    def held_wake() -> None:
        inside.set()
        release.wait(30)
        wake()

    monkeypatch.setattr(loop, "_write_to_self", held_wake)
    thread = threading.Thread(target=loop.call_soon_threadsafe, args=(lambda: None,))
    thread.start()
    return thread, inside, release


def test_settle_waits_for_a_thread_inside_the_hand_over(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        thread, inside, release = _held_hand_over(asyncio.get_running_loop(), monkeypatch)
        while not inside.is_set():  # not to_thread: its answer would take the held path too
            await asyncio.sleep(0.001)
        settling = asyncio.create_task(_teardown.settle())
        await asyncio.sleep(0.2)
        assert not settling.done()  # the thread is still inside: settle waits
        release.set()
        await asyncio.wait_for(settling, 10)
        thread.join(10)

    asyncio.run(scenario())


def test_settle_gives_up_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_teardown, "SETTLE_LIMIT", 0.05)

    async def scenario() -> None:
        thread, inside, release = _held_hand_over(asyncio.get_running_loop(), monkeypatch)
        while not inside.is_set():
            await asyncio.sleep(0.001)
        try:
            await asyncio.wait_for(_teardown.settle(), 10)  # returns although still inside
            assert _teardown._handing_over()
        finally:
            release.set()
            thread.join(10)

    asyncio.run(scenario())


def test_busy_create_is_retried_with_one_key_metadata_and_headers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="boxsmith.sandbox")
    with StubApi(503) as stub:
        session = stub.session(
            user_id="u1",
            team_id="t1",
            headers={"X-Supabase-Team": "t1"},
            retry=RetryPolicy(attempts=3, base_delay=0.01),
        )
        with pytest.raises(SandboxError, match="after 3 attempts: ServiceBusyException") as caught:
            asyncio.run(session.open())
    assert isinstance(caught.value.__cause__, ServiceBusyException)
    assert [path for path, _, _ in stub.requests] == ["/v2/sandboxes"] * 3
    keys = {headers["idempotency-key"] for _, headers, _ in stub.requests}
    assert len(keys) == 1, "every attempt must ask for the same sandbox"
    for _, headers, body in stub.requests:
        assert headers["x-supabase-team"] == "t1"
        assert body["templateID"] == "tpl"
        assert body["metadata"] == {"userID": "u1", "teamID": "t1"}
        assert body["timeout"] == 600
    retried = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retried) == 2
    assert retried[0].startswith("create tpl attempt 1/3 failed (ServiceBusyException")
    assert caplog.records[-1].message.startswith("create template=tpl sandbox=- ")
    assert caplog.records[-1].message.endswith("failed: SandboxError")


def test_authentication_failure_is_not_retried() -> None:
    with StubApi(401) as stub:
        session = stub.session(retry=RetryPolicy(attempts=3, base_delay=0.01))
        with pytest.raises(SandboxError) as caught:
            asyncio.run(session.open())
    assert len(stub.requests) == 1
    assert "Unauthorized" in caught.value.message
    assert "E2B_API_KEY" in caught.value.hint


# --- sessions end to end on the local backend ----------------------------------------------------


@pytest.fixture(scope="module")
def template(backend: Backend) -> str:
    name = f"tool-{uuid.uuid4().hex[:8]}"
    Template.build(Template().from_image("python:3.11-slim"), name)
    return name


async def alive(**metadata: str) -> list[str]:
    """Ids of the running sandboxes whose metadata has these entries."""
    listed = await AsyncSandbox.list(query=SandboxQuery(metadata=metadata)).next_items()
    return [info.sandbox_id for info in listed]


@pytest.mark.docker
def test_session_creates_writes_runs_and_logs(
    template: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="boxsmith.sandbox")

    async def scenario() -> str:
        async with SandboxSession(
            template,
            user_id="u1",
            team_id="t1",
            metadata={"suite": "sandbox-tool"},
            headers={"X-Supabase-Team": "t1", "X-Supabase-Token": "token"},
            timeout=120,
        ) as box:
            info = await box.sandbox.get_info()
            assert info.metadata == {"suite": "sandbox-tool", "userID": "u1", "teamID": "t1"}
            written = await box.write_files(
                {"app/greet.py": "def greet(n):\n    return f'hello {n}'\n", "app/raw": b"\0\1\2"}
            )
            assert written == ["/home/user/app/greet.py", "/home/user/app/raw"]

            code = (
                "import sys\nsys.path.insert(0, 'app')\nfrom greet import greet\n"
                "print(greet(\"box's\"))\nprint(len(open('app/raw', 'rb').read()))\n"
                "print('careful', file=sys.stderr)\n"
            )
            python = await box.run_code(code)
            assert python == CodeResult("hello box's\n3\n", "careful\n", 0, None, python.seconds)
            assert python.ok

            bash = await box.run_code('echo "it\'s $((6 * 7))"; echo oops >&2; exit 3', "bash")
            assert not bash.ok
            assert (bash.stdout, bash.stderr, bash.exit_code, bash.error) == (
                "it's 42\n", "oops\n", 3, "bash exited with code 3",
            )  # fmt: skip

            node = await box.run_code("console.log(1)", "javascript")
            assert node.exit_code == 127
            assert node.error == f"node is not installed in this sandbox (template {template})"

            slow = await box.run_code(
                "import time\nprint('started', flush=True)\ntime.sleep(30)", timeout=1
            )
            assert (slow.exit_code, slow.error) == (EXIT_TIMED_OUT, "timed out after 1s")
            assert slow.stdout == "started\n"
            # the timeout ended the process (the sandbox may still be taking it down)
            for _ in range(200):  # at most 20 s: only a kill that never lands fails
                if await box.sandbox.commands.list() == []:
                    break
                await asyncio.sleep(0.1)
            assert await box.sandbox.commands.list() == []
            # left alone the code would run 30 s: the bound is loose on purpose, for a busy
            # machine, and only catches a timeout that did not cut the run short
            assert 1 <= slow.seconds < 25

            with pytest.raises(ValueError, match="unknown language 'ruby'"):
                await box.run_code("puts 1", "ruby")
            assert box.sandbox_id
            return box.sandbox_id

    sandbox_id = asyncio.run(scenario())
    lines = [r.message for r in caplog.records]
    assert lines[0].startswith(f"create template={template} sandbox={sandbox_id} ")
    assert lines[0].endswith(" ok")
    assert any(
        line.startswith(f"run_code bash sandbox={sandbox_id} ")
        and line.endswith("exit=3 (bash exited with code 3)")
        for line in lines
    )
    assert lines[-1].startswith(f"kill sandbox={sandbox_id} ")
    assert lines[-1].endswith(" ok")


@pytest.mark.docker
def test_upload_and_download_round_trip(template: str, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    source = tmp_path / "in.bin"
    source.write_bytes(payload)

    async def scenario() -> None:
        async with SandboxSession(template, timeout=120) as box:
            assert await box.upload(source, "data/in.bin") == "/home/user/data/in.bin"
            digest = await box.run_code("sha256sum data/in.bin | cut -c1-64", "bash")
            assert digest.stdout.strip() == hashlib.sha256(payload).hexdigest()
            copy = await box.download("/home/user/data/in.bin", tmp_path / "out" / "copy.bin")
            assert copy.read_bytes() == payload
            assert [p.name for p in copy.parent.iterdir()] == ["copy.bin"]  # no temp file left
            with pytest.raises(SandboxError, match="download of /nope failed"):
                await box.download("/nope", tmp_path / "missing.bin")
            assert not (tmp_path / "missing.bin").exists()

    asyncio.run(scenario())


@pytest.mark.docker
def test_an_exception_in_the_block_propagates_and_the_sandbox_is_killed(template: str) -> None:
    marker = uuid.uuid4().hex

    class Boom(Exception):
        pass

    async def scenario() -> None:
        session = SandboxSession(template, metadata={"marker": marker}, timeout=120)

        async def work() -> None:
            async with session as box:
                assert await alive(marker=marker) == [box.sandbox_id]
                raise Boom

        with pytest.raises(Boom):
            await work()
        assert await alive(marker=marker) == []
        await session.close()  # again: nothing left to do
        with pytest.raises(RuntimeError, match="not open"):
            await session.run_code("print(1)")

    asyncio.run(scenario())


@pytest.mark.docker
def test_cancellation_kills_the_sandbox(template: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="boxsmith.sandbox")
    inside, creating = uuid.uuid4().hex, uuid.uuid4().hex

    async def scenario() -> None:
        entered = asyncio.Event()

        async def body() -> None:
            async with SandboxSession(template, metadata={"marker": inside}, timeout=120):
                entered.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(body())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await alive(marker=inside) == []

        # a deadline that hits while the create request is in flight: the body never runs and
        # the sandbox the request makes is killed once it is there
        async def late() -> None:
            async with asyncio.timeout(0.05):
                async with SandboxSession(template, metadata={"marker": creating}, timeout=120):
                    pytest.fail("the body ran")

        with pytest.raises(TimeoutError):
            await late()
        assert await alive(marker=creating) == []

    asyncio.run(scenario())
    outcomes = [r.message.rsplit(" ", 1)[-1] for r in caplog.records if r.message[:5] == "kill "]
    assert outcomes == ["ok", "ok"]
    assert caplog.records[-1].message.startswith("create template=")
    assert caplog.records[-1].message.endswith(" cancelled")


@pytest.mark.docker
def test_sync_wrapper(template: str, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    (tmp_path / "note.txt").write_text("a note")
    with SandboxSessionSync(template, metadata={"marker": marker}, timeout=120) as box:
        assert box.write_files({"hello.sh": "echo hello from sync"}) == ["/home/user/hello.sh"]
        result = box.run_code("bash hello.sh", "bash")
        assert (result.stdout, result.exit_code) == ("hello from sync\n", 0)
        assert box.upload(tmp_path / "note.txt", "note.txt") == "/home/user/note.txt"
        assert box.download("note.txt", tmp_path / "back.txt").read_text() == "a note"
        assert asyncio.run(alive(marker=marker)) == [box.sandbox_id]
    assert asyncio.run(alive(marker=marker)) == []
    box.close()  # again: nothing left to do

    with pytest.raises(KeyError), SandboxSessionSync(template, metadata={"marker": marker}):
        raise KeyError("boom")
    assert asyncio.run(alive(marker=marker)) == []


CTRL_C = """
import sys
from boxsmith.sandbox import SandboxSessionSync

with SandboxSessionSync(sys.argv[1], metadata={"marker": sys.argv[2]}, timeout=120) as box:
    print(box.sandbox_id, flush=True)
    box.run_code("import time; time.sleep(60)", timeout=120)
"""


@pytest.mark.docker
def test_sync_wrapper_kills_the_sandbox_on_ctrl_c(template: str) -> None:
    marker = uuid.uuid4().hex
    with subprocess.Popen(
        [sys.executable, "-c", CTRL_C, template, marker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        sandbox_id = child.stdout.readline().strip()
        assert asyncio.run(alive(marker=marker)) == [sandbox_id]
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    assert child.returncode != 0
    assert err.rstrip().endswith("KeyboardInterrupt"), err[-2000:]
    assert asyncio.run(alive(marker=marker)) == []


END_AFTER_THE_BLOCK = """
import asyncio
import os
import sys

from boxsmith.sandbox import SandboxSession


async def main() -> None:
    async with SandboxSession(sys.argv[1], metadata={"marker": sys.argv[2]}, timeout=120) as box:
        result = await box.run_code("print(6 * 7)")
        print(result.stdout.strip(), result.exit_code)


# each run is a child that ends right after the block, as a script does; forked once the imports
# are done (no thread runs yet), so a run does not pay a second of start-up
for _ in range(int(sys.argv[3])):
    child = os.fork()
    if child == 0:
        break
    print("exit", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
else:
    sys.exit()
asyncio.run(main())
"""
EXIT_RUNS = 30


@pytest.mark.docker
def test_a_script_may_end_right_after_the_block(template: str) -> None:
    """A script that ends as soon as its `async with` is done exits 0, every time.

    The SDK hands the kill's answer to the loop from a Rust thread that is still inside
    `call_soon_threadsafe` when the loop runs on; a script ending then aborted at interpreter
    exit (SIGABRT, exit -6 here) in about one run of ten, until the session waited for that
    thread (`_teardown.settle`). 30 runs miss such a regression about once in 25.
    """
    marker = uuid.uuid4().hex
    run = subprocess.run(
        [sys.executable, "-c", END_AFTER_THE_BLOCK, template, marker, str(EXIT_RUNS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = run.stdout.splitlines()
    # stderr may carry a retried create's warning on a busy machine; never an abort
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Fatal Python error" not in run.stderr, run.stderr[-2000:]
    assert lines == ["42 0", "exit 0"] * EXIT_RUNS, sorted(Counter(lines).items())
    assert asyncio.run(alive(marker=marker)) == []


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "backend_agent", ROOT / "examples/backend_agent.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.docker
def test_example_agent_runs_as_a_script(template: str) -> None:
    env = {**os.environ, "BOXSMITH_SANDBOX_TEMPLATE": template}
    run = subprocess.run(
        [sys.executable, "examples/backend_agent.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("PASS a plain-Python JSON HTTP handler and its test (")
    assert "Ran 3 tests" in run.stdout
    assert run.stdout.rstrip().endswith("OK")
    assert asyncio.run(alive(userID="example-user")) == []


@pytest.mark.docker
def test_example_agent_reports_a_failing_task(template: str) -> None:
    example = _example()
    agent = example.BackendDeveloperAgent(template, user_id="u2", team_id="t2", access_token="x")
    task = example.Task(
        "a broken handler", {"broken.py": "raise SystemExit('no')"}, "python3 broken.py"
    )
    report = asyncio.run(agent.execute_task(task))
    assert (report.passed, report.errors, report.output) == (
        False, ["bash exited with code 1"], "no\n",
    )  # fmt: skip
    assert report.format().startswith("FAIL a broken handler (")
    assert asyncio.run(alive(userID="u2")) == []
