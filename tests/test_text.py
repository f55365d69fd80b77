"""preservation.text: what outside text may enter, and how it is shown on a terminal, in a log and in XML."""

from __future__ import annotations

import io
import logging

import pytest
from lxml import etree

from preservation.errors import InvalidRequest, InvalidText
from preservation.text import (
    check_name,
    check_xml_text, for_data_stream, for_log, for_terminal, needs_xml_escape, safe_log_handler, xml_forbidden, xml_safe, xml_unescape,
)

# Every class of character XML 1.0 refuses, and the ones next to them that it accepts.
FORBIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]
ALLOWED = ["\t", "\n", "\r", " ", "\x7f", "\x85", "\ud7ff", "\ue000", "\ufffd", "\U00010000", "中", "\\"]


@pytest.mark.parametrize("char", FORBIDDEN)
def test_refused_at_the_boundary_with_code_and_position(char):
    with pytest.raises(InvalidText) as caught:
        check_xml_text(f"reason {char} here", "reason")
    assert caught.value.code == "E113"
    assert caught.value.params["characters"] == [f"U+{ord(char):04X}"]
    assert char not in caught.value.message  # the message is safe to show anywhere


@pytest.mark.parametrize("char", ALLOWED)
def test_accepted_unchanged(char):
    text = f"物理学报 {char} 2019"
    assert check_xml_text(text, "title") is text
    assert xml_safe(text) == text and not needs_xml_escape(text)


def test_length_limit():
    assert check_xml_text("x" * 10, "reason", max_length=10)
    with pytest.raises(InvalidText):
        check_xml_text("x" * 11, "reason", max_length=10)


def test_xml_safe_is_reversible_and_lxml_accepts_it():
    stored = "a\\uFFFF b\\\\ " + "".join(FORBIDDEN) + "".join(ALLOWED)
    escaped = xml_safe(stored)
    assert xml_forbidden(escaped) == []
    element = etree.Element("eventDetail")
    element.text = escaped  # lxml refuses a str XML cannot carry: this line is the proof
    parsed = etree.fromstring(etree.tostring(element, encoding="UTF-8"))
    assert xml_unescape(parsed.text) == stored


def test_for_terminal_shows_markup_and_controls_as_text():
    shown = for_terminal("[bold red]x[/] [link=https://e.example]y[/link] \x1b[31m \x9b2J \u2028")
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    console.print(shown, highlight=False)
    out = console.file.getvalue()
    assert "[bold red]x[/]" in out and "[link=https://e.example]y[/link]" in out
    assert "\x1b[31m" not in out and "\x9b" not in out and "\x1b]8;" not in out
    assert "\\x1b[31m" in out and "\\x9b2J" in out and "\\u2028" in out


def test_log_lines_cannot_be_forged():
    stream = io.StringIO()
    logger = logging.getLogger("preserve.test-text")
    logger.propagate = False
    logger.addHandler(safe_log_handler(stream, "%(levelname)s %(message)s"))
    try:
        logger.warning("GET %s", "/v1/objects/x\n2026-01-01 INFO fake line \x1b[2J")
    finally:
        logger.handlers.clear()
    lines = stream.getvalue().splitlines()
    assert lines == ["WARNING GET /v1/objects/x\\n2026-01-01 INFO fake line \\x1b[2J"]
    assert for_log("a\r\nb") == "a\\r\\nb"


@pytest.mark.parametrize("name", ["cas-beijing", "n1", "a" * 64, "CNKI.journals_2024"])
def test_a_node_or_collection_name_of_letters_digits_and_dot_dash_underscore_is_kept(name):
    assert check_name(name, "node name") == name


@pytest.mark.parametrize("name", ["", None, "-lead", ".hidden", "a" * 65, "has space", "a/b", "ünï", "a\n"])
def test_any_other_name_is_refused_naming_what_it_was_for(name):
    with pytest.raises(InvalidRequest, match="collection key .* must be 1-64 letters"):
        check_name(name, "collection key")


def test_bidirectional_controls_cannot_reorder_a_row():
    assert for_terminal("abc\u202edcba\u2066x\u2069") == "abc\\u202edcba\\u2066x\\u2069"


def test_data_streams_keep_their_syntax_and_lose_what_acts():
    assert for_data_stream('{"a": "x\\n\x9b\u202e中"}\r\n') == '{"a": "x\\n\\u009b\\u202e中"}\r\n'
