"""In a real browser, a reader uses a package's content: down its Chinese folders by their links, a file name
search, a PDF that opens in Chromium's own viewer (no download), Chinese plain text shown as text in an opaque
origin (the sandboxing CSP), and a hostile SVG that downloads instead of running.

Debian's chromium driven headless by Playwright, as tests/access/test_browser_items.py does; skipped locally
without a browser, a failure on CI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..services import service_missing
from .content_world import ISSUE, PDF, SVG, content, content_template  # noqa: F401  (fixtures)
from .live import running_service
from .test_browser import CHROMIUM, CHROMIUM_ARGS, log_in

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the test itself: skipped locally, a failure on CI
    sync_playwright = None

pytestmark = pytest.mark.browser

PDF_VIEWER = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"  # Chromium's built-in PDF viewer


def test_a_reader_walks_the_folders_and_opens_a_pdf_inline(content):  # noqa: F811
    if sync_playwright is None:
        service_missing("playwright (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        service_missing(f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    pid = content.packages["content"]
    with running_service(content.repo) as url, sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            service_missing(f"a working headless chromium ({e})")
        try:
            reader = browser.new_context(accept_downloads=True, locale="zh-CN").new_page()
            downloads = []
            reader.on("download", lambda d: downloads.append(d))
            log_in(reader, url, "alice")  # pku; the collection is open
            reader.goto(f"{url}/portal/packages/{pid}")
            assert reader.locator("#bag-tag-files").count() == 0
            assert "bagit.txt" not in reader.content()
            for part in ISSUE.split("/"):
                reader.click(f'#entries a.folder-link:has-text("{part}/")')
                reader.wait_for_load_state("load")
            assert reader.locator("#crumbs [aria-current=page]").inner_text() == ISSUE.rsplit("/", 1)[-1]

            reader.goto(f"{url}/portal/packages/{pid}")  # a search from the top finds the file in its folder
            reader.fill("#file-q", "说明")
            reader.click("#file-search button[type=submit]")
            reader.wait_for_url("**q=*")
            found = reader.locator("#entries a.file-open")
            assert found.count() == 1 and found.inner_text() == f"{ISSUE}/说明.txt"
            found.click()
            reader.wait_for_load_state("load")
            assert "《物理学报》第68卷第7期" in reader.locator("body").inner_text()  # text, in its encoding
            assert reader.evaluate("self.origin") == "null"  # sandboxed: not the portal's origin
            reader.go_back()

            reader.goto(f"{url}/portal/packages/{pid}?path={ISSUE}")
            reader.click(f'a.file-open[data-path="data/{PDF}"]')
            reader.wait_for_function("() => location.pathname.endsWith('.pdf')")
            reader.wait_for_timeout(500)
            viewer = [f for f in reader.frames if f.url.startswith(PDF_VIEWER)]
            assert viewer and viewer[0].locator("pdf-viewer").count() == 1, [f.url for f in reader.frames]
            assert downloads == []

            reader.goto(f"{url}/portal/packages/{pid}?path=hostile")
            link = reader.locator('a.file-link[data-path="data/hostile/drawing.svg"]')
            with reader.expect_download() as info:  # followed as a plain navigation: its headers, not the link's
                reader.evaluate("href => { location.href = href; }", link.get_attribute("href"))
            assert Path(info.value.path()).read_bytes() == SVG
            assert reader.url.endswith("?path=hostile")  # still the portal's page, nothing rendered
        finally:
            browser.close()
