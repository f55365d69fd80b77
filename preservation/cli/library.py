"""`preserve library …`: member libraries, their portal users and API keys."""

from __future__ import annotations

import smtplib
import sys

import click

from preservation.access.accounts import (
    UNCHANGED,
    add_library,
    add_user,
    create_token,
    edit_library,
    list_libraries,
    list_tokens,
    list_users,
    revoke_token,
    set_user_active,
    set_user_email,
)
from preservation.access.notifications import send_reset_link
from preservation.access.password_reset import create_reset
from preservation.catalog.access_models import SCOPE_READ, SCOPES
from preservation.errors import InvalidRequest, MailNotSent

from .common import emit_json, emit_list, json_option, repo, say, table


@click.group("library")
def library() -> None:
    """Member libraries, their users and API keys."""


@library.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The library's name.")
@click.option("--contact", "contacts", multiple=True, help="A contact (e-mail, person); repeatable.")
@click.option("--ip-range", "ip_ranges", multiple=True,
              help="CIDR range its readers come from (repeatable); when set, reads from elsewhere are refused.")
@click.option("--contact-email", default=None,
              help="Where decisions on its requests and grants about to expire are e-mailed.")
@json_option
def add(code, name, contacts, ip_ranges, contact_email, as_json) -> None:
    """Register library CODE."""
    result = add_library(repo(), code, name, contacts=contacts, ip_ranges=ip_ranges, contact_email=contact_email)
    if as_json:
        emit_json(result)
    else:
        say(f"library {result['code']} added ({result['name']})")


@library.command("list")
@json_option
def list_(as_json) -> None:
    """List libraries."""
    items = list_libraries(repo())
    if as_json:
        emit_list("libraries", items)
        return
    table("libraries", ["code", "name", "users", "ip ranges", "contacts", "contact e-mail", "time zone", "language"], [
        [i["code"], i["name"], i["users"], ", ".join(i["ip_ranges"]) or "any", ", ".join(i["contacts"]),
         i["contact_email"] or "", i["timezone"] or "(setting)", i["language"]]
        for i in items])


def _optional(value: str | None) -> str | None:
    """An option's value: left out is unchanged, '' clears."""
    return UNCHANGED if value is None else (value or None)


@library.command("edit")
@click.argument("code")
@click.option("--contact-email", default=None,
              help="Where decisions and grants about to expire are e-mailed ('' clears: no mail).")
@click.option("--timezone", default=None,
              help="IANA time zone its pages show times in, e.g. Asia/Shanghai ('' clears: access_timezone).")
@click.option("--language", default=None, help="Language of its e-mails: zh (the default) or en ('' clears: zh).")
@json_option
def edit(code, contact_email, timezone, language, as_json) -> None:
    """Change library CODE's contact address, time zone or e-mail language; an unknown zone is refused (E112)."""
    result = edit_library(repo(), code, contact_email=_optional(contact_email), timezone=_optional(timezone),
                          language=_optional(language))
    if as_json:
        emit_json(result)
    else:
        say(f"library {result['code']}: contact e-mail {result['contact_email'] or '(none)'}, "
            f"time zone {result['timezone'] or '(the access_timezone setting)'}, language {result['language']}")


@library.group("user")
def user() -> None:
    """Portal users (library readers and consortium staff)."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("library_code", metavar="LIBRARY")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--staff", is_flag=True, help="Consortium staff: decides requests, records triggers, reads usage.")
@click.option("--email", default=None, help="The user's e-mail address: where password reset links go.")
@json_option
def user_add(library_code, username, password_stdin, staff, email, as_json) -> None:
    """Add USERNAME to LIBRARY (the password is hashed with argon2id)."""
    result = add_user(repo(), library_code, username, _read_password(password_stdin), staff=staff, email=email)
    if as_json:
        emit_json(result)
    else:
        say(f"user {result['username']} ({result['role']}) added to {result['library']}")


@user.command("list")
@click.argument("library_code", metavar="[LIBRARY]", required=False)
@json_option
def user_list(library_code, as_json) -> None:
    """List users (of one library)."""
    items = list_users(repo(), library_code)
    if as_json:
        emit_list("users", items)
        return
    table("users", ["username", "library", "role", "active", "e-mail", "last login"],
          [[u["username"], u["library"], u["role"], u["active"], u["email"] or "", u["last_login_at"]] for u in items])


@user.command("set-email")
@click.argument("username")
@click.argument("address")
@json_option
def user_set_email(username, address, as_json) -> None:
    """Set USERNAME's e-mail address, where reset links and lockout notices go ('' clears)."""
    result = set_user_email(repo(), username, address or None)
    if as_json:
        emit_json(result)
    else:
        say(f"user {result['username']}: e-mail {result['email'] or '(none)'}")


