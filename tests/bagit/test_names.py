"""Names: RFC 8493 percent-encoding, unsafe paths, collisions."""

from __future__ import annotations

import unicodedata

import pytest

from preservation.bagit.names import (
    canonical_path,
    control_characters,
    decode_manifest_path,
    encode_manifest_path,
    find_collisions,
    has_unencoded_percent,
    unsafe_reason,
)


@pytest.mark.parametrize(
    "name, encoded",
    [
        ("plain.txt", "plain.txt"),
        ("100%", "100%25"),
        ("a\nb", "a%0Ab"),
        ("a\rb", "a%0Db"),
        ("a\r\nb", "a%0D%0Ab"),
        ("%0A literally", "%250A literally"),
        ("中文 é", "中文 é"),
    ],
)
def test_percent_encoding_round_trips(name: str, encoded: str) -> None:
    assert encode_manifest_path(name) == encoded
    assert decode_manifest_path(encoded) == name


def test_decoding_accepts_lower_case_and_leaves_other_escapes() -> None:
    assert decode_manifest_path("a%0ab%0dc%25d%41") == "a\nb\rc%d%41"
    assert has_unencoded_percent("50% off") and not has_unencoded_percent("50%25 off")


@pytest.mark.parametrize(
    "path, reason",
    [
        ("data/a.txt", None),
        ("data/..hidden", None),
        ("~$report.docx", None),
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share", "absolute path"),
        ("C:/Windows", "absolute path"),
        ("data/../../x", "`..` segment"),
        ("..", "`..` segment"),
        ("a\\..\\..\\b", "`..` segment"),
        ("a\x00b", "NUL byte in path"),
        ("", "empty path"),
    ],
)
def test_unsafe_paths(path: str, reason: str | None) -> None:
    assert unsafe_reason(path) == reason


def test_canonical_path_drops_dot_and_empty_segments() -> None:
    assert canonical_path("./a//b/./c/") == "a/b/c"
    assert canonical_path("a/b") == "a/b"


def test_collisions_under_nfc_and_case_folding() -> None:
    nfc, nfd = unicodedata.normalize("NFC", "Ä.txt"), unicodedata.normalize("NFD", "Ä.txt")
    found = list(find_collisions([nfc, nfd, "ä.TXT", "x", "X", "straße", "STRASSE", "y"]))
    assert [(c.kind, c.first, c.second) for c in found] == [
        ("nfc", nfc, nfd),
        ("case", nfc, "ä.TXT"),
        ("case", "x", "X"),
        ("case", "straße", "STRASSE"),
    ]


def test_control_characters_are_named() -> None:
    assert control_characters("a\tb\nc\x7f") == ["U+0009", "U+000A", "U+007F"]
    assert control_characters("plain") == []
