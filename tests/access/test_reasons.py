"""The access service's reasons as codes (issue 21): Chinese on Chinese pages, English for the API and CLI.

The policy's and read rights' reasons carry a code and parameters (preservation.access.reasons); the portal
says them in the reader's language, the API keeps the English text and adds the code; a request decided
before codes existed shows its stored English, marked ``lang="en"``.  Error pages say what their code
means; the dashboard chart's "above the scale" note is translated too.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import update

from preservation.access import reasons
from preservation.access.reasons import TEMPLATES, Reason
from preservation.access.web import error_words, i18n, reason_words
from preservation.access.web.charts import Series, bar_chart
from preservation.catalog.access_models import AccessRequest
from preservation.errors import all_error_classes

from .conftest import make_client
from .test_portal_words import EN, ZH, alice_asked

OUTSIDE_EN = "the package's year 2019 is outside the entitled years 2010-2015: staff decide"
OUTSIDE_ZH = "数据包的年份 2019 不在已付费年份 2010-2015 之内：由工作人员决定"


def _sample(code: str) -> Reason:
    names = re.findall(r"%\((\w+)\)s", TEMPLATES[code])
    return Reason(code, **{name: f"<{name}&>" for name in names})


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_every_reason_is_said_in_chinese_and_round_trips_through_the_catalog(code):
    reason = _sample(code)
    assert reasons.from_dict(json.loads(json.dumps(reason.to_dict()))) == reason
    with i18n.use(i18n.CHINESE):
        said = reason_words.translate(reason)
    assert said != str(reason)  # the catalog has it
    assert all(f"<{name}&>" in said for name in reason.params)  # every parameter kept
    with i18n.use(i18n.ENGLISH):
        assert reason_words.translate(reason) == str(reason)  # English pages say the registry's words


def test_nested_reasons_are_said_whole_and_parameters_are_escaped():
    span = Reason("span-dates-volumes", dates=Reason("span-dates", first="2015-01", last=Reason("span-now")),
                  volumes=Reason("span-volumes", first="<b>3", last="5"))
    reason = Reason("pca-title-entitlements", spans=[span, Reason("span-whole-title")])
    assert reason == ("post-cancellation access to title entitlements: 2015-01 to now, volumes <b>3-5, "
                      "the whole title")
    with i18n.use(i18n.CHINESE):
        html = str(reason_words.say(reason))
    assert html == ('<span class="why" data-reason="pca-title-entitlements">停订后访问：刊物权益 2015-01 至 今，'
                    '第 &lt;b&gt;3–5 卷、整个刊物</span>')
    assert str(reason_words.say("a <staff> note")) == '<span class="why" lang="en">a &lt;staff&gt; note</span>'


@pytest.mark.parametrize("stored", [
    None, {}, {"code": "no-such-code", "params": {}}, {"code": "dark", "params": {"extra": 1}},
    {"code": "year-outside-entitlement", "params": {"year": 2019}}, {"code": "dark"}, ["dark"],
    {"code": "year-outside-entitlement", "params": {"year": 2018, "years": "2010-2015"}},  # not its text
    {"code": "year-outside-entitlement", "params": {"year": {"nested": 1}, "years": "2010-2015"}},
    {"code": "year-outside-entitlement", "params": {"year": 1.5, "years": "2010-2015"}},
])
def test_a_stored_code_that_does_not_make_the_stored_text_leaves_the_text_as_it_is(stored):
    restored = reasons.restore(OUTSIDE_EN, stored)
    assert restored == OUTSIDE_EN and not isinstance(restored, Reason)


def test_the_policy_reason_is_chinese_on_a_chinese_page_and_english_with_its_code_in_the_api(world):
    with alice_asked(world) as (library, rid):
        zh = library.get("/portal/requests", headers=ZH).text
        en = library.get("/portal/requests", headers=EN).text
        api = library.get(f"/api/v1/requests/{rid}", headers=world.auth("alice"))
    assert f'<span class="why" data-reason="year-outside-entitlement">{OUTSIDE_ZH}</span>' in zh
    assert OUTSIDE_EN not in zh
    assert f'<span class="why" data-reason="year-outside-entitlement">{OUTSIDE_EN}</span>'.replace(
        "'", "&#39;") in en
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["why"] == OUTSIDE_EN  # the API's English, unchanged
    assert body["why_code"] == "year-outside-entitlement"
    assert body["why_params"] == {"year": 2019, "years": "2010-2015"}


def test_a_request_decided_before_reasons_had_codes_shows_its_english_marked_so(world):
    with alice_asked(world) as (library, rid):
        with world.repo.catalog.session() as s:
            s.execute(update(AccessRequest).where(AccessRequest.id == rid).values(decision_coded=None))
        zh = library.get("/portal/requests", headers=ZH).text
        api = library.get(f"/api/v1/requests/{rid}", headers=world.auth("alice")).json()
    assert f'<span class="why" lang="en">{OUTSIDE_EN}</span>'.replace("'", "&#39;") in zh
    assert api["why"] == OUTSIDE_EN and api["why_code"] is None and api["why_params"] is None


def test_a_staff_decision_keeps_the_staff_members_words_without_a_code(world):
    from preservation.access.requests import decide_request

    with alice_asked(world) as (library, rid):
        decided = decide_request(world.repo, rid, approve=False, by="carol", why="year-outside-entitlement")
        assert decided["why"] == "year-outside-entitlement" and decided["why_code"] is None
        zh = library.get("/portal/requests", headers=ZH).text
    assert 'data-reason=' not in zh


def test_the_error_page_says_what_its_code_means_in_chinese_with_the_english_details_below(world):
    with make_client(world) as library:
        from .conftest import login

        login(library, "alice")
        r = library.get("/portal/packages/00000000-0000-0000-0000-000000000000", headers=ZH)
    assert r.status_code == 404
    assert ('<span class="code">E110</span> <span class="meaning">不存在此名称或编号的内容，或您的图书馆无权查看。'
            '</span><br><span class="detail" lang="en">') in r.text


def test_error_meanings_name_real_codes_and_are_translated():
    codes = {cls.code for cls in all_error_classes()}
    assert set(error_words.MEANINGS) <= codes
    for code in error_words.MEANINGS:
        with i18n.use(i18n.ENGLISH):
            english = error_words.meaning(code)
        with i18n.use(i18n.CHINESE):
            assert error_words.meaning(code) != english, code
    assert error_words.meaning("E999") is None


def test_a_budget_above_the_scale_is_named_so_in_the_readers_language():
    days = [date(2026, 12, 1), date(2026, 12, 2)]
    for language, note in ((i18n.CHINESE, "budget 1000（超出刻度范围）"), (i18n.ENGLISH, "budget 1000 (above the scale)")):
        with i18n.use(language):
            chart = bar_chart("c", "t", "d", days, [Series("reads", [1, 2])], str, limit=1000, limit_name="budget")
        assert note in str(chart.svg)
