"""The page check: a real headless Chromium (the system's, through boxsmith's own smoke code)
opens a port's page, waits, asserts, keeps a screenshot; in-process against a server on this
machine, and end to end in a container (`smoke --local`) and a local-backend sandbox."""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from boxsmith._internal.extras import check_extras, missing_module
from boxsmith._internal.smoke.report import SuiteResult
from boxsmith._internal.smoke.runner import CheckResult, run_check
from boxsmith._internal.smoke.sandbox_target import preview_scheme
from boxsmith._internal.smoke.suites import report_suites
from boxsmith._internal.spec.checks import PageCheck
from boxsmith.config import load_settings
from tests.browser import browser_path
from tests.helpers import cli, write_tree
from tests.test_release import remove_proof_builds
from tests.test_smoke_checks import GoneTarget, LocalTarget

PAGES = {
    "index.html": "<html><head><title>Boxsmith page</title></head>"
    "<body><h1 id='hello'>Hello from the page</h1></body></html>",
    "broken.html": "<html><head><title>Broken</title></head><body><p>rendered</p>"
    "<script>throw new Error('kaboom in the browser')</script></body></html>",
    # loads, then its script spins for ever: the browser's answers stop
    "busy.html": "<html><head><title>Busy</title></head><body><p>almost</p>"
    "<script>setTimeout(() => { for (;;) {} }, 300)</script></body></html>",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A static site on 127.0.0.1 (a free port): PAGES, served from a temp folder."""
    root = write_tree(tmp_path_factory.mktemp("site"), dict(PAGES))

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _system_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """boxsmith finds the same Chromium the other browser tests use."""
    monkeypatch.setenv("BOXSMITH_BROWSER", browser_path())


def _check(port: int, **fields: Any) -> PageCheck:
    return PageCheck.model_validate({"page": {"port": port, **fields.pop("page", {})}, **fields})


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_page_that_renders_passes(site: int) -> None:
    check = _check(site, title="^Boxsmith page$", selector="h1#hello", text="Hello from the page")
    result = run_check(LocalTarget(), check)
    assert result.status == "passed", result.actual
    assert result.actual == "HTTP 200, title 'Boxsmith page'"
    assert result.expected.startswith("page / on port")
    assert result.png is not None
    width, height = _png_size(result.png)
    assert width > 0
    assert height > 0


def test_a_page_that_throws_in_the_browser_fails_with_the_error(site: int) -> None:
    result = run_check(LocalTarget(), _check(site, page={"path": "/broken.html"}, text="rendered"))
    assert result.status == "failed"
    assert "Error: kaboom in the browser" in result.actual
    allowed = _check(site, page={"path": "/broken.html"}, text="rendered", console_errors="allow")
    assert run_check(LocalTarget(), allowed).status == "passed"


def test_a_selector_that_never_appears_fails_at_its_timeout(site: int) -> None:
    result = run_check(LocalTarget(), _check(site, wait_for="#never", timeout=2))
    assert result.status == "failed"
    assert result.actual == "'#never' did not appear within 2s"
    assert result.seconds >= 2
    missing = run_check(LocalTarget(), _check(site, selector=".absent", timeout=1))
    assert (missing.status, missing.actual) == (
        "failed",
        "HTTP 200, title 'Boxsmith page'; no element matches '.absent'",
    )


def test_a_page_whose_script_never_yields_fails_and_does_not_hang(site: int) -> None:
    """A page that froze its JavaScript answers nothing; the check says so instead of waiting
    for it for ever (Playwright's title and count calls have no timeout of their own)."""
    busy = _check(site, page={"path": "/busy.html"}, text="never", timeout=3)
    result = run_check(LocalTarget(), busy)
    assert result.status == "failed"
    assert "stopped answering" in result.actual


def test_an_error_status_fails_without_waiting_for_the_timeout(site: int) -> None:
    result = run_check(LocalTarget(), _check(site, page={"path": "/nope.html"}, timeout=600))
    assert result.status == "failed"
    assert "the page answered HTTP 404" in result.actual
    assert result.seconds < 600  # it did not poll a page whose answer cannot change


def test_no_browser_fails_with_how_to_install_one(
    site: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BOXSMITH_BROWSER", str(tmp_path / "no-chromium"))
    result = run_check(LocalTarget(), _check(site, retries=3), sleep=_no_sleep)
    assert (result.status, result.attempts) == ("failed", 1)
    assert "apt-get install chromium" in result.actual
    assert "BOXSMITH_BROWSER" in result.actual


def _no_sleep(seconds: float) -> None:
    raise AssertionError("a missing browser is not retried")


def test_a_gone_target_is_an_error() -> None:
    result = run_check(GoneTarget(), _check(8501))
    assert (result.status, result.actual) == ("error", "container 3f2a1c is not running")


def test_screenshots_are_saved_and_linked_from_both_reports(site: int, project: Path) -> None:
    result = run_check(LocalTarget(), _check(site, name="front page", text="Hello"))
    suites = [SuiteResult("web:1.2.3", (result,), target="this machine")]
    out, err = io.StringIO(), io.StringIO()
    code = report_suites(load_settings(project), suites, out=out, err=err, prefix="smoke-x")
    assert code == 0, err.getvalue()
    reports = project / ".boxsmith" / "reports"
    shot = reports / "smoke-x-web-1.2.3-front-page.png"
    assert _png_size(shot.read_bytes())[0] > 0
    relative = ".boxsmith/reports/smoke-x-web-1.2.3-front-page.png"
    (check,) = json.loads((reports / "smoke-x.json").read_text())["suites"][0]["checks"]
    assert check["screenshot"] == relative
    case = ET.parse(reports / "smoke-x.xml").getroot().find("testsuite/testcase")
    assert case is not None
    assert f"[[ATTACHMENT|{relative}]]" in (case.findtext("system-out") or "")


def test_the_spec_model() -> None:
    check = PageCheck.model_validate({"page": {"port": 8501}})
    assert (check.page.path, check.console_errors, check.timeout) == ("/", "fail", 30.0)
    for bad in (
        {"page": {"port": 0}},
        {"page": {"port": 80, "path": "x"}},
        {"page": {"port": 80}, "console_errors": "ignore"},
        {"page": {"port": 80}, "title": "("},
    ):
        with pytest.raises(ValidationError):
            PageCheck.model_validate(bad)
    assert CheckResult("p", "page", "passed", "", "", 1, 0.0).to_json()["screenshot"] is None


def test_the_page_extra() -> None:
    assert check_extras(["command", "page", "http"]) == ["page"]
    assert check_extras(["command"]) == []
    error = missing_module(ModuleNotFoundError("no", name="playwright"), "smoke")
    assert error is not None
    assert error.exit_code == 2
    assert "pip install 'boxsmith[page]'" in error.hint


def test_preview_urls_are_http_locally_and_https_on_e2b() -> None:
    assert preview_scheme("localhost:49990") == "http"
    assert preview_scheme("127.0.0.1:49990") == "http"
    assert preview_scheme("e2b.app") == "https"
    assert preview_scheme("e2b.app", debug=True) == "http"


# -- end to end: a template that serves a static page ------------------------------------------

SPEC = """\
name: {name}
version: "1.0.0"
description: a static page served by python's http.server
base_image: python:3.11-slim
files:
  - src: site
    dest: /srv/site
start_cmd: cd /srv/site && python3 -m http.server 8000
ready_cmd:
  wait_for_port: 8000
smoke:
  - name: the page renders
    page: {{port: 8000}}
    title: Boxsmith page
    selector: h1#hello
    text: Hello from the page
    timeout: 20
    retries: 2
  - name: the broken page throws
    page: {{port: 8000, path: /broken.html}}
    timeout: 20
"""


def _template(root: Path, name: str) -> None:
    write_tree(
        root,
        {
            f"template_specs/{name}.yaml": SPEC.format(name=name),
            **{f"template_specs/site/{page}": html for page, html in PAGES.items()},
        },
    )
    rendered = cli(root, "render")
    assert rendered.code == 0, rendered.err


def _page_checks(report: Path) -> dict[str, dict[str, Any]]:
    (suite,) = json.loads(report.read_text())["suites"]
    return {check["name"]: check for check in suite["checks"]}


def _assert_checked(root: Path, report: Path, code: int, err: str) -> None:
    assert code == 1, err  # the broken page fails the run
    checks = _page_checks(report)
    assert checks["the page renders"]["status"] == "passed", checks["the page renders"]
    broken = checks["the broken page throws"]
    assert broken["status"] == "failed"
    assert "Error: kaboom in the browser" in broken["actual"]
    for check in checks.values():
        assert _png_size((root / check["screenshot"]).read_bytes())[1] > 0


@pytest.mark.docker
def test_smoke_local_runs_page_checks_in_a_container(project: Path) -> None:
    _template(project, "pagecheck")
    try:
        built = cli(project, "build", "pagecheck")
        assert built.code == 0, built.err
        smoke = cli(project, "smoke", "pagecheck", "--local")
        report = project / ".boxsmith/reports/smoke-container.json"
        _assert_checked(project, report, smoke.code, smoke.err)
        # the run is kept in the history the catalog site reads (one line per suite)
        lines = (project / ".boxsmith/history.jsonl").read_text().splitlines()
        smokes = [json.loads(line) for line in lines if '"smoke"' in line]
        assert [(r["template"], r["run"], r["status"]) for r in smokes] == [
            ("pagecheck", "smoke-container", "failed")
        ]
        assert {c["name"] for c in smokes[0]["checks"]} >= {"the page renders"}
    finally:
        remove_proof_builds(project, "pagecheck")


@pytest.mark.docker
def test_smoke_target_local_runs_page_checks_in_a_sandbox(backend_project: Path) -> None:
    (backend_project / "template_specs").mkdir()
    _template(backend_project, "pagebox")
    try:
        published = cli(backend_project, "publish", "pagebox", "--target", "local")
        assert published.code == 0, published.err
        smoke = cli(backend_project, "smoke", "pagebox", "--target", "local", "--no-promote")
        report = backend_project / ".boxsmith/reports/smoke-local.json"
        _assert_checked(backend_project, report, smoke.code, smoke.err)
    finally:
        remove_proof_builds(backend_project, "pagebox")


@pytest.mark.parametrize("command", [["smoke", "--local"], ["release"]])
def test_a_page_check_without_playwright_stops_before_any_work(
    project: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """smoke and release of a spec with a page check ask for the `page` extra up front (exit
    2 naming the pip install), before building, booting or writing a report."""
    _template(project, "nobrowser")
    monkeypatch.setitem(sys.modules, "playwright", None)  # as if it were not installed
    done = cli(project, *command[:1], "nobrowser", *command[1:])
    assert done.code == 2, done.err
    hint = re.search(r"pip install 'boxsmith\[([a-z,]+)\]'", done.err)
    assert hint is not None, done.err
    assert hint[1] == "page"  # every other extra is installed here
    assert not (project / ".boxsmith/reports").exists()
