"""In a real browser: a library asks for post-cancellation content, staff approve, the library downloads it,
once in Chinese and once in English (the browser's language).

Debian's chromium, driven headless by Playwright (never `playwright install`), against the service
running on a free 127.0.0.1 port.  The downloaded file's sha256 must equal the catalog's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from preservation.access.web import i18n

from .browser_checks import (  # noqa: F401  (CHROMIUM, CHROMIUM_ARGS: imported from here by other browser tests)
    CHROMIUM,
    CHROMIUM_ARGS,
    PageChecks,
    artefacts_dir,
    launch,
    need_browser,
    sync_playwright,
)
from .live import running_service
from .test_api import catalog_file
from .world import PASSWORD, PAYLOAD_FILE

pytestmark = pytest.mark.browser


def log_in(page, url: str, username: str) -> None:
    page.goto(url + "/portal")
    page.wait_for_url("**/login?next=/portal")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(url + "/portal")


LOCALES = {"zh-CN": i18n.CHINESE, "en": i18n.ENGLISH}


def open_folders(page, parts: list[str]) -> None:
    """From a package's page, down its folder tree by clicking each folder's link."""
    for part in parts:
        page.click(f'a.folder-link:has-text("{part}/")')
        page.wait_for_load_state("load")


@pytest.mark.parametrize("locale", list(LOCALES))
def test_request_approve_download_in_chromium(world, locale, tmp_path, request):
    """The whole flow in the browser's language; every page saved as a screenshot, and on the Chinese run no
    English catalog label left on any of them; axe-core finds no serious or critical violation on any."""
    need_browser()
    checks = PageChecks(artefacts_dir(tmp_path, request.node.name), LOCALES[locale])
    pid = world.packages["pca_2019"]  # 2019 is outside pku's entitled 2010-2015: staff must approve
    size, sha256 = catalog_file(world, "pca_2019")
    with running_service(world.repo) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            library = browser.new_context(accept_downloads=True, locale=locale).new_page()
            library.goto(url + "/portal")
            library.wait_for_url("**/login?next=/portal")
            checks.seen(library, "login")
            log_in(library, url, "alice")
            checks.seen(library, "holdings")
            library.click('a.collection-link[data-key="pca-j"]')
            checks.seen(library, "collection")
            row = library.locator(f"#package-{pid}")
            row.locator('input[name="reason"]').fill("Subscription cancelled in 2016; a reader needs the 2019 issues")
            row.locator("button").click()
            library.wait_for_url("**/portal/requests*")
            checks.seen(library, "requests-pending")
            request_row = library.locator("tr.request").first
            request_id = request_row.get_attribute("id").removeprefix("request-")
            assert request_row.get_attribute("data-state") == "pending"
            assert request_row.locator(".state-word").inner_text() == {"zh-CN": "待工作人员审批",
                                                                       "en": "Waiting for staff"}[locale]
            assert library.locator('p.message[role="status"]').count() == 1  # the request is confirmed
            # the access policy's reason in the page's language, with its numbers (coded reasons)
            assert {"zh-CN": "数据包的年份 2019 不在已付费年份 2010-2015 之内：由工作人员决定",
                    "en": "the package's year 2019 is outside the entitled years 2010-2015: staff decide"}[locale] in (
                request_row.inner_text())

            staff = browser.new_context(locale=locale).new_page()
            log_in(staff, url, "carol")
            staff.goto(url + "/staff/requests")
            checks.seen(staff, "staff-requests")
            decision = staff.locator(f"#request-{request_id}")
            decision.locator('input[name="why"]').fill("Cancelled 2016; the consortium extends access to 2019")
            decision.locator("button.approve").click()
            staff.wait_for_url(url + "/staff/requests")
            assert staff.locator(f"#request-{request_id}").count() == 0  # no longer pending
            assert request_id in staff.locator('p.message[role="status"]').inner_text()  # the approval confirmed
            checks.seen(staff, "staff-approved")

            library.reload()
            assert library.locator(f"#request-{request_id}").get_attribute("data-state") == "approved"
            checks.seen(library, "requests-approved")
            library.click(f"#request-{request_id} a.open-package")
            library.wait_for_url(f"**/portal/packages/{pid}*")
            checks.seen(library, "package")
            open_folders(library, PAYLOAD_FILE.split("/")[1:-1])
            checks.seen(library, "folder")
            with library.expect_download() as info:
                library.click(f'a.file-link[data-path="{PAYLOAD_FILE}"]')
            download = info.value
            data = Path(download.path()).read_bytes()
            assert download.suggested_filename == PAYLOAD_FILE.rsplit("/", 1)[-1]
        finally:
            browser.close()
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == sha256
    checks.assert_clean()
