"""Accessibility of the portal in a real browser (issue 21 point 5): axe-core on every portal page, library and
staff, in Chinese and in English, with no serious or critical violation; every visible form control on every
page reached by the Tab key; and forms that work by keyboard alone.

Debian's chromium driven headless by Playwright; axe-core comes with the ``axe-playwright-python`` wheel.  Every
page is saved as a screenshot with axe's findings beside it (``browser_checks``), and on the Chinese run no
English catalog label may remain on any page.  Skipped locally without a browser; on CI a failure.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from preservation.access.requests import decide_request, get_request

from .browser_checks import PageChecks, artefacts_dir, launch, need_browser, sync_playwright, unreachable_controls
from .conftest import csrf_of, login, make_client
from .items_world import items, items_template  # noqa: F401  (fixtures)
from .live import running_service
from .test_browser import LOCALES, log_in
from .world import PASSWORD

pytestmark = pytest.mark.browser


def requests_in_every_state(world) -> None:
    """A pending, an approved and a denied request of pku, so the request pages show all their parts."""
    with make_client(world) as library:
        login(library, "alice")
        ids = []
        for fields in ({"package_id": world.packages["pca_2019"]}, {"package_id": world.packages["pca_noyear"]},
                       {"collection": "journals"}):
            r = library.post("/portal/requests", data={"csrf": csrf_of(library.get("/portal").text),
                                                       "reason": "读者需要 (a reader needs it)", **fields})
            assert r.status_code == 303, r.text
            ids.append(int(r.headers["location"].rsplit("-", 1)[1]))
    decide_request(world.repo, ids[0], approve=True, by="user:carol", why="cancelled 2016")
    decide_request(world.repo, ids[2], approve=False, by="user:carol", why="no trigger event yet")


@pytest.mark.slow  # about 21 pages, each with axe and (English) a walk of its tab order: collected first
@pytest.mark.parametrize("locale", list(LOCALES))
def test_every_portal_page_passes_axe_without_serious_violations(items, locale, tmp_path, request):  # noqa: F811
    need_browser()
    world = items.world
    requests_in_every_state(world)
    title_id = items.title_id()
    doi = items.dois["aps_2019"][0]
    readable = world.packages["open"]
    library_pages = {
        "holdings": "/portal",
        "collection": "/portal/collections/pca-j",
        "titles": "/portal/collections/pca-j/titles",
        "title": f"/portal/titles/{title_id}",
        "title-year": f"/portal/titles/{title_id}?year=2019",
        "search": "/portal/search",
        "search-results": "/portal/search?q=" + quote("物理"),
        "item": f"/portal/items/{doi}",
        "requests": "/portal/requests",
        "package": f"/portal/packages/{readable}",
        "package-folder": f"/portal/packages/{readable}?path=articles",
        "package-versions": f"/portal/packages/{readable}/versions/1",
        "not-found": "/portal/collections/no-such-collection",
    }
    staff_pages = {
        "staff-pending": "/staff/requests",
        "staff-approved": "/staff/requests?state=approved",
        "staff-denied": "/staff/requests?state=denied",
        "staff-triggers": "/staff/triggers",
        "staff-usage": "/staff/usage",
        "staff-dashboard": "/staff/dashboard",
    }
    checks = PageChecks(artefacts_dir(tmp_path, request.node.name), LOCALES[locale])
    out_of_reach = {}  # page -> form controls the Tab key never reaches (the English run checks; same markup)

    def visit(page, name: str, path: str) -> None:
        page.goto(url + path)
        checks.seen(page, name)
        if locale == "en":
            out_of_reach[name] = unreachable_controls(page)

    with running_service(world.repo) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            anonymous = browser.new_context(locale=locale).new_page()
            for name, path in {"login": "/login", "forgot": "/login/forgot"}.items():
                visit(anonymous, name, path)
            library = browser.new_context(locale=locale).new_page()
            log_in(library, url, "alice")
            for name, path in library_pages.items():
                visit(library, name, path)
            staff = browser.new_context(locale=locale).new_page()
            log_in(staff, url, "carol")
            for name, path in staff_pages.items():
                visit(staff, name, path)
        finally:
            browser.close()
    assert len(checks.visited) == 2 + len(library_pages) + len(staff_pages)
    checks.assert_clean()
    assert {name: controls for name, controls in out_of_reach.items() if controls} == {}


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element ``selector`` names has the keyboard focus (as a keyboard user would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement !== null && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def keyboard_log_in(page, url: str, username: str, then: str) -> None:
    """The login form filled and sent with Tab, typing and Enter; lands on ``then``."""
    page.goto(f"{url}/login?next={then}")
    tab_to(page, "#username")
    page.keyboard.type(username)
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(url + then)


def test_log_in_ask_and_approve_with_the_keyboard_alone(items, tmp_path):  # noqa: F811
    """No click anywhere: Tab to each field, type, Enter; the library's request and staff's approval land."""
    need_browser()
    world = items.world
    pid = world.packages["pca_2019"]
    with running_service(world.repo) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            library = browser.new_context(locale="zh-CN").new_page()
            keyboard_log_in(library, url, "alice", "/portal/collections/pca-j")
            tab_to(library, f'#package-{pid} input[name="reason"]')
            library.keyboard.type("键盘提交的申请 (asked with the keyboard)")
            library.keyboard.press("Enter")
            library.wait_for_url("**/portal/requests#request-*")
            request_id = library.url.rsplit("#request-", 1)[1]
            assert library.locator(f"#request-{request_id}").get_attribute("data-state") == "pending"
            assert "已提交" in library.locator('p.message[role="status"]').inner_text()

            staff = browser.new_context(locale="en").new_page()
            keyboard_log_in(staff, url, "carol", "/staff/requests")
            tab_to(staff, f'#request-{request_id} input[name="why"]')
            staff.keyboard.type("Cancelled 2016; approved from the keyboard")
            tab_to(staff, f"#request-{request_id} button.approve")
            staff.keyboard.press("Enter")
            staff.wait_for_url(url + "/staff/requests")
            assert f"Request {request_id} approved" in staff.locator('p.message[role="status"]').inner_text()
        finally:
            browser.close()
    assert get_request(world.repo, int(request_id))["state"] == "approved"


def test_the_tab_check_names_a_control_the_keyboard_cannot_reach():
    need_browser()
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.set_content('<form><input name="a"><input name="b" tabindex="-1"><button>Go</button>'
                             '<input type="hidden" name="c"><details><summary>more</summary><input name="d">'
                             '</details></form>')
            missing = unreachable_controls(page)
        finally:
            browser.close()
    assert len(missing) == 1 and 'name="b"' in missing[0]  # hidden and folded-away fields are not asked for
