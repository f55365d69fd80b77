"""The portal in librarians' terms (issue 21): names instead of ids, a request list with dates, who asked, why
and status, a confirmation after every action, and the service's own messages in the reader's language."""

from __future__ import annotations

import contextlib
import re

import pytest
from sqlalchemy import select

from preservation.access.web import flash
from preservation.catalog.access_models import AccessGrant

from .conftest import csrf_of, login, make_client

ZH = {"accept-language": "zh-CN,zh;q=0.9"}
EN = {"accept-language": "en"}
REASON = "Subscription cancelled in 2016; a reader needs the 2019 issues"


def ask(client, **fields) -> int:
    r = client.post("/portal/requests", data={"csrf": csrf_of(client.get("/portal").text), "reason": REASON,
                                              **fields})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("-", 1)[1])


@contextlib.contextmanager
def alice_asked(world, **fields):
    """alice's logged-in client once she asked for the 2019 package of pca-j (or ``fields``): (client, request id)."""
    with make_client(world) as library:
        login(library, "alice")
        yield library, ask(library, **(fields or {"package_id": world.packages["pca_2019"]}))


def decide(staff, rid: int, decision: str, why: str, headers=EN):
    token = csrf_of(staff.get("/staff/requests", headers=headers).text)
    return staff.post(f"/staff/requests/{rid}/decide", data={"csrf": token, "decision": decision, "why": why},
                      headers=headers)


def status_line(html: str) -> str | None:
    found = re.search(r'<p class="message" role="status">(.*?)</p>', html, re.S)
    return found.group(1) if found else None


def test_a_request_is_confirmed_once_on_the_page_the_library_lands_on(world):
    with alice_asked(world) as (library, rid):
        landed = library.get("/portal/requests", headers=ZH).text
        assert status_line(landed) == f"您的申请 {rid} 已提交，将由工作人员审批；其状态见下方。"
        assert status_line(library.get("/portal/requests", headers=ZH).text) is None  # shown once


def test_the_request_list_names_what_was_asked_who_asked_when_why_and_its_status(world):
    pid = world.packages["pca_2019"]
    with alice_asked(world) as (library, rid):
        page = library.get("/portal/requests", headers=ZH).text
    row = page[page.index(f'id="request-{rid}"'):]
    row = row[:row.index("</tr>")]
    assert "pca-j-2019" in row and "Post-cancellation journals" in row  # names, not the package's UUID …
    assert row.index("pca-j-2019") < row.index("<details")  # … which waits in the details line
    assert pid in row[row.index("<details"):]
    assert "alice" in row and REASON in row
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} 中国时间 \(Asia/Shanghai\)", row)  # the date, zone named
    assert 'data-state="pending">待工作人员审批<' in row
    # the access policy's reason in the reader's language, with its numbers (a coded reason, issue 21)
    assert ('<span class="why" data-reason="year-outside-entitlement">数据包的年份 2019 不在已付费年份 2010-2015 之内：'
            '由工作人员决定</span>') in row
    assert "时间均为 中国时间 (Asia/Shanghai)。" in page


def test_staff_see_names_the_policy_explained_and_a_confirmation_after_approving(world):
    pid = world.packages["pca_2019"]
    with alice_asked(world) as (library, rid), make_client(world) as staff:
        login(staff, "carol")
        pending = staff.get("/staff/requests", headers=EN).text
        assert "Policy said" not in pending and ">pca<" not in pending
        assert "The access policy found" in pending and "Post-cancellation access" in pending
        assert "Peking University Library" in pending and "asked by alice" in pending
        r = decide(staff, rid, "approve", "cancelled 2016")
        assert r.status_code == 303 and r.headers["location"] == "/staff/requests"
        landed = staff.get(r.headers["location"], headers=EN).text
        assert status_line(landed) == f"Request {rid} approved: the library can now open what it asked for."
        grants = library.get("/portal/requests", headers=EN).text
    mine = grants[grants.index('id="grants"'):]
    assert "pca-j-2019" in mine and 'class="grant-covers">the whole package<' in mine
    assert mine.index("pca-j-2019") < mine.index(pid)  # the id only after the name, in the muted details


def test_denying_is_confirmed_in_the_staff_members_language(world):
    with alice_asked(world, collection="journals") as (library, rid), make_client(world) as staff:
        login(staff, "carol")
        r = decide(staff, rid, "deny", "no trigger event yet", headers=ZH)
        landed = staff.get("/staff/requests", headers=ZH).text
    assert status_line(landed) == f"申请 {rid} 已拒绝：该图书馆可以看到您的理由。"


def test_staff_revoke_a_grant_from_the_approved_list_and_are_told(world):
    pid = world.packages["pca_2019"]
    with alice_asked(world) as (library, rid), make_client(world) as staff:
        login(staff, "carol")
        decide(staff, rid, "approve", "cancelled 2016")
        approved = staff.get("/staff/requests?state=approved", headers=EN).text
        [grant_id] = [int(g) for g in re.findall(r'action="/staff/grants/(\d+)/revoke"', approved)]
        r = staff.post(f"/staff/grants/{grant_id}/revoke", data={"csrf": csrf_of(approved), "why": "sent in error"})
        assert r.status_code == 303 and r.headers["location"] == "/staff/requests?state=approved"
        landed = staff.get(r.headers["location"], headers=EN).text
        assert status_line(landed) == f"Grant {grant_id} revoked: the library can no longer open it."
        assert f'action="/staff/grants/{grant_id}/revoke"' not in landed and ">revoked<" in landed
        assert library.get(f"/portal/packages/{pid}").status_code == 403
    with world.repo.catalog.session() as s:
        assert s.scalars(select(AccessGrant.revoked_by).where(AccessGrant.id == grant_id)).one() == "user:carol"


