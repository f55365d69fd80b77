"""A package in the portal as a reader uses it: folders, pages, file name search, tag files for staff only,
digests on demand, and files that open in the browser (sandboxed) or download.

Every parameter of the page is hostile: each bad value has its test here, and each is a coded 400 (E112).
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from .conftest import login, make_client
from .content_world import BULK, ISSUE, PDF, content, content_files, content_template  # noqa: F401

SPECIAL = "特殊 & #1+2 50%"  # no "%XX" in it: Starlette's test client decodes a URL's path twice
TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt")


class _Text(HTMLParser):
    """The text a reader sees (no attributes, no markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def seen(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def entries(html: str) -> list[str]:
    """data-path of every folder and file of the listing, in page order (a file that opens has two links)."""
    body = html[html.index('id="entries"'):html.index("</table>", html.index('id="entries"'))]
    found = re.findall(r'class="(?:folder-link|file-open|file-link)" data-path="([^"]*)"', body)
    return [unescape(path) for path in dict.fromkeys(found)]


@pytest.fixture
def reader(content):
    with make_client(content) as c:
        assert login(c, "alice").status_code == 303
        yield c


@pytest.fixture
def staff(content):
    with make_client(content) as c:
        assert login(c, "carol").status_code == 303
        yield c


def page_of(content, **params) -> str:
    url = f"/portal/packages/{content.packages['content']}"
    return url + ("?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items()) if params else "")


def test_the_top_lists_folders_without_data_or_tag_files(reader, content):
    r = reader.get(page_of(content))
    assert r.status_code == 200
    assert entries(r.text) == ["bulk", "hostile", "names", "期刊", SPECIAL]
    text = seen(r.text)
    assert "data/" not in text
    for name in TAG_FILES:
        assert name not in r.text
    assert 'id="show-tag-files"' not in r.text and 'id="bag-tag-files"' not in r.text
    assert "期刊/" in text and "7 files" in text  # the folder's count: everything under it


def test_folders_open_by_their_chinese_path(reader, content):
    for depth, folder in enumerate(("期刊", "期刊/物理学报", "期刊/物理学报/2019"), start=1):
        r = reader.get(page_of(content, path=folder))
        assert r.status_code == 200
        assert len(entries(r.text)) == 1 and entries(r.text)[0].count("/") == depth
    r = reader.get(page_of(content, path=ISSUE))
    assert r.status_code == 200
    listed = entries(r.text)
    assert f"data/{PDF}" in listed and f"data/{ISSUE}/说明.txt" in listed
    crumbs = re.findall(r'class="crumb"[^>]*data-path="([^"]*)"', r.text)
    assert crumbs == ["", "期刊", "期刊/物理学报", "期刊/物理学报/2019", ISSUE]
    assert "文章-001.pdf" in seen(r.text) and "data/" not in seen(r.text)


def test_a_folder_link_carries_any_name_through_its_url(reader, content):
    top = reader.get(page_of(content)).text
    href = unescape(re.search(r'<a href="([^"]+)" class="folder-link" data-path="特殊', top).group(1))
    assert "&" not in href.split("?", 1)[1] and "#" not in href and "+" not in href
    inside = reader.get(href)
    assert inside.status_code == 200 and entries(inside.text) == [f"data/{SPECIAL}/文件?.txt"]
    crumb = re.findall(r'class="crumb" aria-current="page" data-path="([^"]*)"', inside.text)
    assert [unescape(c) for c in crumb] == [SPECIAL]
    download = re.search(r'<a href="([^"]+)" class="file-(?:open|link)"', inside.text).group(1)
    got = reader.get(unescape(download))
    assert got.status_code == 200 and got.content == b"h\n"


def test_a_big_folder_comes_a_page_at_a_time(reader, content):
    first = reader.get(page_of(content, path="bulk"))
    assert entries(first.text) == [f"data/bulk/file-{n:03d}.dat" for n in range(100)]
    assert "Page 1 of 3" in seen(first.text) and 'id="next-page"' in first.text and 'id="previous-page"' not in first.text
    last = reader.get(page_of(content, path="bulk", page=3))
    assert entries(last.text) == [f"data/bulk/file-{n:03d}.dat" for n in range(200, BULK)]
    assert 'id="next-page"' not in last.text and 'id="previous-page"' in last.text
    assert "250 files" in seen(first.text)


@pytest.mark.parametrize("value", ["0", "-1", "+2", "1.0", "1e2", " 2", "２", "x", "1" * 30, "4", "1000001"])
def test_a_bad_page_number_is_a_coded_400(reader, content, value):
    r = reader.get(page_of(content, path="bulk", page=value))
    assert r.status_code == 400 and "E112" in r.text


@pytest.mark.parametrize("value", [
    "..", "../bulk", "期刊/../bulk", "期刊/./物理学报", "/bulk", "//bulk", "bulk/", "期刊//物理学报", "bulk\\x",
    "C:\\Windows", "a" * 1001, "bulk\u2028x", "bulk\x85x", "\u202ebulk",
])
def test_a_bad_folder_path_is_a_coded_400(reader, content, value):
    r = reader.get(page_of(content, path=value))
    assert r.status_code == 400 and "E112" in r.text


@pytest.mark.parametrize("raw", ["path=bulk%00", "path=%00", "q=a%00b", "q=%0d%0a"])
def test_control_characters_in_the_query_are_refused(reader, content, raw):
    r = reader.get(f"{page_of(content)}?{raw}")
    assert r.status_code == 400 and "E112" in r.text


@pytest.mark.parametrize("value", ["nothere", "bulk/file-000.dat", "BULK", "期刊/物理学报/2020", "%2E%2E", "data"])
def test_a_folder_the_catalog_does_not_list_is_not_found(reader, content, value):
    r = reader.get(page_of(content, path=value))
    assert r.status_code == 404 and "E110" in r.text


def test_bad_search_text_and_flags_are_coded_400s(reader, content):
    assert reader.get(page_of(content, q="x" * 201)).status_code == 400
    assert reader.get(page_of(content, q="\u202etxt")).status_code == 400  # a bidirectional override
    for flag in ("yes", "2", "true", "1 "):
        r = reader.get(page_of(content, tags=flag))
        assert r.status_code == 400 and "E112" in r.text


@pytest.mark.parametrize("query, found", [
    ("ärger", ["names/Ärger.txt", "names/ärger-2.txt"]),
    ("ÄRGER", ["names/Ärger.txt", "names/ärger-2.txt"]),
    ("A\u0308rger", ["names/Ärger.txt", "names/ärger-2.txt"]),  # decomposed: the same name in NFC
    ("σίσυφος", ["names/ΣΊΣΥΦΟΣ.txt"]),  # final sigma folds like the capital
    ("说明", [f"{ISSUE}/说明.txt"]),
    ("物理", []),  # a folder's name, not a file's
    ("%", ["names/50%_off.txt"]),  # no SQL wildcard: a percent sign is a percent sign
    ("_", ["names/50%_off.txt", "names/a_b.txt"]),
    ("<img", ["names/<img src=x onerror=alert(1)>.txt"]),
    ("file-2", [f"bulk/file-{n:03d}.dat" for n in range(200, BULK)]),
])
def test_file_names_are_found_in_any_case(reader, content, query, found):
    r = reader.get(page_of(content, q=query))
    assert r.status_code == 200
    assert entries(r.text) == [f"data/{path}" for path in found]
    assert f": {len(found)}" in seen(r.text)


def test_a_search_stays_in_its_folder_and_pages(reader, content):
    assert entries(reader.get(page_of(content, path="hostile", q="txt")).text) == ["data/hostile/notes.txt"]
    r = reader.get(page_of(content, path="bulk", q="file", page=2))
    assert entries(r.text) == [f"data/bulk/file-{n:03d}.dat" for n in range(100, 200)]
    assert reader.get(page_of(content, path="bulk", q="file", page=4)).status_code == 400
    shown = seen(r.text)
    assert "bulk/file-150.dat" in shown and "data/" not in shown  # results show their folder


def test_hostile_search_text_and_names_are_escaped(reader, content):
    r = reader.get(page_of(content, q="<script>alert(1)</script>"))
    assert r.status_code == 200 and "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)" in r.text
    names = reader.get(page_of(content, path="names")).text
    assert "<img src=x" not in names and "&lt;img src=x onerror=alert(1)&gt;.txt" in names


def test_staff_show_and_hide_the_tag_files(staff, content):
    top = staff.get(page_of(content))
    assert 'id="show-tag-files"' in top.text and 'id="tag-files"' not in top.text
    shown = staff.get(page_of(content, tags=1))
    listed = re.findall(r'<tr class="tag-file"><td class="code">(?:<a [^>]*>)?([^<]+)<', shown.text)
    assert set(TAG_FILES) <= set(listed) and not any(p.startswith("data/") for p in listed)
    assert 'id="hide-tag-files"' in shown.text
    inner = staff.get(page_of(content, path="bulk", tags=1))  # folder links keep the choice
    assert 'href="/portal/packages/' in inner.text and "tags=1" in inner.text


def test_a_library_asking_for_tag_files_gets_none(reader, content):
    r = reader.get(page_of(content, tags=1))
    assert r.status_code == 200
    for name in TAG_FILES:
        assert name not in r.text


def test_digests_are_shown_on_demand_with_their_algorithm_named(reader, content):
    r = reader.get(page_of(content, path="names"))
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", r.text)
    assert not any("sha" in h.lower() for h in headers)
    disclosures = re.findall(r"<details[^>]*><summary>([^<]+)</summary><span class=\"digest\">([^<]+)<code>([0-9a-f]{64})"
                             r"</code>", r.text)
    assert len(disclosures) == 7
    assert all(summary == "Show digest" and "SHA-256" in named for summary, named, _ in disclosures)


def test_the_page_speaks_chinese(content):
    with make_client(content) as c:
        c.cookies.set("preserve_lang", "zh_Hans_CN")
        login(c, "alice")
        r = c.get(page_of(content, path="bulk"))
    assert r.status_code == 200
    assert "显示校验值" in r.text and "第 1 页，共 3 页" in r.text and "按文件名查找" in r.text
    assert "Find files by name" not in r.text and "Page 1 of 3" not in r.text


INLINE = [(PDF, "application/pdf"), (f"{ISSUE}/图1.png", "image/png"), (f"{ISSUE}/photo.JPG", "image/jpeg"),
          (f"{ISSUE}/anim.gif", "image/gif"), (f"{ISSUE}/pic.webp", "image/webp"),
          (f"{ISSUE}/说明.txt", "text/plain"), (f"{ISSUE}/目录-GB18030.txt", "text/plain")]
ATTACHED = ["hostile/page.html", "hostile/drawing.svg", "hostile/report.pdf", "hostile/notes.txt", "hostile/data.xml",
            "bulk/file-007.dat"]


def file_url(content, path: str) -> str:
    return f"/portal/packages/{content.packages['content']}/files/{quote('data/' + path)}"


@pytest.mark.parametrize("path, media", INLINE)
def test_pdfs_images_and_text_open_in_the_browser_sandboxed(reader, content, path, media):
    r = reader.get(file_url(content, path))
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == media
    assert r.headers["content-disposition"].startswith("inline;")
    csp = [part.strip() for part in r.headers["content-security-policy"].split(";")]
    assert "sandbox" in csp and "default-src 'none'" in csp and not any("allow-" in part for part in csp)
    assert r.headers["x-content-type-options"] == "nosniff"


def test_plain_text_names_utf_8_only_when_its_bytes_are(reader, content):
    assert reader.get(file_url(content, f"{ISSUE}/说明.txt")).headers["content-type"] == "text/plain; charset=utf-8"
    assert reader.get(file_url(content, f"{ISSUE}/目录-GB18030.txt")).headers["content-type"] == "text/plain"


@pytest.mark.parametrize("path", ATTACHED)
def test_html_svg_xml_and_unknown_files_download(reader, content, path):
    r = reader.get(file_url(content, path))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_listing_offers_open_only_for_what_opens(reader, content):
    issue = reader.get(page_of(content, path=ISSUE)).text
    opened = set(re.findall(r'class="file-open" data-path="data/([^"]+)"', issue))
    assert opened == {path for path, _ in INLINE}
    hostile = reader.get(page_of(content, path="hostile")).text
    assert 'class="file-open"' not in hostile and hostile.count('class="file-link"') == 5


def test_the_api_still_sends_attachments(content):
    with make_client(content) as c:
        r = c.get(f"/api/v1/packages/{content.packages['content']}/files/{quote('data/' + PDF)}",
                  headers=content.auth("alice"))
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-type"] == "application/octet-stream"


def test_a_range_of_an_inline_file_keeps_its_headers(reader, content):
    r = reader.get(file_url(content, PDF), headers={"Range": "bytes=0-7"})
    assert r.status_code == 206 and r.content == content_files()[PDF][:8]
    assert r.headers["content-disposition"].startswith("inline;")
    assert r.headers["content-type"] == "application/pdf"
