"""E-mail notifications through a real SMTP server: staff on a new request, the library on a decision and on a
grant about to expire (once, also across a restart), in the library's language and zone; hostile text never
shapes a header."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from preservation.access import accounts, notifications
from preservation.access.requests import decide_request, request_access
from preservation.catalog.access_models import AccessGrant, Notification
from preservation.catalog.models import utcnow
from preservation.repository import Repository

from .mailing import PORTAL, STAFF_DESK, mailing, to
from .test_rights import who

HOSTILE = "we need it\r\nBcc: thief@evil.example\r\nSubject: free\n\x85red\u202e\u2028"


def _ask(world) -> int:
    return request_access(world.repo, who(world, "alice"), reason="teaching", package_id=world.packages["dark"])["id"]


def _sent(world) -> int:
    return notifications.tick(world.repo)["sent"]


def test_staff_are_told_of_a_new_request_and_hostile_text_shapes_no_header(world):
    accounts.add_library(world.repo, "evil", "Evil Library\r\nBcc: thief@evil.example")
    accounts.add_user(world.repo, "evil", "mallory", "a long enough password")
    with mailing(world) as mailbox:
        principal = accounts.authenticate_password(world.repo, "mallory", "a long enough password", "10.0.0.1")
        request_access(world.repo, principal, reason=HOSTILE, package_id=world.packages["dark"])
        assert _sent(world) == 1
        assert _sent(world) == 0  # told once
        [message] = to(mailbox, STAFF_DESK)
        assert mailbox.envelopes == [("preserve@consortium.example", [STAFF_DESK])]  # no Bcc smuggled in
        assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
        assert message["Bcc"] is None and message.get_all("Subject") == [message["Subject"]]
        assert message.get_content_type() == "text/plain"
        body = message.get_content()
        assert "\x85" not in body and "\\x85red" in body and "\\u202e" in body and "\u2028" not in body
        assert "journals-delivery" in body and f"{PORTAL}/staff/requests" in body
        assert "申请" in str(message["Subject"])  # staff mails are Chinese unless staff_language: en


def test_the_library_is_told_of_a_decision_in_its_language_and_zone(world):
    accounts.edit_library(world.repo, "pku", contact_email="access@pku.example.org")
    accounts.edit_library(world.repo, "thu", contact_email="access@thu.example.org", language="en",
                          timezone="Europe/Berlin")
    with mailing(world) as mailbox:
        ids = {user: request_access(world.repo, who(world, user), reason="teaching",
                                    package_id=world.packages["dark"])["id"] for user in ("alice", "bob")}
        decide_request(world.repo, ids["alice"], approve=True, by="carol", why="trigger confirmed")
        decide_request(world.repo, ids["bob"], approve=False, by="carol", why="not entitled")
        notifications.tick(world.repo)
        [pku] = to(mailbox, "access@pku.example.org")
        [thu] = to(mailbox, "access@thu.example.org")
        assert str(pku["Subject"]).startswith("访问已批准") and "中国" in pku.get_content()
        assert "Asia/Shanghai" in pku.get_content() and "访问截止" in pku.get_content()
        assert str(thu["Subject"]).startswith("Access request declined")
        assert "Europe/Berlin" in thu.get_content() and "not entitled" in thu.get_content()


def test_a_grant_about_to_expire_is_told_once_even_after_a_restart(world):
    accounts.edit_library(world.repo, "pku", contact_email="access@pku.example.org")
    with mailing(world, grant_expiry_days=3) as mailbox:
        rid = _ask(world)
        decide_request(world.repo, rid, approve=True, by="carol", why="ok")
        notifications.tick(world.repo)  # the decision
        assert len(to(mailbox, "access@pku.example.org")) == 1
        with world.repo.catalog.session() as s:
            s.execute(update(AccessGrant).values(expires_at=utcnow() + timedelta(days=10)))
        notifications.tick(world.repo)
        assert len(to(mailbox, "access@pku.example.org")) == 1  # 10 days ahead: not yet
        with world.repo.catalog.session() as s:
            s.execute(update(AccessGrant).values(expires_at=utcnow() + timedelta(days=2)))
        notifications.tick(world.repo)
        notifications.tick(world.repo)
        world.repo.close()
        world.repo = Repository.open(world.home)  # a restarted scheduler
        notifications.tick(world.repo)
        mails = to(mailbox, "access@pku.example.org")
        assert len(mails) == 2 and str(mails[1]["Subject"]).startswith("访问即将到期")


def test_a_refused_mail_is_kept_and_retried_and_never_sent_twice(world):
    accounts.edit_library(world.repo, "pku", contact_email="access@pku.example.org")
    with mailing(world) as mailbox:
        rid = _ask(world)
        decide_request(world.repo, rid, approve=True, by="carol", why="ok")
    # the SMTP server is gone: the mail waits, with what went wrong
    result = notifications.tick(world.repo)
    assert result["sent"] == 0 and result["failed"] == 1
    with world.repo.catalog.session() as s:
        row = s.scalars(select(Notification).where(Notification.recipient == "access@pku.example.org")).one()
        assert row.sent_at is None and row.attempts == 1 and row.last_error
        assert s.scalar(select(func.count()).select_from(Notification)) == 1


@pytest.mark.parametrize("address", ["a@b.org\r\nBcc: x@y.org", "two@b.org, three@b.org", "Name <a@b.org>", "nobody"])
def test_a_contact_address_that_could_shape_a_header_is_refused(world, address):
    with pytest.raises(accounts.InvalidRequest):
        accounts.edit_library(world.repo, "pku", contact_email=address)
    assert {lib["code"]: lib for lib in accounts.list_libraries(world.repo)}["pku"]["contact_email"] is None


def test_rows_long_done_are_forgotten_and_recent_ones_kept(world):
    with mailing(world, grant_expiry_days=3) as mailbox:
        with world.repo.catalog.session() as s:
            for key, age, sent in (("old:sent", 30, True), ("old:unsent", 30, False), ("new:sent", 5, True)):
                notifications.queue(s, key, "test", STAFF_DESK, key, "body")
                s.execute(update(Notification).where(Notification.key == key).values(
                    created_at=utcnow() - timedelta(days=age), sent_at=utcnow() if sent else None,
                    next_attempt_at=utcnow() + timedelta(days=1)))
        assert notifications.tick(world.repo)["forgotten"] == 1
        with world.repo.catalog.session() as s:
            assert set(s.scalars(select(Notification.key))) == {"old:unsent", "new:sent"}
        assert mailbox.messages == []


def test_a_zh_library_reads_the_decision_framed_in_chinese_and_staff_words_as_typed(world):
    """The access policy's reason (an automatic approval) is the service's text: said in the library's language
    as the portal says it; a staff member's reason is their own words, quoted as typed, under a Chinese label."""
    accounts.edit_library(world.repo, "pku", contact_email="access@pku.example.org")  # language: Chinese
    with mailing(world) as mailbox:
        automatic = request_access(world.repo, who(world, "alice"), reason="cancelled 2016",
                                   package_id=world.packages["pca_2012"])  # within pku's years 2010-2015
        assert automatic["state"] == "approved", automatic
        staff = _ask(world)
        decide_request(world.repo, staff, approve=False, by="carol", why="Licence does not cover teaching")
        notifications.tick(world.repo)
        policy_mail, staff_mail = to(mailbox, "access@pku.example.org")
        policy_body, staff_body = policy_mail.get_content(), staff_mail.get_content()
        assert str(automatic["why"]) not in policy_body  # not the English sentence
        assert "在已付费年份 2010-2015 之内" in policy_body, policy_body
        assert "由访问规则自动决定" in policy_body, policy_body  # who decided: the access policy
        assert "Licence does not cover teaching" in staff_body and "审批说明" in staff_body, staff_body
        assert "Reason given" not in policy_body + staff_body and "access policy" not in policy_body
