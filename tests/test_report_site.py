"""`boxsmith report`: the catalog site, opened in headless Chromium at a desktop's and a phone's
width; and the history file (`.boxsmith/history.jsonl`) that build and smoke append to.

The site is made for a copy of the bundled templates (rendered, never built) with a history file
and a smoke report written here, so that its charts and a page check's screenshot show. The
screenshots go to the test artifacts; with BOXSMITH_UPDATE_SCREENSHOTS=1 the desktop catalog's
also replaces docs/catalog.png (README's), which a plain run leaves alone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page

from boxsmith._internal import history
from boxsmith._internal.smoke.report import SuiteResult
from boxsmith._internal.smoke.runner import CheckResult
from boxsmith._internal.spec.catalog import load_catalog
from boxsmith.config import load_settings
from tests.browser import artifacts, chromium
from tests.helpers import MINIMAL, cli, write_tree
from tests.test_tasks import _invoke as invoke

ROOT = Path(__file__).resolve().parents[1]
VIEWPORTS = {"desktop": (1280, 800), "phone": (360, 740)}
CHARTED = "streamlit-developer"  # the template given builds, a smoke report and a screenshot
# its version in the bundled specs: the report matches smoke results by name:version
CURRENT = str(yaml.safe_load((ROOT / f"template_specs/{CHARTED}.yaml").read_text())["version"])
SHOT = (64, 40)  # the page check's screenshot, width x height


def _png(width: int, height: int) -> bytes:
    """A valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x30\x80\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _line(**record: Any) -> str:
    return json.dumps(record) + "\n"


