"""A real headless browser for the tests: the system's Chromium, driven by Playwright.

Playwright's own browser builds are never downloaded (this machine and CI machines without
internet access cannot, and a test must use what a user's machine has): the tests launch the
Chromium of the system's packages (Debian's `chromium`, which `scripts/test` installs) or the
one named by `BOXSMITH_TEST_BROWSER`. Without one, the browser tests fail, never skip, naming
how to install it.

What the browser sees is kept: screenshots go to `test-artifacts/` at the repository's top (or
`BOXSMITH_TEST_ARTIFACTS`), which the tests workflow uploads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser_path() -> str:
    """The Chromium to launch: `BOXSMITH_TEST_BROWSER`, else the first of the usual names."""
    chosen = os.environ.get("BOXSMITH_TEST_BROWSER")
    if chosen:
        return chosen
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "no Chromium on PATH: install Debian's (`apt-get install chromium`; scripts/test does it "
        "as root) or name one with BOXSMITH_TEST_BROWSER"
    )


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
