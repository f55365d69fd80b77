"""In a real browser: a library asks for post-cancellation content, staff approve, the library downloads it.

Debian's chromium, driven headless by Playwright (never `playwright install`), against the service
running on a free 127.0.0.1 port.  The downloaded file's sha256 must equal the catalog's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ..services import service_missing
from .live import running_service
from .test_api import catalog_file
from .world import PASSWORD, PAYLOAD_FILE

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the test itself: skipped locally, a failure on CI
    sync_playwright = None

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def log_in(page, url: str, username: str) -> None:
    page.goto(url + "/portal")
    page.wait_for_url("**/login?next=/portal")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(url + "/portal")


def test_request_approve_download_in_chromium(world):
    if sync_playwright is None:
        service_missing("playwright (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        service_missing(f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    pid = world.packages["pca_2019"]  # 2019 is outside pku's entitled 2010-2015: staff must approve
    size, sha256 = catalog_file(world, "pca_2019")
    with running_service(world.repo) as url, sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            service_missing(f"a working headless chromium ({e})")
        try:
            library = browser.new_context(accept_downloads=True).new_page()
            log_in(library, url, "alice")
            library.click('a.collection-link[data-key="pca-j"]')
            row = library.locator(f"#package-{pid}")
            row.locator('input[name="reason"]').fill("Subscription cancelled in 2016; a reader needs the 2019 issues")
            row.locator("button").click()
            library.wait_for_url("**/portal/requests*")
            request_row = library.locator("tr.request").first
            request_id = request_row.get_attribute("id").removeprefix("request-")
            assert request_row.locator("td.state").inner_text() == "pending"
            assert "outside the entitled years" in request_row.inner_text()

            staff = browser.new_context().new_page()
            log_in(staff, url, "carol")
            staff.goto(url + "/staff/requests")
            decision = staff.locator(f"#request-{request_id}")
            decision.locator('input[name="why"]').fill("Cancelled 2016; the consortium extends access to 2019")
            decision.locator("button.approve").click()
            staff.wait_for_url(url + "/staff/requests")
            assert staff.locator(f"#request-{request_id}").count() == 0  # no longer pending

            library.reload()
            assert library.locator(f"#request-{request_id} td.state").inner_text() == "approved"
            library.goto(f"{url}/portal/packages/{pid}")
            with library.expect_download() as info:
                library.click(f'a.file-link[data-path="{PAYLOAD_FILE}"]')
            download = info.value
            data = Path(download.path()).read_bytes()
            assert download.suggested_filename == PAYLOAD_FILE.rsplit("/", 1)[-1]
        finally:
            browser.close()
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == sha256
