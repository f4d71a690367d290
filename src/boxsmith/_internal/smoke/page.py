"""The page check: open a port's page in a real headless Chromium and look at what a user sees.

The target names the URL (`CheckTarget.port_url`: a container's address on Docker's bridge, a
sandbox's preview URL); the browser on the host opens it, waits until the page is settled
(network idle, or `wait_for`'s selector attached), then polls the assertions (title regex,
selector present, text visible) until they hold or the check's `timeout` ends. Uncaught
exceptions (`pageerror`) and `console.error` messages fail the check unless
`console_errors: allow`; Chromium's own message about a missing `/favicon.ico` (which the browser
asks for by itself, not the page) does not count. Whatever the outcome, a PNG screenshot of the
page is kept in the attempt; the report writer saves it next to the smoke reports.

Playwright for Python drives the system's Chromium (`BOXSMITH_BROWSER`, else `chromium`,
`chromium-browser` or `google-chrome` on PATH); boxsmith never downloads a browser build. It
comes with the `page` extra and is imported when a page check runs, never before.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from boxsmith._internal.extras import missing
from boxsmith._internal.smoke.protocol import Attempt, CheckTarget, trim
from boxsmith._internal.spec.checks import PageCheck

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["BROWSER_ENV", "BROWSER_NAMES", "PageKind", "find_browser"]

BROWSER_ENV = "BOXSMITH_BROWSER"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = f"install Chromium (`apt-get install chromium`) or set {BROWSER_ENV} to one"
VIEWPORT = {"width": 1280, "height": 800}
POLL_MS = 250  # between two looks at the assertions
LOOK_MS = 100  # one look for a selector or a text
BUSY_MS = 5_000  # the least time the page's JavaScript gets to answer a look, past the timeout
LAUNCH_MS = 30_000  # starting Chromium, before the check's timeout starts
SCREENSHOT_MS = 10_000  # the screenshot's own bound, past the check's timeout
_FAVICON = "/favicon.ico"
_LIMIT = 300  # characters of one console message kept in the output


def find_browser(environ: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """The Chromium to launch (`BOXSMITH_BROWSER`, else the first of `BROWSER_NAMES` on PATH),
    or None and why, with how to install one."""
    chosen = environ.get(BROWSER_ENV)
    if chosen:
        found = shutil.which(chosen)
        return found, "" if found else f"{BROWSER_ENV}={chosen!r} is not an executable"
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found, ""
    return None, f"no Chromium on PATH ({', '.join(BROWSER_NAMES)})"


@dataclass
class _Seen:
    """What the browser saw of the page."""

    url: str
    status: int | None = None
    problem: str = ""  # the page could not be opened or settled: the check fails for it
    title: str = ""
    unmet: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console.error
    log: list[str] = field(default_factory=list)  # every console message, for the output
    screenshot: bytes | None = None


class PageKind:
    """`page:` a port's page renders in headless Chromium (see the module's docstring)."""

    def expected(self, check: PageCheck) -> str:
        parts = [f"page {check.page.path} on port {check.page.port} loads"]
        if check.title is not None:
            parts.append(f"title matching /{check.title}/")
        if check.selector is not None:
            parts.append(f"an element matching {check.selector!r}")
        if check.text is not None:
            parts.append(f"text {check.text!r} visible")
        if check.console_errors == "fail":
            parts.append("no JavaScript errors")
        return ", ".join(parts)

    def attempt(self, target: CheckTarget, check: PageCheck) -> Attempt:
        browser, why = find_browser()
        if browser is None:
            return Attempt(False, f"{why}: {INSTALL_HINT}", final=True)
        address = target.port_url(check.page.port)
        seen = _Seen(address.url + check.page.path)
        launched = _open(browser, seen, address.headers, check)
        if launched:
            return Attempt(False, launched, final=True)
        return _verdict(seen, check)


def _verdict(seen: _Seen, check: PageCheck) -> Attempt:
    counted = seen.errors if check.console_errors == "fail" else []
    if seen.problem:
        actual = seen.problem
    else:
        actual = f"HTTP {seen.status}, title {seen.title!r}"
        if seen.unmet:
            actual += "; " + "; ".join(seen.unmet)
    if counted:
        more = f" (and {len(counted) - 3} more)" if len(counted) > 3 else ""
        actual += f"; JavaScript errors: {' | '.join(counted[:3])}{more}"
    passed = not seen.problem and not seen.unmet and not counted
    lines = [f"url: {seen.url}", f"status: {seen.status}", f"title: {seen.title!r}"]
    lines += [f"console {line}" for line in seen.log[-40:]]
    output = trim("\n".join(lines) + "\n")  # the last OUTPUT_LIMIT characters, as other kinds
    return Attempt(passed, actual, output, screenshot=seen.screenshot)


def _open(browser: str, seen: _Seen, headers: Mapping[str, str], check: PageCheck) -> str:
    """Open the page, settle, assert, screenshot into `seen`; a non-empty return says why the
    browser itself could not start."""
    try:  # the `page` extra's, and about 0.2 s to import: only when a page check runs
        from playwright.sync_api import Error, sync_playwright
    except ModuleNotFoundError as exc:
        raise missing(f"no module named {exc.name!r}", ["page"]) from exc
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=browser,
                headless=True,
                args=["--no-proxy-server"] if _local(seen.url) else [],
                timeout=LAUNCH_MS,
            )
        except Error as exc:
            return f"cannot start Chromium ({browser}): {_first_line(exc.message)}"
        deadline = time.monotonic() + check.timeout
        try:
            context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            if headers:
                origin = _origin(seen.url)
                context.route(lambda url: _origin(url) == origin, _with_headers(headers))
            page = context.new_page()
            page.on("pageerror", lambda exc: seen.errors.append(f"{exc.name}: {exc.message}"))
            page.on("console", lambda message: _console(seen, message))
            _look(page, seen, check, deadline, Error)
            try:
                seen.screenshot = page.screenshot(full_page=True, timeout=SCREENSHOT_MS)
            except Error as exc:
                seen.log.append(f"screenshot failed: {_first_line(exc.message)}")
        finally:
            chromium.close()
    return ""


def _look(page: Page, seen: _Seen, check: PageCheck, deadline: float, error: type[Any]) -> None:
    """Load and settle the page, then poll the assertions until they hold or time runs out."""
    try:
        response = page.goto(seen.url, wait_until="load", timeout=_left(deadline))
        seen.status = response.status if response is not None else None
    except error as exc:
        seen.problem = f"not loaded: {_why(exc, check.timeout)}"
        return
    try:
        if check.wait_for is not None:
            page.locator(check.wait_for).first.wait_for(state="attached", timeout=_left(deadline))
        else:
            page.wait_for_load_state("networkidle", timeout=_left(deadline))
    except error as exc:
        if check.wait_for is not None:
            seen.problem = f"{check.wait_for!r} did not appear within {check.timeout:g}s"
            seen.log.append(f"wait_for: {_first_line(exc.message)}")
            return
        seen.log.append(f"network not idle within {check.timeout:g}s; asserting anyway")
    try:
        while True:
            seen.unmet = _unmet(page, seen, check, deadline)
            counted = seen.errors and check.console_errors == "fail"
            answered = seen.status is not None and seen.status >= 400  # a reload's to change
            if not seen.unmet or counted or answered or time.monotonic() >= deadline:
                break
            page.wait_for_timeout(POLL_MS)
    except _Busy:
        seen.problem = "the page stopped answering: its JavaScript does not yield"
    except error as exc:  # an invalid selector, the page gone
        seen.problem = f"cannot check the page: {_first_line(exc.message)}"


class _Busy(Exception):
    """The page's main thread did not answer (a script that never yields)."""


