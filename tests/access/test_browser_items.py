"""In a real browser, item by item: a library searches in Chinese, opens an article from the results, asks
for it; staff approve; the library downloads the article, and its sha256 is the catalog's.

Debian's chromium, driven headless by Playwright (never `playwright install`), against the service on a free
127.0.0.1 port, over a catalog whose items come from ingest's own JATS extraction.  Skipped locally without a
browser; on CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from devtools.articles import doi_for, jats_article, pdf_bytes
from preservation.ingest import ingest

from .browser_checks import PageChecks, artefacts_dir, launch, need_browser, sync_playwright
from .items_world import items, items_template  # noqa: F401  (fixtures)
from .live import running_service
from .test_browser import LOCALES, log_in

pytestmark = pytest.mark.browser

ARTICLE_TITLE = "凝聚态物理中的拓扑相变"


def deliver_article(repo, root: Path) -> str:
    """Ingest one JATS article of 物理学报 (2019, volume 68, issue 7) into pca-j; its DOI."""
    doi = doi_for(68, 2019, 99)
    stem = root / "期刊" / "物理学报" / "2019" / "第07期" / "aps-68-00099"
    stem.parent.mkdir(parents=True)
    stem.with_suffix(".xml").write_bytes(jats_article(doi, ARTICLE_TITLE, [("张", "伟"), ("李", "娜")], volume=68,
                                                      issue=7, year=2019, month=4, pdf=stem.name + ".pdf"))
    stem.with_suffix(".pdf").write_bytes(pdf_bytes(f"Acta Phys. Sin. {doi}", 25_000, seed=99))
    result = ingest(repo, root, "pca-j", name="aps-2019-07", bag_info={"Year": "2019"})
    assert result["state"] == "preserved", result
    return doi


def assert_drawn_in_cjk_font(page, selector: str, text: str) -> None:
    """Every glyph of ``text`` at ``selector`` is drawn from the CJK font the portal's CSS names, not a fallback.

    Chromium's DevTools protocol reports the platform fonts that rendered a node; on a machine without
    fonts-noto-cjk the Chinese glyphs come from another font (or none), and this fails.
    """
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cjk = sum(font["glyphCount"] for font in fonts if font["familyName"] == "Noto Sans CJK SC")
    assert cjk == len(text), fonts


@pytest.mark.parametrize("locale", list(LOCALES))
def test_search_request_approve_download_an_article_in_chromium(items, tmp_path, locale, request):  # noqa: F811
    """In the browser's language (zh-CN, en): every page saved, no English label left on a Chinese one, axe."""
    need_browser()
    checks = PageChecks(artefacts_dir(tmp_path, request.node.name), LOCALES[locale])
    doi = deliver_article(items.repo, tmp_path / "delivery")
    _, pdf_path, size, sha256 = items.fulltext(doi)  # the catalog's PackageFile row
    with running_service(items.repo) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            library = browser.new_context(accept_downloads=True, locale=locale).new_page()
            log_in(library, url, "alice")  # pku: entitled 2010-2015 only, so a 2019 article needs staff
            checks.seen(library, "holdings")
            box = library.locator('form.search-box input[name="q"]')
            box.fill("物理")
            box.press("Enter")
            library.wait_for_url("**/portal/search?q=*")
            checks.seen(library, "search-results")
            hit = library.locator(f'#item-hits a.item-link[data-doi="{doi}"]')
            assert hit.inner_text() == ARTICLE_TITLE
            assert_drawn_in_cjk_font(library, f'#item-hits a.item-link[data-doi="{doi}"]', ARTICLE_TITLE)
            hit.click()
            library.wait_for_url(f"**/portal/items/{doi}")
            checks.seen(library, "item-dark")
            assert library.locator("#item-standing").get_attribute("data-standing") == "dark"
            assert library.locator("a.file-link").count() == 0
            library.fill("form#request-item textarea[name=reason]", "读者撰写学位论文需要这篇文章 (thesis)")
            library.click("form#request-item button[type=submit]")
            library.wait_for_url("**/portal/requests#request-*")
            request_id = library.url.rsplit("#request-", 1)[1]
            checks.seen(library, "requests-pending")
            row = library.locator(f"#request-{request_id}")
            assert row.get_attribute("data-state") == "pending"
            assert ARTICLE_TITLE in row.inner_text() and doi in row.inner_text()

            staff = browser.new_context(locale=locale).new_page()
            log_in(staff, url, "carol")
            staff.goto(url + "/staff/requests")
            checks.seen(staff, "staff-requests")
            decision = staff.locator(f"#request-{request_id}")
            assert ARTICLE_TITLE in decision.inner_text()
            decision.locator('input[name="why"]').fill("Thesis use; one article")
            decision.locator("button.approve").click()
            staff.wait_for_url(url + "/staff/requests")
            assert staff.locator(f"#request-{request_id}").count() == 0  # no longer pending

            library.reload()
            assert library.locator(f"#request-{request_id}").get_attribute("data-state") == "approved"
            checks.seen(library, "requests-approved")
            library.click(f"#request-{request_id} a.open-item")
            library.wait_for_url(f"**/portal/items/{doi}")
            checks.seen(library, "item-readable")
            assert library.locator("#item-standing").get_attribute("data-standing") == "read"
            with library.expect_download() as info:
                library.click(f'a.file-link[data-path="{pdf_path}"]')
            download = info.value
            data = Path(download.path()).read_bytes()
            assert download.suggested_filename == pdf_path.rsplit("/", 1)[-1]
        finally:
            browser.close()
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == sha256
    checks.assert_clean()