@pytest.mark.parametrize("why", ["", "  ", "bad\x00text"])
def test_a_revoke_without_a_usable_reason_is_refused_and_changes_nothing(world, why):
    pid = world.packages["pca_2019"]
    with alice_asked(world) as (library, rid), make_client(world) as staff:
        login(staff, "carol")
        decide(staff, rid, "approve", "cancelled 2016")
        approved = staff.get("/staff/requests?state=approved").text
        [grant_id] = re.findall(r'action="/staff/grants/(\d+)/revoke"', approved)
        r = staff.post(f"/staff/grants/{grant_id}/revoke", data={"csrf": csrf_of(approved), "why": why},
                       headers=ZH)
        assert r.status_code == 400 and re.search(r'<span class="code">E\d{3}</span>', r.text)
        assert "无法处理此请求" in r.text  # the status explained in the reader's language
        assert library.get(f"/portal/packages/{pid}").status_code == 200


def test_revoking_needs_staff_and_the_forms_token(world):
    with make_client(world) as library:
        login(library, "alice")
        token = csrf_of(library.get("/portal").text)
        assert library.post("/staff/grants/1/revoke", data={"csrf": token, "why": "x"}).status_code == 403
    with make_client(world) as staff:
        login(staff, "carol")
        assert staff.post("/staff/grants/1/revoke", data={"csrf": "forged", "why": "x"}).status_code == 403
        token = csrf_of(staff.get("/portal").text)
        for bad in ("0", "-1", "abc", "99999999999999999999"):
            assert staff.post(f"/staff/grants/{bad}/revoke", data={"csrf": token, "why": "x"}).status_code in (
                404, 422)
        assert staff.post("/staff/grants/424242/revoke", data={"csrf": token, "why": "x"}).status_code == 404


def test_a_confirmation_never_shows_text_from_the_client(world):
    """Only known sentences with whole numbers come back: a forged or stale session value is dropped."""

    class Session(dict):
        pass

    class Request:
        def __init__(self, value):
            self.session = Session({flash.SESSION_KEY: value})

    for value in (["<script>alert(1)</script>", {}], ["approved", {"id": "<b>1</b>"}], ["approved", {"id": True}],
                  ["approved", {}], "approved", ["approved", []], None):
        request = Request(value)
        assert flash.take(request) is None
        assert flash.SESSION_KEY not in request.session  # dropped, not kept for the next page
    with pytest.raises(ValueError):
        flash.confirm(Request(None), "anything a caller invents")


def test_logging_out_is_confirmed_on_the_login_page(world):
    with make_client(world) as client:
        login(client, "alice")
        r = client.post("/logout", data={"csrf": csrf_of(client.get("/portal").text)})
        assert r.status_code == 303
        assert status_line(client.get("/login", headers=ZH).text) == "您已退出登录。"


def test_a_trigger_event_is_confirmed_with_what_it_opened(world):
    with make_client(world) as staff:
        login(staff, "carol")
        page = staff.get("/staff/triggers", headers=ZH).text
        assert "出版商停业" in page and ">publisher_ceased<" not in page  # kinds in words
        r = staff.post("/staff/triggers", data={"csrf": csrf_of(page), "collection": "trig-b",
                                                "kind": "publisher_ceased", "date": "2024-01-02",
                                                "evidence": "The publisher's notice of 2024-01-02"})
        assert r.status_code == 303
        landed = staff.get("/staff/triggers", headers=EN).text
        holdings = staff.get("/portal", headers=ZH).text
    assert "出版商停业 (2024-01-02)" in holdings  # the holdings name the trigger in words too
    assert ">carol<" in landed  # who recorded it, by name
    assert re.search(r"Trigger event \d+ recorded: the collection is now open to every member library "
                     r"\(0 waiting requests approved\)\.", status_line(landed))
    assert "Triggered books" in landed  # the collection's name in the list, its key only beside it


def test_error_pages_explain_the_status_in_the_readers_language(world):
    with make_client(world) as client:
        login(client, "alice")
        missing = client.get("/portal/collections/no-such-thing", headers=ZH)
        english = client.get("/portal/collections/no-such-thing", headers=EN)
    assert missing.status_code == 404 and "未找到：该内容不存在，或您所在的图书馆无权查看。" in missing.text
    assert '<span class="detail" lang="en">' in missing.text  # the service's details stay, marked English
    assert english.status_code == 404 and "Not found: it does not exist, or your library may not see it." in english.text


def test_version_and_dashboard_pages_speak_chinese(world):
    with make_client(world) as staff:
        login(staff, "carol")
        board = staff.get("/staff/dashboard", headers=ZH).text
        version = staff.get(f"/portal/packages/{world.packages['open']}/versions/1", headers=ZH).text
    assert "<h1>运行看板</h1>" in board and "审计覆盖率" in board and "Audit coverage" not in board
    assert "各节点的审计覆盖率" in board  # the charts' own titles too
    assert "<h1>第 1 版：变更内容</h1>" in version and "data/" in version and "what changed" not in version