def _unmet(page: Page, seen: _Seen, check: PageCheck, deadline: float) -> list[str]:
    """What does not hold yet. Every look at the page is bounded: a page whose script spins
    answers nothing, and Playwright's title and count calls would wait for it for ever."""
    try:  # the page answers at all (bounded), before the calls that have no timeout
        page.wait_for_function("() => true", timeout=max(_left(deadline), BUSY_MS))
    except Exception as exc:
        if type(exc).__name__ == "TimeoutError":
            raise _Busy from exc
        raise
    seen.title = page.title()
    unmet = []
    if seen.status is not None and seen.status >= 400:
        unmet.append(f"the page answered HTTP {seen.status}")
    if check.title is not None and not re.search(check.title, seen.title):
        unmet.append(f"title not matching /{check.title}/")
    if check.selector is not None and not _present(page.locator(check.selector).first):
        unmet.append(f"no element matches {check.selector!r}")
    if check.text is not None and not _present(
        page.get_by_text(check.text).filter(visible=True).first
    ):
        unmet.append(f"text {check.text!r} not visible")
    return unmet


def _present(locator: Any) -> bool:
    """The locator matches an element now (a short, bounded wait)."""
    try:
        locator.wait_for(state="attached", timeout=LOOK_MS)
    except Exception as exc:
        if type(exc).__name__ == "TimeoutError":
            return False
        raise
    return True


def _console(seen: _Seen, message: Any) -> None:
    text = message.text if len(message.text) <= _LIMIT else message.text[:_LIMIT] + "..."
    seen.log.append(f"{message.type}: {text}")
    if message.type != "error":
        return
    source = urlsplit(str((message.location or {}).get("url") or ""))
    if source.path == _FAVICON and text.startswith("Failed to load resource"):
        return  # the browser asked for it on its own, not the page
    seen.errors.append(f"console.error: {_first_line(text)}")


def _with_headers(headers: Mapping[str, str]) -> Callable[[Any], None]:
    """A route handler adding `headers` (only requests to the target's origin are routed, so a
    sandbox's access token never goes to another host the page loads from)."""

    def handle(route: Any) -> None:
        route.continue_(headers={**route.request.headers, **headers})

    return handle


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _local(url: str) -> bool:
    """A host on this machine or Docker's bridge (no proxy in between)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _left(deadline: float) -> float:
    """Milliseconds to the deadline (at least 1: Playwright reads 0 as no timeout)."""
    return max(1.0, (deadline - time.monotonic()) * 1000)


def _why(exc: Any, timeout: float) -> str:
    """A Playwright error in a line: `within 30s` for its timeouts, else its first line."""
    if type(exc).__name__ == "TimeoutError":
        return f"not within {timeout:g}s"
    return _first_line(exc.message)


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else "no message"