def _set_active(username: str, active: bool, as_json: bool) -> None:
    result = set_user_active(repo(), username, active)
    if as_json:
        emit_json(result)
        return
    state_ = "enabled" if active else "disabled"
    say(f"user {result['username']} {state_}" if result["changed"] else f"user {result['username']} was {state_}")


@user.command("disable")
@click.argument("username")
@json_option
def user_disable(username, as_json) -> None:
    """Disable USERNAME: the portal refuses its log-ins, its sessions end at once, its API keys stop working."""
    _set_active(username, False, as_json)


@user.command("enable")
@click.argument("username")
@json_option
def user_enable(username, as_json) -> None:
    """Enable USERNAME again (sessions ended by disabling stay ended: the user logs in anew)."""
    _set_active(username, True, as_json)


@user.command("reset-password")
@click.argument("username")
@click.option("--send", is_flag=True,
              help="E-mail the link to the user's address (notifications.email) instead of printing it.")
@json_option
def user_reset_password(username, send, as_json) -> None:
    """Make a one-time password reset link for USERNAME and PRINT it (give it to the user yourself), or with
    --send e-mail it to the user.  The link works once, for notifications.reset_minutes (30); only its hash is
    kept.  The link starts at notifications.portal_url when set (else it is the path alone)."""
    repository = repo()
    link = create_reset(repository, username)
    portal_url = repository.settings.notifications.portal_url
    result = {"username": link.username, "expires_at": link.expires_at, "sent_to": None, "link": None}
    if send:
        try:
            send_reset_link(repository, link)
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        except (OSError, smtplib.SMTPException) as e:
            raise MailNotSent(f"{type(e).__name__}: {e}") from None
        result["sent_to"] = link.email
    else:
        result["link"] = link.url(portal_url)
    if as_json:
        emit_json(result)
    elif send:
        say(f"reset link for {link.username} sent to {link.email}; it works once, until {link.expires_at} UTC")
    else:
        click.echo(result["link"])
        say(f"one-time reset link for {link.username}, valid until {link.expires_at} UTC: give it to the user only",
            err=True)


@library.group("token")
def token() -> None:
    """API keys (for the JSON API and, for staff, the fixity API)."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="", help="What the key is for, e.g. 'fixity cron'.")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Expire after this many days (default: never).")
@click.option("--scope", type=click.Choice(SCOPES), default=SCOPE_READ, show_default=True,
              help="read: the JSON API as a reader; staff: also staff decisions (staff users); "
                   "fixity: only the fixity API, whose key travels in URLs (staff users).")
@json_option
def token_create(username, name, days, scope, as_json) -> None:
    """Create an API key for USERNAME; the key is printed once and only its hash is kept."""
    result = create_token(repo(), username, name=name, days=days, scope=scope)
    if as_json:
        emit_json(result)
    else:
        click.echo(result["token"])
        say(f"{result['scope']} API key {result['id']} for {result['username']} ({result['role']}); "
                   "store it now, it cannot be shown again", err=True)


@token.command("list")
@click.argument("username", required=False)
@json_option
def token_list(username, as_json) -> None:
    """List API keys (never the keys themselves)."""
    items = list_tokens(repo(), username)
    if as_json:
        emit_list("tokens", items)
        return
    table("API keys", ["id", "user", "scope", "name", "prefix", "created", "expires", "last used", "revoked"],
          [[t["id"], t["username"], t["scope"], t["name"], t["prefix"] + "…", t["created_at"], t["expires_at"],
            t["last_used_at"], t["revoked_at"]] for t in items])


@token.command("revoke")
@click.argument("token_id", type=int)
@json_option
def token_revoke(token_id, as_json) -> None:
    """Revoke API key TOKEN_ID at once."""
    result = revoke_token(repo(), token_id)
    if as_json:
        emit_json(result)
    else:
        say(f"API key {result['id']} of {result['username']} revoked")
