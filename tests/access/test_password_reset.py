"""Password reset end to end through a real SMTP server (aiosmtpd): forgot → mail → link → new password → log in;
the token is single use, expires, is kept only as a hash, and the answer is the same for unknown users."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from preservation.access import accounts
from preservation.catalog.access_models import PasswordReset
from preservation.catalog.models import utcnow

from .conftest import csrf_of, login, make_client
from .mailing import PORTAL, mailing, reset_token, to

NEW_PASSWORD = "a brand new long password"


def ask_reset(client, username: str, **headers):
    token = csrf_of(client.get("/login").text)
    return client.post("/login/forgot", data={"username": username, "csrf": token}, headers=headers)


def set_password(client, token: str, password: str, confirm: str | None = None):
    client.get(f"/login/reset?token={token}")
    return client.post("/login/reset", data={"token": token, "password": password,
                                             "confirm": password if confirm is None else confirm,
                                             "csrf": csrf_of(client.get("/login").text)})


def test_password_reset_end_to_end_single_use_hash_only(world):
    accounts.set_user_email(world.repo, "alice", "alice@pku.example.org")
    with mailing(world) as mailbox, make_client(world) as client, make_client(world) as old_session:
        assert login(old_session, "alice").status_code == 303
        known = ask_reset(client, "alice", host="evil.example")  # the link never follows the Host header
        unknown = ask_reset(client, "nobody-at-all")
        assert known.status_code == unknown.status_code == 200
        assert known.text == unknown.text and 'id="reset-sent"' in known.text
        [message] = to(mailbox, "alice@pku.example.org")
        assert len(mailbox.messages) == 1 and "evil.example" not in message.get_content()
        token = reset_token(message)
        assert f"{PORTAL}/login/reset?token={token}" in message.get_content()
        with world.repo.catalog.session() as s:
            stored = s.scalars(select(PasswordReset.token_hash)).all()
        assert len(stored) == 1 and token not in stored[0]

        assert set_password(client, token, NEW_PASSWORD, "something else!!").status_code == 400
        assert set_password(client, token, "short").status_code == 400  # the rules; the link still works
        done = set_password(client, token, NEW_PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/login?reset=done"
        assert "Log in with the new one" in client.get("/login?reset=done").text
        assert login(client, "alice", NEW_PASSWORD).status_code == 303
        assert login(make_client(world), "alice").status_code == 401  # the old password is gone
        assert old_session.get("/portal").status_code == 303  # sessions from before the reset have ended
        again = set_password(client, token, "yet another long password")
        assert again.status_code == 400 and 'id="reset-invalid"' in again.text  # single use


def test_an_expired_or_made_up_link_is_refused_with_a_4xx(world):
    accounts.set_user_email(world.repo, "bob", "bob@thu.example.org")
    with mailing(world) as mailbox, make_client(world) as client:
        ask_reset(client, "bob")
        token = reset_token(to(mailbox, "bob@thu.example.org")[0])
        with world.repo.catalog.session() as s:
            s.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
        for bad in (token, "made-up", "x" * 300, "%00"):
            response = client.get(f"/login/reset?token={bad}")
            assert 400 <= response.status_code < 500
        assert client.post("/login/reset", data={"token": "made-up", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                                 "csrf": csrf_of(client.get("/login").text)}).status_code == 400
        assert login(client, "bob").status_code == 303  # nothing changed


def test_reset_requests_are_rate_limited_per_address_and_per_user(world):
    accounts.set_user_email(world.repo, "alice", "alice@pku.example.org")
    with mailing(world, resets_per_hour=2, reset_requests_per_hour=5) as mailbox, make_client(world) as client:
        answers = [ask_reset(client, "alice").status_code for _ in range(5)]
        assert answers == [200] * 5
        assert len(to(mailbox, "alice@pku.example.org")) == 2  # the user's limit: the rest silently dropped
        refused = ask_reset(client, "nobody-at-all")
        assert refused.status_code == 429  # the address's limit, whoever is named


def test_without_mail_settings_no_reset_is_offered(world, client):
    page = client.get("/login/forgot")
    assert page.status_code == 200 and "not set up here" in page.text
    assert ask_reset(client, "alice").status_code == 503


def test_reset_and_the_mail_queue_work_on_both_catalogs(tmp_path, catalog_url):
    from preservation.access import notifications, password_reset
    from preservation.repository import Repository

    from ..fixtures import make_repo
    from ..monitoring.receivers import smtp_server
    from .mailing import notifications_yaml

    home = tmp_path / "home"
    make_repo(home, catalog_url).close()
    with smtp_server() as (mailbox, port):
        config = home / "preserve.yaml"
        config.write_text(config.read_text(encoding="utf-8") + notifications_yaml(port), encoding="utf-8")
        repo = Repository.open(home)
        try:
            accounts.add_library(repo, "pku", "PKU", contact_email="access@pku.example.org")
            accounts.add_user(repo, "pku", "alice", "an old long password", email="alice@pku.example.org")
            link = password_reset.request_reset(repo, "alice", "10.0.0.1")
            notifications.send_reset_link(repo, link, "en")
            token = reset_token(to(mailbox, "alice@pku.example.org")[0])
            assert password_reset.reset_password(repo, token, NEW_PASSWORD) == "alice"
            assert accounts.authenticate_password(repo, "alice", NEW_PASSWORD, "10.0.0.1").username == "alice"
            with repo.catalog.session() as s:
                assert notifications.queue(s, "test:1", "test", "access@pku.example.org", "Subject\r\nBcc: x@y", "body")
                assert not notifications.queue(s, "test:1", "test", "access@pku.example.org", "again", "body")
            assert notifications.deliver_due(repo) == {"sent": 1, "failed": 0}
            assert notifications.deliver_due(repo) == {"sent": 0, "failed": 0}
            assert [m["Subject"] for m in to(mailbox, "access@pku.example.org")] == ["Subject\\r\\nBcc: x@y"]
        finally:
            repo.close()