def _history_and_reports(project: Path) -> None:
    """Two builds of CHARTED (two versions), one of python-data-311, two smoke runs, and the
    latest container smoke report with a page check's screenshot."""
    state = project / ".boxsmith"
    lines = [
        _line(event="build", at="2026-11-02T09:00:00+00:00", template=CHARTED, version="0.9.0",
              status="built", seconds=212.5, size=1_310_000_000, image_id="sha256:a"),
        _line(event="build", at="2026-12-01T09:00:00+00:00", template=CHARTED, version=CURRENT,
              status="built", seconds=95.0, size=1_420_000_000, image_id="sha256:b"),
        _line(event="build", at="2026-12-01T09:05:00+00:00", template="python-data-311",
              version="1.1.0", status="built", seconds=95.0, size=980_000_000, image_id="sha256:c"),
        _line(event="smoke", at="2026-12-01T09:10:00+00:00", template=CHARTED, version=CURRENT,
              run="smoke-container", target="container", status="failed",
              checks=[{"name": "app renders", "kind": "page", "status": "failed"}]),
        _line(event="smoke", at="2026-12-01T09:20:00+00:00", template=CHARTED, version=CURRENT,
              run="smoke-container", target="container", status="passed",
              checks=[{"name": "app renders", "kind": "page", "status": "passed"}]),
    ]  # fmt: skip
    write_tree(state, {"history.jsonl": "".join(lines)})
    write_tree(state / "reports", {"page-app-renders.png": _png(*SHOT)})
    suite = {
        "name": f"{CHARTED}:{CURRENT}",
        "status": "passed",
        "checks": [
            {"name": "health answers", "kind": "http", "status": "passed",
             "expected": "status 200", "actual": "status 200"},
            {"name": "app renders", "kind": "page", "status": "passed",
             "expected": "title 'Streamlit'", "actual": "title 'Streamlit'",
             "screenshot": "page-app-renders.png"},
        ],
    }  # fmt: skip
    report = {"finished_at": "2026-12-01T09:20:00+00:00", "suites": [suite]}
    write_tree(state / "reports", {"smoke-container.json": json.dumps(report)})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index.html of the bundled templates' site."""
    project = tmp_path_factory.mktemp("catalog") / "templates"
    shutil.copytree(ROOT / "template_specs", project / "template_specs")
    assert cli(project, "render").code == 0
    _history_and_reports(project)
    run = cli(project, "report", "--json")
    assert run.code == 0, run.err
    index = Path(json.loads(run.out)["index"])
    assert index == project / ".boxsmith/report/index.html"
    return index


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _open(browser: Browser, url: str, viewport: str) -> tuple[Page, list[str]]:
    """A page at `viewport`'s size on `url`, and the list its console errors and uncaught
    exceptions are added to."""
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def _fits(page: Page) -> bool:
    """Nothing makes the page scroll sideways."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _visible(page: Page) -> list[str]:
    return page.locator(".card:visible h2 a").all_inner_texts()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_catalog_shows_every_template_and_filters_them(
    site: Path, browser: Browser, viewport: str
) -> None:
    templates = load_catalog(load_settings(site.parents[2])).templates
    names = [t.name for t in templates]
    page, problems = _open(browser, site.as_uri(), viewport)
    assert _visible(page) == names
    assert _fits(page)
    shot = artifacts() / f"report-catalog-{viewport}.png"
    page.screenshot(path=str(shot), full_page=True)
    if viewport == "desktop" and os.environ.get("BOXSMITH_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, ROOT / "docs/catalog.png")  # README's, refreshed on request

    python = [t.name for t in templates if t.spec.labels.get("runtime") == "python"]
    assert 0 < len(python) < len(names)
    page.fill("#filter", "runtime=python")
    assert _visible(page) == python
    page.fill("#filter", "debian-minimal")
    assert _visible(page) == ["debian-minimal"]
    page.fill("#filter", "no-such-template")
    assert _visible(page) == []
    page.fill("#filter", "")
    assert _visible(page) == names
    assert problems == []


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_template_page_shows_charts_smoke_screenshots_lint_and_sources(
    site: Path, browser: Browser, viewport: str
) -> None:
    catalog, problems = _open(browser, site.as_uri(), viewport)
    catalog.click(f"text={CHARTED}")
    catalog.wait_for_load_state("load")
    page = catalog
    assert page.url.endswith(f"/t/{CHARTED}.html")
    assert page.locator("svg.chart").count() == 2  # build time and image size
    assert page.locator("svg.chart").first.locator("rect.bar").count() == 2  # two versions
    labels = page.locator("svg.chart").first.locator("text").all_text_contents()
    assert labels == ["3.5 min", "0.9.0", "95 s", CURRENT]
    width = page.locator("img.shot").evaluate("img => img.complete && img.naturalWidth")
    assert width == SHOT[0]
    lint = page.locator("h2:text('Lint') + *").inner_text()
    assert "not run" not in lint
    assert page.locator("pre .t-k").count() > 5  # YAML keys and TOML keys
    assert page.locator("pre .t-i").count() > 3  # Dockerfile instructions
    runs = page.locator("h2:text('Smoke runs over time') + .scroll tr").all_inner_texts()
    assert ["passed" in runs[1], "failed" in runs[2]] == [True, True]  # newest first
    assert _fits(page)
    page.screenshot(path=str(artifacts() / f"report-template-{viewport}.png"), full_page=True)
    assert problems == []


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v for k, v in attrs if k in ("href", "src") and v]


def test_every_local_link_resolves_and_nothing_comes_from_the_network(site: Path) -> None:
    pages = sorted(site.parent.rglob("*.html"))
    assert len(pages) == 1 + len(list(site.parent.glob("t/*.html")))
    checked = 0
    for html in pages:
        parser = _Links()
        parser.feed(html.read_text(encoding="utf-8"))
        for link in parser.found:
            assert not link.startswith(("http:", "https:", "//")), (html, link)
            target = link.split("#")[0]
            if target:
                assert (html.parent / target).is_file(), (html, link)
                checked += 1
    assert checked > 2 * len(pages)  # the style sheet, the pages, the screenshot, the catalog


EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def test_a_spec_never_injects_markup_or_script(tmp_path: Path, browser: Browser) -> None:
    spec = MINIMAL.format(name="evil").replace("test template", json.dumps(EVIL))
    spec += "labels:\n  note: '\"><script>window.__pwned = 3</script>'\n"
    spec += "# </code></pre><script>window.__pwned = 4</script>\n"
    write_tree(tmp_path, {"template_specs/evil.yaml": spec})
    assert cli(tmp_path, "render").code == 0
    run = cli(tmp_path, "report")
    assert run.code == 0, run.err
    index = Path(run.out.strip())
    for url in (index.as_uri(), (index.parent / "t/evil.html").as_uri()):
        page, problems = _open(browser, url, "desktop")
        assert page.evaluate("window.__pwned") is None
        assert problems == []
        assert page.locator("img").count() == 0
        assert EVIL in page.locator("body").inner_text()
    assert page.locator("script").count() == 0  # the template page has none
    assert "window.__pwned = 4</script>" in page.locator("pre").first.inner_text()


def test_report_writes_its_folder_and_replaces_only_its_own(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "template_specs/one.yaml": MINIMAL.format(name="one"),
            "template_specs/two.yaml": MINIMAL.format(name="two"),
        },
    )
    site = tmp_path / "site"
    first = cli(tmp_path, "report", "--out", str(site))
    assert first.code == 0, first.err
    assert first.out == f"{site / 'index.html'}\n"
    assert sorted(p.name for p in (site / "t").iterdir()) == ["one.html", "two.html"]
    (tmp_path / "template_specs/two.yaml").unlink()
    assert cli(tmp_path, "report", "--out", str(site)).code == 0
    assert sorted(p.name for p in (site / "t").iterdir()) == ["one.html"]  # no stale page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []

    foreign = write_tree(tmp_path / "docs", {"keep.md": "mine\n"})
    refused = cli(tmp_path, "report", "--out", str(foreign))
    assert refused.code == 2
    assert "is not a site `boxsmith report` wrote" in refused.err
    assert (foreign / "keep.md").read_text() == "mine\n"
    assert not (foreign / "index.html").exists()


def test_the_invoke_task_writes_the_report(tmp_path: Path) -> None:
    write_tree(tmp_path, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    done = invoke(tmp_path, "report")
    assert done.returncode == 0, done.stderr
    index = tmp_path / ".boxsmith/report/index.html"
    assert done.stdout == f"{index}\n"
    assert (tmp_path / ".boxsmith/report/t/app.html").is_file()


def test_the_main_job_ends_by_writing_the_report() -> None:
    """scripts/main runs the main job, then `boxsmith report` (also after a failed main job,
    never after Ctrl-C), and exits with the main job's code."""
    text = (ROOT / "scripts/main").read_text()
    lines = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    main = next(i for i, line in enumerate(lines) if "invoke main" in line)
    report = next(i for i, line in enumerate(lines) if "boxsmith report" in line)
    assert main < report
    assert not lines[main].startswith("exec ")
    assert any("130" in line for line in lines[main:report])


