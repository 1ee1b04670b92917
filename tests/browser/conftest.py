"""Browser tests of the web UI: Playwright drives Debian's chromium (never a downloaded
browser) against an embedded node with the in-process simulator, in the test's own event
loop, so a test can also inject simulator faults and call the REST API directly.

Without /usr/bin/chromium these tests skip, except under CI=true or ZSTACK_TEST_REAL=1
(``.ci/bootstrap test`` installs chromium and sets the latter), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.conftest import (  # noqa: F401  # fixtures, re-exported for this directory
    admin,
    http,
    migrated,
    node,
    node_overrides,
    node_settings,
    sim,
    start_node,
)
from tests.support.real_server import real_servers_required

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
# Set to refresh the committed screenshots in docs/screenshots/ (otherwise they go to the
# test's temporary directory, so a test run leaves the tree clean).
UPDATE_SCREENSHOTS = "ZSTACK_UPDATE_SCREENSHOTS"


@pytest.fixture
def screenshots(tmp_path: Path) -> Iterator[Path]:
    if os.environ.get(UPDATE_SCREENSHOTS) != "1":
        yield tmp_path
        return
    target = REPO / "docs" / "screenshots"
    yield target
    # Chromium's PNGs are big; a palette of 256 colours keeps them readable at a third.
    pngquant = shutil.which("pngquant")
    if pngquant is not None:
        for png in target.glob("*.png"):
            subprocess.run(
                [pngquant, "--force", "--ext", ".png", "--skip-if-larger", "256", str(png)],
                check=False,
            )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium"
        if real_servers_required():
            pytest.fail(f"{reason} (browser tests must run when CI=true)")
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh page (1280x800); fails the test if the page threw an uncaught error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    # What the page showed when the test ended: the first thing to look at when it failed.
    await opened.screenshot(path=tmp_path / "last-page.png")
    print(f"last page: {tmp_path / 'last-page.png'} at {opened.url}")
    await context.close()
    assert not errors, errors
