"""Smoke checks against a real local target: commands, files, sockets, HTTP, processes, reports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

import boxsmith._internal.smoke
from boxsmith._internal.smoke import (
    Check,
    CheckResult,
    CommandResult,
    SuiteResult,
    TargetError,
    run_check,
    run_checks,
    write_json,
    write_junit,
)
from boxsmith._internal.smoke.protocol import PortUrl
from boxsmith._internal.spec.models import (
    CommandCheck,
    FileCheck,
    HttpCheck,
    PortCheck,
    ProcessCheck,
)


class LocalTarget:
    """Runs checks on this machine: `bash -c` in its own process group, files via open()."""

    description = "local host"

    def __init__(self, path: str | None = None, shell: tuple[str, ...] = ("/bin/bash",)) -> None:
        self.shell = shell
        self.env = dict(os.environ)
        if path is not None:
            self.env["PATH"] = path

    def run(
        self,
        command: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        assert user is None
        start = time.monotonic()
        with subprocess.Popen(
            [*self.shell, "-c", command],
            cwd=cwd,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
                code: int | None = proc.returncode
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                code = None
        return CommandResult(
            code,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            time.monotonic() - start,
        )

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def port_url(self, port: int) -> PortUrl:
        return PortUrl(f"http://127.0.0.1:{port}", {})


class GoneTarget:
    """A target whose container vanished: every call raises TargetError."""

    description = "container gone"

    def __init__(self) -> None:
        self.calls = 0

    def run(
        self,
        command: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        self.calls += 1
        raise TargetError("container 3f2a1c is not running")

    def read_file(
        self, path: str, *, user: str | None = None, timeout: float = 30.0
    ) -> bytes | None:
        self.calls += 1
        raise TargetError("container 3f2a1c is not running")

    def port_url(self, port: int) -> PortUrl:
        self.calls += 1
        raise TargetError("container 3f2a1c is not running")


LOCAL = LocalTarget()


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"retried after {seconds}s")


def test_public_api_does_not_drift() -> None:
    assert sorted(boxsmith._internal.smoke.__all__) == [
        "Check", "CheckResult", "CheckTarget", "CommandResult", "SuiteResult", "TargetError",
        "json_report", "junit_xml", "run_check", "run_checks", "write_json", "write_junit",
    ]  # fmt: skip


# command


def test_command_passes_on_exit_code_and_output() -> None:
    check = CommandCheck(
        command='echo "hello $WHO from $(pwd)"; echo warn >&2',
        env={"WHO": "box"},
        cwd="/tmp",
        stdout=r"^hello box from /tmp$",
        stderr="warn",
    )
    result = run_check(LOCAL, check)
    assert result.status == "passed", result
    assert result.name == 'command: echo "hello $WHO from $(pwd)"; echo warn >&2'
    assert result.kind == "command"
    assert (
        result.expected == "exit 0, stdout matching /^hello box from /tmp$/, stderr matching /warn/"
    )
    assert result.actual == "exit 0, stdout: 'hello box from /tmp', stderr: 'warn'"
    assert result.attempts == 1
    assert "hello box" in result.output
    assert "warn" in result.output


def test_command_fails_on_exit_code_or_output() -> None:
    exit_code = run_check(LOCAL, CommandCheck(command="echo oops >&2; exit 3", name="exits"))
    assert (exit_code.name, exit_code.status) == ("exits", "failed")
    assert exit_code.actual == "exit 3, stderr: 'oops'"
    wrong = run_check(LOCAL, CommandCheck(command="echo Python 3.12.1", stdout=r"Python 3\.11"))
    assert wrong.status == "failed"
    assert wrong.expected == r"exit 0, stdout matching /Python 3\.11/"
    assert wrong.actual == "exit 0, stdout: 'Python 3.12.1'"
    exit_wanted = run_check(LOCAL, CommandCheck(command="exit 2", exit_code=2))
    assert exit_wanted.status == "passed"


def test_command_retries_until_it_passes(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    command = (
        f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; [ $n -ge 3 ]"
    )
    pauses: list[float] = []
    result = run_check(
        LOCAL, CommandCheck(command=command, retries=5, interval=7), sleep=pauses.append
    )
    assert (result.status, result.attempts) == ("passed", 3)
    assert pauses == [7, 7]
    assert counter.read_text() == "3\n"


def test_command_gives_up_after_its_retries() -> None:
    pauses: list[float] = []
    ticks = iter(range(100))
    result = run_check(
        LOCAL,
        CommandCheck(command="exit 1", retries=2, interval=0.5),
        clock=lambda: float(next(ticks)),
        sleep=pauses.append,
    )
    assert (result.status, result.attempts, result.seconds) == ("failed", 3, 1.0)
    assert pauses == [0.5, 0.5]


def test_command_timeout_fails_quickly() -> None:
    start = time.monotonic()
    result = run_check(LOCAL, CommandCheck(command="echo started; sleep 60", timeout=0.5))
    # The timeout ended it (the result says so); the bound, far under the command's 60 s, only
    # catches a run that waited for the command instead.
    assert time.monotonic() - start < 30
    assert result.status == "failed"
    assert result.actual == "no exit within 0.5s"
    assert result.output == "started\n"


def test_output_is_trimmed_to_its_tail() -> None:
    result = run_check(
        LOCAL, CommandCheck(command="head -c 10000 /dev/zero | tr '\\0' x; echo END")
    )
    assert result.status == "passed"
    assert len(result.output) < 4200
    assert result.output.startswith("[... ")
    assert result.output.endswith("xEND\n")


# file


def test_file_exists_missing_and_contains(tmp_path: Path) -> None:
    path = tmp_path / "it's here.txt"
    path.write_text("version = 1.2.3\nready\n")
    missing = str(tmp_path / "nope")
    cases = [
        (FileCheck(file=str(path)), "passed", "exists"),
        (FileCheck(file=missing), "failed", "missing"),
        (FileCheck(file=missing, exists=False), "passed", "missing"),
        (FileCheck(file=str(path), exists=False), "failed", "exists"),
        (FileCheck(file=str(path), contains=r"^ready$"), "passed", "exists, 22 bytes, "),
        (FileCheck(file=str(path), contains=r"2\.0"), "failed", "exists, 22 bytes, no match"),
        (FileCheck(file=missing, contains="x"), "failed", "missing"),
        (FileCheck(file=str(path), exists=False, contains="2.0"), "passed", "exists, "),
    ]
    for check, status, actual in cases:
        result = run_check(LOCAL, check)
        assert (result.status, result.kind) == (status, "file"), (check, result)
        assert result.actual.startswith(actual), result
    assert run_check(LOCAL, FileCheck(file=missing)).name == f"file: {missing}"
    assert run_check(LOCAL, FileCheck(file=str(path), contains="x")).output.endswith("ready\n")


# port


def test_port_listening_tcp_and_bound_udp() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        listening = run_check(LOCAL, PortCheck(port=tcp_port))
        assert (listening.status, listening.actual) == ("passed", f"TCP port {tcp_port} listening")
        assert listening.name == f"port: {tcp_port}"
        bound = run_check(LOCAL, PortCheck(port=udp_port))
        assert (bound.status, bound.actual) == ("passed", f"UDP port {udp_port} bound")
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # bound, not listening
            port = closed.getsockname()[1]
            result = run_check(LOCAL, PortCheck(port=port))
    assert result.status == "failed"
    assert result.expected == f"port {port} listening (TCP) or bound (UDP)"
    assert result.actual.startswith("not listening; listening TCP ports: ")
    assert str(tcp_port) in result.actual


# http


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/")
            self.end_headers()
            return
        status, body = (200, b"<h1>hello boxsmith</h1>\n") if self.path == "/" else (404, b"nope")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1, bound but not yet listening: call `serve(server)`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
    httpd.server_bind()
    yield httpd
    if getattr(httpd, "thread", None):
        httpd.shutdown()
    httpd.server_close()


def serve(httpd: ThreadingHTTPServer) -> None:
    httpd.server_activate()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    httpd.thread = thread  # type: ignore[attr-defined]
    thread.start()


def _url(httpd: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def _bin(tmp_path: Path, *clients: str) -> str:
    """A PATH with the shell tools the HTTP snippet uses and only the given clients."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("mktemp", "rm", "cat", "sed", "tail", "grep", *clients):
        real = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        assert real, tool
        (folder / tool).symlink_to(real)
    return str(folder)