# -- the history file -------------------------------------------------------------------------


def test_build_and_smoke_records_are_appended_as_json_lines(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    history.record_build(
        settings, name="app", version="1.0.0", status="built", seconds=12.345, size=10, image_id="x"
    )
    check = CheckResult("python version", "command", "passed", "exit 0", "exit 0", 1, 0.5)
    suites = [SuiteResult("app:1.0.0", (check,), target="container", seconds=3.0)]
    history.record_smoke(settings, suites, run="smoke-container")
    lines = (tmp_path / ".boxsmith/history.jsonl").read_text().splitlines()
    build, smoke = (json.loads(line) for line in lines)
    assert {k: build[k] for k in ("event", "template", "version", "status", "seconds", "size")} == {
        "event": "build", "template": "app", "version": "1.0.0", "status": "built",
        "seconds": 12.35, "size": 10,
    }  # fmt: skip
    assert smoke["template"] == "app"
    assert smoke["version"] == "1.0.0"
    assert (smoke["event"], smoke["status"], smoke["run"]) == ("smoke", "passed", "smoke-container")
    assert smoke["checks"] == [{"name": "python version", "kind": "command", "status": "passed"}]
    assert [r["event"] for r in history.read_history(settings)] == ["build", "smoke"]


class _PageSuite:
    """A suite whose JSON has a page check with a screenshot (the `page` kind's field)."""

    def __init__(self, checks: int) -> None:
        self.checks = checks

    def to_json(self) -> dict[str, object]:
        check = {"name": "renders " + "x" * 150, "kind": "page", "status": "passed"}
        return {
            "name": "web:2.0.0",
            "status": "passed",
            "checks": [{**check, "screenshot": f"shots/{n}.png"} for n in range(self.checks)],
        }


def test_a_smoke_record_keeps_screenshots_and_stays_one_short_line(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    history.record_smoke(settings, [_PageSuite(1), _PageSuite(200)])
    raw = (tmp_path / ".boxsmith/history.jsonl").read_bytes().splitlines(keepends=True)
    assert len(raw) == 2
    assert all(len(line) <= history.MAX_LINE for line in raw)
    small, big = (json.loads(line) for line in raw)
    assert small["checks"][0]["screenshot"] == "shots/0.png"
    assert "truncated" not in small
    assert big["truncated"] is True
    assert 0 < len(big["checks"]) < 200


def _append_many(root: str, worker: int) -> None:
    settings = load_settings(root)
    for n in range(300):
        history.record_build(
            settings, name=f"w{worker}", version=str(n), status="built", seconds=1, size=n
        )


def test_two_commands_appending_at_once_never_tear_a_line(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    lines = (tmp_path / ".boxsmith/history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole
    assert sorted((r["template"], int(r["version"])) for r in records) == sorted(
        (f"w{w}", n) for w in range(2) for n in range(300)
    )


def test_the_history_is_bounded_and_read_across_the_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_BYTES", 2000)
    settings = load_settings(tmp_path)
    for n in range(40):
        history.record_build(
            settings, name="app", version=str(n), status="built", seconds=1, size=n
        )
    folder = tmp_path / ".boxsmith"
    assert sorted(p.name for p in folder.iterdir()) == ["history.jsonl", "history.jsonl.1"]
    assert all(p.stat().st_size <= 2000 for p in folder.iterdir())
    with (folder / "history.jsonl").open("a") as torn:
        torn.write('{"event": "build", "templ')  # a run killed mid-write
    versions = [int(r["version"]) for r in history.read_history(settings)]
    assert versions == list(range(versions[0], 40))  # oldest first, the newest kept
    assert versions[0] > 0  # the oldest were dropped


@pytest.mark.docker
def test_a_build_records_its_time_and_image_size(tmp_path: Path) -> None:
    import docker

    write_tree(tmp_path, {"template_specs/app.yaml": MINIMAL.format(name="app")})
    assert cli(tmp_path, "render").code == 0
    built = cli(tmp_path, "build", "--json")
    try:
        assert built.code == 0, built.err
        (record,) = history.read_history(load_settings(tmp_path))
        entry = json.loads(built.out)["builds"][0]
        assert (record["template"], record["version"], record["status"]) == (
            "app", "1.0.0", "built",
        )  # fmt: skip
        assert record["size"] == entry["size"] > 0
        assert record["seconds"] == pytest.approx(entry["seconds"], abs=0.01)
        assert record["image_id"] == entry["image_id"]
        again = cli(tmp_path, "build")  # cached: no build ran, nothing to record
        assert again.code == 0, again.err
        assert len(history.read_history(load_settings(tmp_path))) == 1
    finally:
        client = docker.from_env()
        for entry in json.loads(built.out or '{"builds": []}')["builds"]:
            if entry.get("image_id"):
                client.images.remove(entry["image_id"], force=True)
