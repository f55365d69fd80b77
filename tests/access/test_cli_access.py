"""The access commands: libraries, users, keys, entitlements, triggers, decisions, usage, serve's arguments."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from preservation.access.accounts import authenticate_password
from preservation.access.requests import request_access
from preservation.catalog.access_models import AccessUser, ApiToken
from preservation.cli.main import cli

from .test_rights import who
from .world import PASSWORD


def add_user_from_stdin(world, *args: str, password: str):
    """`preserve library user add … --password-stdin` with the password on standard input."""
    result = CliRunner().invoke(cli, ["--home", str(world.home), "library", "user", "add", *args, "--password-stdin"],
                                input=password + "\n", catch_exceptions=False)
    return result


def test_library_user_and_key_lifecycle(world, run_cli):
    run_cli("library", "add", "fdu", "--name", "Fudan University Library", "--contact", "ill@fudan.example",
            "--ip-range", "10.20.0.0/16", "--ip-range", "2001:db8::1", home=world.home)
    libs = {x["code"]: x for x in run_cli("library", "list", "--json", home=world.home).json()["libraries"]}
    assert libs["fdu"]["ip_ranges"] == ["10.20.0.0/16", "2001:db8::1/128"]
    run_cli("library", "add", "bad", "--name", "x", "--ip-range", "10.0.0.300/8", exit_code=2, home=world.home)
    run_cli("library", "add", "fdu", "--name", "again", exit_code=6, home=world.home)

    assert add_user_from_stdin(world, "fdu", "dave", password="a long enough secret").exit_code == 0
    assert add_user_from_stdin(world, "fdu", "erin", password="short").exit_code == 2
    assert add_user_from_stdin(world, "fdu", "frank", "--staff", password="another long secret").exit_code == 0
    assert add_user_from_stdin(world, "fdu", "dave", password="a long enough secret").exit_code == 6
    with world.repo.catalog.session() as s:
        users = {u.username: u for u in s.scalars(select(AccessUser))}
        assert users["dave"].password_hash.startswith("$argon2id$")
        assert "a long enough secret" not in users["dave"].password_hash
        assert users["frank"].role == "staff" and users["dave"].role == "library"
    assert authenticate_password(world.repo, "dave", "a long enough secret", "10.20.1.1").library_code == "fdu"

    created = run_cli("library", "token", "create", "frank", "--name", "fixity cron", "--json", home=world.home).json()
    with world.repo.catalog.session() as s:
        stored = s.get(ApiToken, created["id"])
        assert stored.token_hash != created["token"] and created["token"] not in stored.token_hash
        assert len(stored.token_hash) == 64
    listed = run_cli("library", "token", "list", "frank", "--json", home=world.home).json()["tokens"]
    assert "token" not in listed[0] and listed[0]["prefix"] == created["token"][:8]
    run_cli("library", "token", "revoke", str(created["id"]), home=world.home)
    assert run_cli("library", "token", "list", "frank", "--json", home=world.home).json()["tokens"][0]["revoked_at"]


def test_entitlement_trigger_and_decisions(world, run_cli):
    run_cli("entitlement", "add", "thu", "journals", "--from-year", "2001", "--to-year", "2002", home=world.home)
    assert ["thu"] == [e["library"] for e in run_cli("entitlement", "list", "--collection", "journals", "--json",
                                                      home=world.home).json()["entitlements"]]
    pending = request_access(world.repo, who(world, "alice"), collection_key="trig-b", reason="is it gone?")
    denied = request_access(world.repo, who(world, "bob"), collection_key="journals", reason="please")
    listed = run_cli("access", "requests", "--json", home=world.home).json()["requests"]
    assert {r["id"] for r in listed} == {pending["id"], denied["id"]}
    assert [r["id"] for r in run_cli("access", "requests", "--library", "thu", "--json", home=world.home).json()["requests"]] \
        == [denied["id"]]
    run_cli("access", "deny", str(denied["id"]), "--why", "dark: no trigger", home=world.home)
    run_cli("access", "deny", str(denied["id"]), "--why", "again", exit_code=2, home=world.home)
    out = run_cli("trigger", "record", "trig-b", "--kind", "publisher_ceased", "--date", "2025-12-31",
                  "--evidence", "Registry extract 2025/991", "--json", home=world.home).json()
    assert out["requests_approved"] == [pending["id"]]
    run_cli("trigger", "record", "trig-b", "--kind", "publisher_ceased", "--date", "31.12.2025", "--evidence", "x",
            exit_code=2, home=world.home)
    grants = run_cli("access", "grants", "--json", home=world.home).json()["grants"]
    assert [(g["library"], g["collection"]) for g in grants] == [("pku", "trig-b")]
    other = request_access(world.repo, who(world, "bob"), package_id=world.packages["dark"], reason="r")
    approved = run_cli("access", "approve", str(other["id"]), "--why", "board", "--by", "staff:carol", "--json",
                       home=world.home).json()
    assert approved["state"] == "approved" and approved["decided_by"] == "staff:carol"
    run_cli("access", "revoke", str(approved["grants"][0]["id"]), "--why", "mistake", home=world.home)
    assert run_cli("access", "grants", "--all", "--json", home=world.home).json()["count"] == 2


def test_serve_refuses_bad_listen_addresses(world, run_cli):
    out = run_cli("serve", "--listen", "localhost", exit_code=4, home=world.home)
    assert "HOST:PORT" in out.stderr
    run_cli("serve", "--listen", "127.0.0.1:1", "--tls-cert", "x.pem", exit_code=4, home=world.home)


def test_password_is_never_echoed(world):
    result = add_user_from_stdin(world, "pku", "zoe", password=PASSWORD + "-2")
    assert result.exit_code == 0 and "zoe" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
