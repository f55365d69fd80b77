"""Outside text reaches a staff terminal as data: Rich markup shown as typed, control characters made visible."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from preservation.access.requests import request_access
from preservation.catalog.access_models import AccessRequest
from preservation.cli.main import cli

from .test_rights import who

MARKUP = "[bold red]URGENT[/] [link=https://evil.example]x[/link]"


def test_access_requests_table_shows_markup_and_escapes_as_text(world):
    made = request_access(world.repo, who(world, "alice"), collection_key="trig-b", reason=MARKUP)
    # A reason stored before the boundary refused control characters (or written by another tool) still
    # reaches the terminal as text: ESC and the 8-bit CSI never act.
    with world.repo.catalog.session() as s:
        s.execute(update(AccessRequest).where(AccessRequest.id == made["id"])
                  .values(decision_reason=None, reason=MARKUP + " \x1b[2J\x9b31m\x07"))
    result = CliRunner().invoke(cli, ["--home", str(world.home), "access", "requests"], catch_exceptions=False,
                                env={"COLUMNS": "400"}, color=True)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "[bold red]URGENT[/]" in out
    assert "[link=https://evil.example]x[/link]" in out
    assert "\x1b]8;" not in out  # no OSC-8 hyperlink was made
    assert "\x1b[2J" not in out and "\x9b" not in out and "\x07" not in out
    assert "\\x1b[2J\\x9b31m\\x07" in out


def test_error_messages_and_plain_lines_escape_outside_text(world):
    # An unknown collection key is quoted back in the error: its markup and escapes must not act.
    # (A C1 CSI: XML can carry it, so the key is looked up and quoted; an ESC is refused earlier, E113.)
    key = "[bold]k\x9b31m"
    result = CliRunner().invoke(cli, ["--home", str(world.home), "trigger", "record", key, "--kind",
                                      "publisher_ceased", "--date", "2024-01-01", "--evidence", "x"],
                                catch_exceptions=False, env={"COLUMNS": "400"}, color=True)
    assert result.exit_code != 0
    assert "\x9b" not in result.stderr
    assert "[bold]k\\x9b31m" in result.stderr


def test_json_output_escapes_what_would_act_on_a_terminal_and_keeps_the_data(world):
    reason = "please \x9b31m re\u202eversed \u2028 中文"
    made = request_access(world.repo, who(world, "alice"), collection_key="trig-b", reason=reason)
    result = CliRunner().invoke(cli, ["--home", str(world.home), "access", "requests", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for char in ("\x9b", "\u202e", "\u2028"):
        assert char not in result.stdout
    assert "中文" in result.stdout  # Chinese stays readable
    [listed] = [r for r in json.loads(result.stdout)["requests"] if r["id"] == made["id"]]
    assert listed["reason"] == reason


@pytest.mark.parametrize("name", ["lib1\n", "bad\nline"])
def test_library_codes_and_usernames_are_matched_whole(world, run_cli, name):
    run_cli("library", "add", name, "--name", "x", exit_code=2, home=world.home)
    assert name not in [x["code"] for x in run_cli("library", "list", "--json", home=world.home).json()["libraries"]]
    result = CliRunner().invoke(cli, ["--home", str(world.home), "library", "user", "add", "thu", name,
                                      "--password-stdin"], input="a long enough secret\n", catch_exceptions=False)
    assert result.exit_code == 2, result.output
