"""A real headless browser for the tests: the system's Chromium, driven by Playwright.

Playwright's own browser builds are never downloaded (this machine and CI machines without
internet access cannot, and a test must use what a user's machine has): the tests launch the
Chromium of the system's packages (Debian's `chromium`, which `scripts/test` installs) or the
one named by `BOXSMITH_BROWSER`, found as the page check finds it. Without one, the browser
tests fail, never skip, naming how to install it.

What the browser sees is kept: screenshots go to `test-artifacts/` at the repository's top (or
`BOXSMITH_TEST_ARTIFACTS`), which the tests workflow uploads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from boxsmith._internal.smoke.page import INSTALL_HINT, find_browser


def browser_path() -> str:
    """The Chromium to launch, as the page check finds it (`find_browser`)."""
    found, why = find_browser()
    if found is None:
        raise AssertionError(f"{why}: {INSTALL_HINT} (scripts/test installs one as root)")
    return found


def artifacts() -> Path:
    """The folder test artifacts go to (made if missing)."""
    default = Path(__file__).resolve().parent.parent / "test-artifacts"
    folder = Path(os.environ.get("BOXSMITH_TEST_ARTIFACTS") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the block, closed after it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()
