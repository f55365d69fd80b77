"""`preserve library …`: member libraries, their portal users and API keys."""

from __future__ import annotations

import sys

import click

from preservation.access.accounts import (
    add_library,
    add_user,
    create_token,
    list_libraries,
    list_tokens,
    list_users,
    revoke_token,
)
from preservation.catalog.access_models import SCOPE_READ, SCOPES

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
@json_option
def add(code, name, contacts, ip_ranges, as_json) -> None:
    """Register library CODE."""
    result = add_library(repo(), code, name, contacts=contacts, ip_ranges=ip_ranges)
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
    table("libraries", ["code", "name", "users", "ip ranges", "contacts"], [
        [i["code"], i["name"], i["users"], ", ".join(i["ip_ranges"]) or "any", ", ".join(i["contacts"])]
        for i in items])


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
@json_option
def user_add(library_code, username, password_stdin, staff, as_json) -> None:
    """Add USERNAME to LIBRARY (the password is hashed with argon2id)."""
    result = add_user(repo(), library_code, username, _read_password(password_stdin), staff=staff)
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
    table("users", ["username", "library", "role", "active", "last login"],
          [[u["username"], u["library"], u["role"], u["active"], u["last_login_at"]] for u in items])


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