def _http_cases(target: LocalTarget, httpd: ThreadingHTTPServer) -> None:
    ok = run_check(target, HttpCheck(http=_url(httpd, "/"), body=r"hello \w+"))
    assert ok.status == "passed", ok
    assert ok.actual == "status 200, body: '<h1>hello boxsmith</h1>'"
    assert ok.output == "<h1>hello boxsmith</h1>\n"
    gone = run_check(target, HttpCheck(http=_url(httpd, "/missing"), status=404, body="^nope$"))
    assert gone.status == "passed", gone
    moved = run_check(target, HttpCheck(http=_url(httpd, "/moved"), status=302))
    assert moved.status == "passed", moved


def test_http_status_and_body_with_curl(server: ThreadingHTTPServer) -> None:
    serve(server)
    _http_cases(LOCAL, server)
    body = run_check(LOCAL, HttpCheck(http=_url(server, "/"), body="goodbye"))
    assert (body.status, body.expected) == ("failed", "status 200, body matching /goodbye/")
    missing = run_check(LOCAL, HttpCheck(http=_url(server, "/missing")))
    assert (missing.status, missing.actual, missing.output) == ("failed", "status 404", "nope")
    assert run_check(LOCAL, HttpCheck(http=_url(server, "/"))).name == f"http: {_url(server, '/')}"


