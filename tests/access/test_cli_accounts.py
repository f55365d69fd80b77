"""`preserve library user disable|enable|reset-password|set-email` and `library edit`: --json, coded errors,
disabling ends sessions and the portal says the account is disabled; a library's pages show its own time zone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from preservation.access import accounts
from preservation.access.requests import request_access
from preservation.catalog.access_models import AccessRequest, LoginCounter
from preservation.catalog.models import utcnow

from .conftest import login, make_client
from .mailing import mailing, reset_token, to
from .test_rights import who
from .world import PASSWORD


def test_disable_ends_sessions_and_the_portal_says_disabled_then_enable(world, run_cli):
    with make_client(world) as client:
        assert login(client, "alice").status_code == 303 and client.get("/portal").status_code == 200
        out = run_cli("library", "user", "disable", "alice", "--json", home=world.home).json()
        assert out["active"] is False and out["changed"] is True
        assert client.get("/portal").status_code == 303  # the session ended at once
        refused = login(client, "alice")
        assert refused.status_code == 403 and "This account is disabled" in refused.text
        wrong = login(client, "alice", "not the password at all")
        assert wrong.status_code == 401 and "disabled" not in wrong.text  # only the password holder is told
        run_cli("library", "user", "enable", "alice", "--json", home=world.home)
        assert login(client, "alice").status_code == 303


@pytest.mark.parametrize("command", [["disable"], ["enable"], ["reset-password"], ["set-email", "a@b.org"]])
def test_an_unknown_user_is_a_coded_error_in_json(world, run_cli, command):
    result = run_cli("library", "user", command[0], "nobody-at-all", *command[1:], "--json", exit_code=5,
                     home=world.home)
    assert json.loads(result.output or result.stderr)["error"]["code"] == "E110"


def test_reset_password_prints_a_one_time_link_or_mails_it(world, run_cli):
    printed = run_cli("library", "user", "reset-password", "bob", "--json", home=world.home).json()
    assert printed["link"].startswith("/login/reset?token=") and printed["sent_to"] is None
    with make_client(world) as client:
        assert client.get(printed["link"]).status_code == 200
    run_cli("library", "user", "set-email", "bob", "bob@thu.example.org", home=world.home)
    run_cli("library", "user", "reset-password", "bob", "--send", "--json", exit_code=2, home=world.home)  # no SMTP
    with mailing(world) as mailbox:
        sent = run_cli("library", "user", "reset-password", "bob", "--send", "--json", home=world.home).json()
        assert sent["sent_to"] == "bob@thu.example.org" and sent["link"] is None
        assert reset_token(to(mailbox, "bob@thu.example.org")[0])


@pytest.mark.parametrize("args, field", [(["--timezone", "Mars/Olympus_Mons"], "time zone"),
                                         (["--timezone", "../../etc/passwd"], "time zone"),
                                         (["--language", "fr"], "language"),
                                         (["--contact-email", "a@b.org\nBcc: c@d.org"], "contact address")])
def test_library_edit_refuses_bad_values_with_a_code_and_changes_nothing(world, run_cli, args, field):
    result = run_cli("library", "edit", "pku", *args, "--json", exit_code=2, home=world.home)
    error = json.loads(result.output or result.stderr)["error"]
    assert error["code"] == "E112" and field in error["message"]
    lib = {x["code"]: x for x in run_cli("library", "list", "--json", home=world.home).json()["libraries"]}["pku"]
    assert (lib["timezone"], lib["language"], lib["contact_email"]) == (None, "zh_Hans_CN", None)


def test_a_librarys_pages_show_times_in_its_own_zone_staff_in_the_setting(world, run_cli):
    run_cli("library", "edit", "pku", "--timezone", "Europe/Berlin", "--language", "en",
            "--contact-email", "access@pku.example.org", home=world.home)
    rid = request_access(world.repo, who(world, "alice"), reason="teaching", package_id=world.packages["dark"])["id"]
    with world.repo.catalog.session() as s:  # 2026-01-15 12:00 UTC: 13:00 in Berlin, 20:00 in Shanghai
        s.get(AccessRequest, rid).created_at = utcnow().replace(year=2026, month=1, day=15, hour=12, minute=0)
    with make_client(world) as library, make_client(world) as staff:
        login(library, "alice")
        login(staff, "carol")
        mine = library.get("/portal/requests").text
        assert "2026-01-15 13:00" in mine and "Europe/Berlin" in mine
        desk = staff.get("/staff/requests").text
        assert "2026-01-15 20:00" in desk and "Asia/Shanghai" in desk
    cleared = run_cli("library", "edit", "pku", "--timezone", "", "--json", home=world.home).json()
    assert cleared["timezone"] is None and cleared["language"] == "en"


def test_an_account_locked_by_failed_logins_is_told_until_when_and_mailed_once(world):
    accounts.set_user_email(world.repo, "alice", "alice@pku.example.org")
    with mailing(world) as mailbox, make_client(world, login_max_failures=2) as client:
        for _ in range(2):
            assert login(client, "alice", "wrong password!!").status_code == 401
        locked = [login(client, "alice", "wrong password!!") for _ in range(2)]
        assert {r.status_code for r in locked} == {429}
        with world.repo.catalog.session() as s:
            start = s.get(LoginCounter, ("alice", "127.0.0.1")).window_start
        until = (start + timedelta(minutes=15) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")  # Asia/Shanghai
        assert f"is locked after too many failed log-ins, until {until}" in locked[0].text
        nobody = login(client, "nobody-at-all", "x")
        mails = to(mailbox, "alice@pku.example.org")
        assert len(mails) == 1 and "alice" in str(mails[0]["Subject"]) and "锁定" in str(mails[0]["Subject"])
    assert nobody.status_code in (401, 429)
    assert login(make_client(world), "alice", PASSWORD).status_code == 303  # from another address
