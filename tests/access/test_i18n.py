"""The portal in Simplified Chinese and English (issue 21): catalogs, negotiation, the switch, times."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from babel.messages.catalog import Catalog

from devtools import translations
from preservation.access.web import i18n

from .conftest import login, make_client

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_every_portal_message_has_a_chinese_translation_with_the_same_placeholders():
    template = translations.extracted()
    assert len(template) > 80  # the templates really were read
    chinese = translations.load(i18n.CHINESE)
    assert translations.untranslated(template, chinese) == []
    for message in template:
        if message.id:
            assert set(PLACEHOLDER.findall(chinese.get(message.id).string)) == set(PLACEHOLDER.findall(message.id))


def test_a_new_template_string_without_a_translation_is_named():
    template = translations.extracted()
    template.add("A label nobody translated")
    assert translations.untranslated(template, translations.load(i18n.CHINESE)) == ["A label nobody translated"]
    fuzzy = Catalog(locale=i18n.CHINESE)
    fuzzy.add("Search", "检索", flags=["fuzzy"])
    one = Catalog()
    one.add("Search")
    assert translations.untranslated(one, fuzzy) == ["Search"]  # a fuzzy guess is not a translation


@pytest.mark.parametrize(("cookie", "header", "language"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", i18n.CHINESE),
    (None, "en-US,en;q=0.9,zh-CN;q=0.8", i18n.ENGLISH),
    (None, "en;q=0.3, zh-TW;q=0.7", i18n.CHINESE),  # q-values decide, not the order
    (None, "zh-Hant-HK", i18n.CHINESE),
    (None, "fr-FR, de;q=0.9", i18n.ENGLISH),
    (None, None, i18n.ENGLISH),
    (None, "", i18n.ENGLISH),
    (None, "zh;q=abc, en;q=2, en-GB;q=0", i18n.ENGLISH),  # bad and out-of-range q-values are skipped
    (None, "<script>, \x00zh, " + "x," * 5000 + "zh", i18n.ENGLISH),  # hostile: bounded, never an error
    ("en", "zh-CN", i18n.ENGLISH),  # the remembered switch wins
    ("zh_Hans_CN", "en", i18n.CHINESE),
    ("../../etc", "zh-CN", i18n.CHINESE),  # an unknown cookie is ignored
])
def test_the_language_comes_from_the_switch_then_accept_language(cookie, header, language):
    assert i18n.negotiate(cookie, header) == language


def test_times_are_shown_in_the_readers_zone_with_the_zone_named():
    late = datetime(2026, 3, 1, 23, 42)  # naive UTC, as the catalog keeps it
    with i18n.use(i18n.CHINESE):
        assert i18n.format_when(late) == "2026-03-02 07:42 中国时间 (Asia/Shanghai)"
        assert i18n.format_number(1234567) == "1,234,567"
    with i18n.use(i18n.ENGLISH, "Europe/Berlin"):
        assert i18n.format_when(late) == "2026-03-02 00:42 Central European Time (Europe/Berlin)"
    with i18n.use(i18n.ENGLISH, "Not/AZone"):
        assert i18n.current_timezone() == i18n.DEFAULT_TIMEZONE


def test_pages_speak_the_language_the_browser_asks_for(world):
    with make_client(world) as client:
        chinese = client.get("/login", headers={"accept-language": "zh-CN,zh;q=0.9"})
        english = client.get("/login", headers={"accept-language": "en-GB"})
    assert '<html lang="zh-CN">' in chinese.text and "<h1>登录</h1>" in chinese.text and "Log in" not in chinese.text
    assert '<html lang="en">' in english.text and "<h1>Log in</h1>" in english.text and "登录" not in english.text


def test_the_switch_is_remembered_and_goes_back_to_the_same_page(world):
    with make_client(world) as client:
        assert login(client, "alice").status_code == 303
        switched = client.get("/language/zh_Hans_CN", params={"next": "/portal/search?q=x"},
                              headers={"accept-language": "en"})
        assert switched.status_code == 303 and switched.headers["location"] == "/portal/search?q=x"
        assert "preserve_lang=zh_Hans_CN" in switched.headers["set-cookie"]
        page = client.get("/portal", headers={"accept-language": "en"})
        assert '<html lang="zh-CN">' in page.text and "馆藏" in page.text
        assert 'data-language="en"' in page.text  # the way back to English is on the page


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", None])
def test_the_switch_never_sends_the_reader_off_site(world, target):
    with make_client(world) as client:
        response = client.get("/language/en", params={"next": target} if target else {})
    assert response.status_code == 303 and response.headers["location"] == "/portal"


def test_an_unknown_language_is_refused_with_a_code_and_sets_nothing(world):
    with make_client(world) as client:
        response = client.get("/language/klingon", headers={"accept-language": "en"})
    assert response.status_code == 400 and re.search(r'<span class="code">E\d{3}</span>', response.text)
    assert i18n.COOKIE not in response.headers.get("set-cookie", "")


def test_access_modes_are_explained_in_plain_words(world):
    with make_client(world) as client:
        login(client, "alice")
        page = client.get("/portal", headers={"accept-language": "zh-CN"}).text
    assert 'data-mode="pca"' in page and ">停订后访问</span>" in page
    assert "停订后，仍可阅读其已付费年份的内容" in page  # the explanation rides along as the title
    assert ">pca<" not in page


def test_the_browser_check_catches_an_english_label_on_a_chinese_page():
    from .browser_checks import untranslated_labels

    texts = ["批准", "Approve", "Your request 12 was sent. Staff will decide; its state is below.",
             "Post-cancellation journals", "alice", "Open data"]
    assert sorted(msgid for msgid, _ in untranslated_labels(texts)) == [
        "Approve", "Your request %(id)s was sent. Staff will decide; its state is below."]
