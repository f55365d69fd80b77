"""`preserve access …`: staff review access requests and grants from the command line."""

from __future__ import annotations

import getpass

import click

from preservation.access.requests import asked_for, decide_request, list_grants, list_requests, revoke_grant
from preservation.catalog.access_models import REQUEST_STATES

from .common import emit_json, emit_list, json_option, repo, say, table


def operator_agent() -> str:
    """How events name the operator running this command."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator:unknown"


@click.group("access")
def access() -> None:
    """Access requests, decisions and grants."""


@access.command("requests")
@click.option("--state", type=click.Choice(REQUEST_STATES), default="pending", show_default=True)
@click.option("--library", "library_code", default=None, help="Only this library's requests.")
@json_option
def requests_(state, library_code, as_json) -> None:
    """List access requests."""
    items = list_requests(repo(), state=state, library_code=library_code)
    if as_json:
        emit_list("requests", items)
        return
    columns = ["id", "library", "user", "collection", "asks for", "mode", "reason", "policy / decision"]
    table(f"{state} requests", columns,
          [[r["id"], r["library"], r["user"], r["collection"], asked_for(r), r["access_mode"],
            r["reason"], r["why"]] for r in items])


def _decide(request_id: int, approve: bool, why: str, by: str | None, as_json: bool) -> None:
    result = decide_request(repo(), request_id, approve=approve, by=by or operator_agent(), why=why)
    if as_json:
        emit_json(result)
        return
    say(f"request {result['id']} {result['state']}")
    for g in result["grants"]:
        say(f"  grant {g['id']} ({g['covers']}) until {g['expires_at']:%Y-%m-%d %H:%M} UTC")


@access.command("approve")
@click.argument("request_id", type=int)
@click.option("--why", required=True, help="Recorded in the decision event.")
@click.option("--by", default=None, help="Who decides (default: this operator account).")
@json_option
def approve(request_id, why, by, as_json) -> None:
    """Approve pending request REQUEST_ID: a grant for the policy's grant_days."""
    _decide(request_id, True, why, by, as_json)


@access.command("deny")
@click.argument("request_id", type=int)
@click.option("--why", required=True, help="Recorded in the decision event and shown to the library.")
@click.option("--by", default=None, help="Who decides (default: this operator account).")
@json_option
def deny(request_id, why, by, as_json) -> None:
    """Deny pending request REQUEST_ID."""
    _decide(request_id, False, why, by, as_json)


@access.command("grants")
@click.option("--library", "library_code", default=None)
@click.option("--all", "include_ended", is_flag=True, help="Include expired and revoked grants.")
@json_option
def grants(library_code, include_ended, as_json) -> None:
    """List grants."""
    items = list_grants(repo(), library_code=library_code, active_only=not include_ended)
    if as_json:
        emit_list("grants", items)
        return
    table("grants", ["id", "library", "collection", "package", "scope", "covers", "until", "by", "active"],
          [[g["id"], g["library"], g["collection"], g["package_id"] or "(all)", g["scope"], g["covers"],
            g["expires_at"], g["granted_by"], g["active"]] for g in items])


@access.command("revoke")
@click.argument("grant_id", type=int)
@click.option("--why", required=True)
@json_option
def revoke(grant_id, why, as_json) -> None:
    """End grant GRANT_ID now."""
    result = revoke_grant(repo(), grant_id, by=operator_agent(), why=why)
    if as_json:
        emit_json(result)
    else:
        say(f"grant {result['id']} revoked")
