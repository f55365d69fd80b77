"""In a real browser, in Chinese and in English: "forgot password" → the mail (a real SMTP server, aiosmtpd) → the
link → a new password → log in with it; then a locked account's notice.  Every page is screenshotted, checked for
untranslated labels on the Chinese run and by axe-core, and the forms are filled from the keyboard."""

from __future__ import annotations

import pytest

from preservation.access import accounts

from ..services import service_missing
from .browser_checks import PageChecks, artefacts_dir, need_browser
from .live import running_service
from .mailing import LINK, PORTAL, mailing, to
from .test_browser import CHROMIUM, CHROMIUM_ARGS, LOCALES

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the test itself: skipped locally, a failure on CI
    sync_playwright = None

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new long password"


@pytest.mark.parametrize("locale", list(LOCALES))
def test_password_reset_and_lockout_in_chromium(world, locale, tmp_path, request):
    need_browser()
    checks = PageChecks(artefacts_dir(tmp_path, request.node.name), LOCALES[locale])
    accounts.set_user_email(world.repo, "alice", "alice@pku.example.org")
    with mailing(world) as mailbox, running_service(world.repo, login_max_failures=2) as url, \
            sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            service_missing(f"a working headless chromium ({e})")
        try:
            page = browser.new_context(locale=locale).new_page()
            page.goto(url + "/login")
            page.click("#forgot")
            page.wait_for_url(url + "/login/forgot")
            checks.seen(page, "forgot")
            page.focus("#username")
            page.keyboard.type("alice")
            page.keyboard.press("Enter")  # the form works from the keyboard
            page.wait_for_selector("#reset-sent")
            checks.seen(page, "forgot-sent")
            for _ in range(100):  # the mail leaves after the answer, from a background task
                if to(mailbox, "alice@pku.example.org"):
                    break
                page.wait_for_timeout(100)
            [message] = to(mailbox, "alice@pku.example.org")
            link = LINK.search(message.get_content()).group(0)
            assert link.startswith(PORTAL)
            assert ("重置" in str(message["Subject"])) == (locale == "zh-CN")  # in the language of the page
            page.goto(url + link.removeprefix(PORTAL))
            checks.seen(page, "reset")
            page.focus("#password")
            page.keyboard.type(NEW_PASSWORD)
            page.keyboard.press("Tab")
            page.keyboard.type(NEW_PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(url + "/login?reset=done")
            checks.seen(page, "login-after-reset")
            page.fill("#username", "alice")
            page.fill("#password", NEW_PASSWORD)
            page.click("#login")
            page.wait_for_url(url + "/portal")

            other = browser.new_context(locale=locale).new_page()
            for _ in range(3):
                other.goto(url + "/login")
                other.fill("#username", "bob")
                other.fill("#password", "not bob's password")
                other.click("#login")
                other.wait_for_load_state("load")
            assert other.locator('p.error[role="alert"]').count() == 1
            assert "Asia/Shanghai" in other.locator('p.error[role="alert"]').inner_text()
            checks.seen(other, "locked")
        finally:
            browser.close()
    checks.assert_clean()
