"""The staff dashboard page (/staff/dashboard): staff only, strict parameters, SVG charts and tables that agree
with preservation.dashboard, and a CSP that still allows no inline script or style."""

from __future__ import annotations

import re

import pytest
from lxml import html as lxml_html

from preservation import dashboard
from preservation.audit import audit

from .conftest import login


@pytest.fixture
def audited(world):
    audit(world.repo)
    dashboard.take_sample(world.repo)
    return world


def test_readers_are_refused_and_strangers_sent_to_log_in(audited, client):
    anonymous = client.get("/staff/dashboard")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    login(client, "alice")
    refused = client.get("/staff/dashboard")
    assert refused.status_code == 403
    assert "<svg" not in refused.text


def test_the_page_draws_what_the_catalog_says(audited, client):
    login(client, "carol")
    page = client.get("/staff/dashboard?days=7")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src" not in csp  # default-src 'none': no script at all
    doc = lxml_html.fromstring(page.text)
    assert not doc.xpath("//script") and not doc.xpath("//*[@style]")
    board = dashboard.dashboard(audited.repo, 7)
    today = board.days[-1].isoformat()
    assert board.nodes, "the world has nodes"
    for k, node in enumerate(board.nodes):
        svg = doc.get_element_by_id(f"verified-{k}-svg")
        assert svg.get("role") == "img"
        assert node.name in svg.findtext("title") and svg.findtext("desc")
        [bar] = svg.xpath(f'.//rect[@data-day="{today}"]')
        assert int(bar.get("data-value")) == node.bytes_verified[-1] > 0
        assert int(svg.xpath('.//line[@class="limit"]')[0].get("data-value")) == node.read_budget
        cell = doc.xpath(f'//table[@data-chart="verified-{k}"]//tr[@data-day="{today}"]/td')[0]
        assert int(cell.get("data-value")) == node.bytes_verified[-1]
        point = doc.xpath(f'//svg[@id="coverage-svg"]//circle[@data-series="{node.name}"][@data-day="{today}"]')[0]
        assert float(point.get("data-value")) == round(node.coverage[-1], 4)
        queued = doc.get_element_by_id(f"queue-{k}-svg")
        assert node.name in queued.findtext("title")
        [waiting] = queued.xpath(f'.//circle[@data-series="waiting or running"][@data-day="{today}"]')
        assert int(waiting.get("data-value")) == node.queue_depth[-1] is not None
    unbound = doc.xpath(f'//svg[@id="queue-unbound-svg"]//circle[@data-series="dead"][@data-day="{today}"]')
    assert [int(p.get("data-value")) for p in unbound] == [board.unbound_dead_jobs[-1]]
    assert doc.get_element_by_id("queue-depth-by-node").text == "Queue depth per node"
    rows = doc.xpath('//table[@data-chart="queue"]//tbody/tr')
    assert len(rows) == 7
    newest = [td.get("data-value") for td in rows[-1].xpath("td")]
    assert newest == [str(board.queue_depth[-1]), str(board.dead_jobs[-1])]
    assert [td.get("data-value") for td in rows[0].xpath("td")] == ["", ""]  # no sample that day: no number invented


@pytest.mark.parametrize("days", ["8", "abc", "３０", "+30", "30.0", "", "-7"])
def test_a_period_not_offered_is_a_422_page(client, days):
    login(client, "carol")
    page = client.get("/staff/dashboard", params={"days": days})
    assert page.status_code == 422
    assert "<svg" not in page.text


def test_node_names_are_escaped_in_the_svg(audited, client):
    with audited.repo.catalog.engine.begin() as conn:
        from sqlalchemy import text
        name = conn.execute(text("SELECT name FROM nodes ORDER BY name LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE nodes SET name = :n WHERE name = :o"), {"n": "<b>x</b>&", "o": name})
    login(client, "carol")
    page = client.get("/staff/dashboard")
    assert page.status_code == 200
    assert "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;&amp;" in page.text
    assert re.search(r'data-series="&lt;b&gt;x&lt;/b&gt;&amp;"', page.text)