@pytest.mark.parametrize("client", ["wget", "python3"])
def test_http_without_curl(server: ThreadingHTTPServer, tmp_path: Path, client: str) -> None:
    if client == "wget" and not shutil.which(client):  # python3 is this interpreter
        if os.environ.get("CI"):  # scripts/test installs it
            pytest.fail("GNU wget is not installed: apt-get install wget")
        pytest.skip("no wget here")
    target = LocalTarget(path=_bin(tmp_path, client))
    refused = run_check(target, HttpCheck(http=_url(server, "/")))
    assert (refused.status, refused.actual) == ("failed", "connection refused")
    serve(server)
    _http_cases(target, server)


def test_http_connection_refused_then_retried(server: ThreadingHTTPServer) -> None:
    result = run_check(
        LOCAL, HttpCheck(http=_url(server, "/"), retries=3), sleep=lambda _s: serve(server)
    )
    assert (result.status, result.attempts) == ("passed", 2)
    refused = run_check(LocalTarget(), HttpCheck(http="http://127.0.0.1:1/"))
    assert refused.status == "failed"
    assert refused.actual == "connection refused" or "connect" in refused.actual


def test_busybox_shell_and_wget(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    if not shutil.which("busybox"):
        if os.environ.get("CI"):  # scripts/test installs it
            pytest.fail("busybox is not installed: apt-get install busybox")
        pytest.skip("no busybox here")
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("mktemp", "rm", "cat", "sed", "tail", "grep", "tr", "wget"):
        (folder / tool).symlink_to(shutil.which("busybox") or "")
    target = LocalTarget(path=str(folder), shell=(shutil.which("busybox") or "", "sh"))
    refused = run_check(target, HttpCheck(http=_url(server, "/")))
    assert (refused.status, refused.actual) == ("failed", "connection refused")
    serve(server)
    ok = run_check(target, HttpCheck(http=_url(server, "/"), body="hello"))
    assert ok.status == "passed", ok
    # BusyBox wget drops the body of an error answer and follows redirects.
    missing = run_check(target, HttpCheck(http=_url(server, "/missing"), status=404))
    assert missing.status == "passed", missing
    assert run_check(target, ProcessCheck(process="boxsmith-ps-")).status == "failed"


def test_http_without_any_client_fails_at_once(tmp_path: Path) -> None:
    target = LocalTarget(path=_bin(tmp_path))
    pauses: list[float] = []
    check = HttpCheck(http="http://127.0.0.1:1/", retries=3)
    result = run_check(target, check, sleep=pauses.append)
    assert result.status == "failed"
    assert result.actual == "no HTTP client (curl, wget or python3) in the image"
    assert (result.attempts, pauses) == (1, [])


# process


def test_process_found_by_name_or_by_command_line_with_full() -> None:
    token = str(uuid.uuid4().int % 10**8)
    with subprocess.Popen(["sleep", f"30.{token}"]) as proc:
        try:
            by_cmdline = run_check(LOCAL, ProcessCheck(process=rf"^sleep 30\.{token}$", full=True))
            assert by_cmdline.status == "passed", by_cmdline
            assert by_cmdline.actual == f"pid {proc.pid}: 'sleep 30.{token}'"
            assert by_cmdline.name == rf"process: ^sleep 30\.{token}$"
            by_name = run_check(LOCAL, ProcessCheck(process="^sleep$"))
            assert by_name.status == "passed"
            # Without `full`, only the name and program path count, not the arguments.
            not_by_args = run_check(LOCAL, ProcessCheck(process=rf"30\.{token}"))
            assert not_by_args.status == "failed"
            assert not_by_args.expected == rf"a process whose name matches /30\.{token}/"
        finally:
            proc.kill()
    after = run_check(LOCAL, ProcessCheck(process=rf"^sleep 30\.{token}$", full=True))
    assert after.status == "failed"
    assert after.expected == rf"a process whose command line matches /^sleep 30\.{token}$/"
    assert after.actual.startswith("no match; running: ")
    # The listing shell, its wrappers and children are not processes of the image.
    assert run_check(LOCAL, ProcessCheck(process="boxsmith-ps-", full=True)).status == "failed"
    assert run_check(LOCAL, ProcessCheck(process="^tr$")).status == "failed"
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        ProcessCheck(process="node(")


# target errors


def test_target_error_stops_asking_the_target() -> None:
    target = GoneTarget()
    seen: list[CheckResult] = []
    checks: list[Check] = [
        CommandCheck(command="true", retries=5),
        PortCheck(port=3000),
        HttpCheck(http="http://localhost:3000/"),
    ]
    results = run_checks(target, checks, on_result=seen.append)
    assert target.calls == 1
    assert seen == results
    assert [r.status for r in results] == ["error", "error", "error"]
    assert results[0].actual == "container 3f2a1c is not running"
    assert results[0].attempts == 1
    assert results[1].actual == "target gone: container 3f2a1c is not running"
    assert (results[1].attempts, results[1].expected) == (
        0,
        "port 3000 listening (TCP) or bound (UDP)",
    )
    assert run_check(GoneTarget(), PortCheck(port=1)).status == "error"


def test_run_checks_runs_all_in_order() -> None:
    results = run_checks(LOCAL, [CommandCheck(command="exit 1"), CommandCheck(command="true")])
    assert [r.status for r in results] == ["failed", "passed"]


# reports


def _results() -> list[CheckResult]:
    return [
        CheckResult("ok", "command", "passed", "exit 0", "exit 0", 1, 0.25, "fine\n"),
        CheckResult(
            "bad", "http", "failed", "status 200", "status 500", 3, 4.5, "\x1b[31mboom\x00\x07\n"
        ),
        CheckResult("lost", "port", "error", "port 3000", "target gone: x", 0, 0.0),
    ]


def _find(element: ET.Element, path: str) -> ET.Element:
    found = element.find(path)
    assert found is not None, path
    return found


def test_junit_report(tmp_path: Path) -> None:
    suites = [
        SuiteResult("app:1.0.0", _results(), target="container 3f2a1c", seconds=6.0),
        SuiteResult("web:2.0.0", error="start_cmd exited 1", stage="start", output="npm ERR!"),
        SuiteResult("big:1.0.0", skipped="build skipped: npm unreachable"),
    ]
    path = tmp_path / "reports" / "smoke.xml"
    write_junit(suites, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert root.attrib == {
        "name": "boxsmith smoke", "tests": "5", "failures": "1", "errors": "2", "skipped": "1",
        "time": "6.000",
    }  # fmt: skip
    app, web, big = root.findall("testsuite")
    assert (app.get("name"), app.get("tests"), app.get("failures"), app.get("errors")) == (
        "app:1.0.0", "3", "1", "1",
    )  # fmt: skip
    assert _find(app, "properties/property").attrib == {
        "name": "target",
        "value": "container 3f2a1c",
    }
    ok, bad, lost = app.findall("testcase")
    assert (ok.get("classname"), ok.get("time"), ok.find("failure")) == ("app:1.0.0", "0.250", None)
    assert _find(bad, "failure").attrib == {
        "message": "expected status 200, got status 500",
        "type": "http",
    }
    assert bad.findtext("system-out") == "[31mboom\n"
    assert lost.find("error") is not None
    (start,) = web.findall("testcase")
    assert start.get("name") == "start"
    assert _find(start, "error").get("message") == "start_cmd exited 1"
    assert start.findtext("system-out") == "npm ERR!"
    assert (big.get("tests"), big.get("skipped")) == ("1", "1")
    assert _find(big, "testcase/skipped").get("message") == "build skipped: npm unreachable"
    assert not list(tmp_path.glob("reports/.*"))  # no temp file left


def test_junit_from_a_plain_mapping_and_json_report(tmp_path: Path) -> None:
    write_junit({"app:1.0.0": _results()[:1]}, tmp_path / "ok.xml", name="nightly")
    root = ET.parse(tmp_path / "ok.xml").getroot()
    assert (root.get("name"), root.get("tests"), root.get("failures")) == ("nightly", "1", "0")
    path = tmp_path / "smoke.json"
    write_json([SuiteResult("app:1.0.0", _results()), SuiteResult("x:1.0.0", skipped="no")], path)
    data = json.loads(path.read_text())
    assert data["ok"] is False
    assert data["counts"] == {"tests": 4, "passed": 1, "failed": 1, "errors": 1, "skipped": 1}
    app, skipped = data["suites"]
    assert (app["status"], skipped["status"], skipped["stage"]) == ("error", "skipped", "setup")
    assert app["checks"][1] == {
        "name": "bad", "kind": "http", "status": "failed", "expected": "status 200",
        "actual": "status 500", "attempts": 3, "seconds": 4.5, "output": "\x1b[31mboom\x00\x07\n",
    }  # fmt: skip
