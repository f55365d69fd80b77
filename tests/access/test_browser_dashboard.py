"""In a real browser: the staff dashboard after audits, a corruption found and repaired.

Debian's chromium, driven headless by Playwright, against the service on a free 127.0.0.1 port.  The
test saves a screenshot of the page (``dashboard.png`` in ``$PRESERVE_TEST_ARTEFACTS`` when set, else in
the test's temporary directory) and checks that the charts the browser drew carry the catalog's numbers,
are styled by the portal's stylesheet (the CSP allows no inline style) and raise no CSP violation.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from preservation import dashboard, events
from preservation.audit import audit
from preservation.catalog.models import PackageFile, Replica, utcnow
from preservation.repair import repair_replica

from ..corruption import flip_bit
from ..services import service_missing
from .live import running_service
from .test_browser import CHROMIUM, CHROMIUM_ARGS, log_in

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the test itself: skipped locally, a failure on CI
    sync_playwright = None

pytestmark = pytest.mark.browser

DAMAGED_NODE = "cas-nsl"


def _corrupt_and_repair(world) -> None:
    repo = world.repo
    audit(repo)
    package_id = world.packages["dark"]
    with repo.catalog.session() as s:
        path = s.scalar(select(PackageFile.path).where(PackageFile.package_id == package_id,
                                                       PackageFile.is_tag.is_(False)).order_by(PackageFile.path))
    flip_bit(world.home / "nodes" / DAMAGED_NODE / package_id / path, rng=random.Random(5))
    audit(repo, node_name=DAMAGED_NODE)
    with repo.catalog.session() as s:
        [bad] = s.scalars(select(Replica.id).where(Replica.state == "corrupt")).all()
    repair_replica(repo, bad)
    dashboard.take_sample(repo)


def _today_from_events(repo, node: str) -> dict[str, int]:
    zone = ZoneInfo(repo.settings.access_timezone)  # the dashboard's days are that zone's
    today = dashboard.local_day(utcnow(), zone)
    out = {"bytes": 0, "findings": 0, "repaired": 0}
    with repo.catalog.session() as s:
        for ev in events.iter_events(s, node_name=node):
            if dashboard.local_day(ev.occurred_at, zone) != today:
                continue
            if ev.event_type == events.FIXITY_CHECK:
                out["bytes"] += ev.detail.get("bytes_read_on_node", 0)
                if ev.outcome == events.FAILURE:
                    out["findings"] += ev.detail["findings_total"]
            elif ev.event_type == events.REPAIR and ev.outcome == events.SUCCESS:
                out["repaired"] += 1
    return out


def test_dashboard_in_chromium(world, tmp_path):
    if sync_playwright is None:
        service_missing("playwright (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        service_missing(f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    _corrupt_and_repair(world)
    expected = _today_from_events(world.repo, DAMAGED_NODE)
    assert expected["findings"] == 1 and expected["repaired"] == 1 and expected["bytes"] > 0
    board = dashboard.dashboard(world.repo, 30)
    k = [n.name for n in board.nodes].index(DAMAGED_NODE)
    today = board.days[-1].isoformat()
    artefacts = Path(os.environ.get("PRESERVE_TEST_ARTEFACTS") or tmp_path)
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "dashboard.png"
    with running_service(world.repo) as url, sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as e:
            service_missing(f"a working headless chromium ({e})")
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            log_in(page, url, "carol")
            page.click('a[href="/staff/dashboard"]')
            page.wait_for_url(url + "/staff/dashboard")
            page.wait_for_selector("#coverage-svg")
            page.screenshot(path=str(shot), full_page=True)

            def bar(chart: str, series: str) -> int:
                found = page.locator(f'#{chart}-{k}-svg rect.bar[data-day="{today}"][data-series="{series}"]')
                assert found.count() == 1, f"one {series} bar of {today} in {chart}-{k}"
                return int(found.get_attribute("data-value"))

            assert bar("findings", "findings") == expected["findings"]
            assert bar("repairs", "succeeded") == expected["repaired"]
            assert bar("verified", "bytes verified") == expected["bytes"]
            assert page.locator(f"#findings-{k}-svg > title").text_content() == f"Findings per day on {DAMAGED_NODE}"
            # the table alternative says the same once opened
            page.click(f"#chart-repairs-{k} summary")
            cell = page.locator(f'table[data-chart="repairs-{k}"] tr[data-day="{today}"] td[data-series="succeeded"]')
            assert cell.inner_text() == str(expected["repaired"])
            coverage = page.locator(f'#coverage-svg circle[data-series="{DAMAGED_NODE}"][data-day="{today}"]')
            assert float(coverage.get_attribute("data-value")) == 1.0  # repaired: every copy verified again
            # drawn, and coloured by portal.css (no inline style is allowed by the CSP)
            box = page.locator(f"#findings-{k}-svg").bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 50
            fill = page.locator(f'#findings-{k}-svg rect.bar[data-day="{today}"]').evaluate(
                "e => getComputedStyle(e).fill")
            assert fill == "rgb(47, 109, 181)"
            # queue depth per node: the damaged node's chart is drawn with today's sampled depth
            depth = page.locator(f'#queue-{k}-svg circle[data-series="waiting or running"][data-day="{today}"]')
            assert int(depth.get_attribute("data-value")) == board.nodes[k].queue_depth[-1]
            assert page.locator(f"#queue-{k}-svg").bounding_box()["height"] > 50
        finally:
            browser.close()
    assert not [m for m in console if "Content Security Policy" in m], console
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
