"""Manifest lines: percent-decoding, whitespace, every bad line reported."""

from __future__ import annotations

from preservation.bagit.manifests import format_manifest_line, parse_manifest
from preservation.findings import FindingList

SHA = "a" * 64


def manifest(text: str, name: str = "manifest-sha256.txt", version=(1, 0)):
    findings = FindingList()
    parsed = parse_manifest(text.splitlines(), name, findings, version)
    return parsed, findings


def test_manifest_percent_decoding_only_touches_the_three_escapes() -> None:
    parsed, findings = manifest(
        f"{SHA}  data/a%25b\n{SHA}  data/line%0afeed\n{SHA}  data/cr%0Dhere\n{SHA}  data/keep%41s-is\n"
    )
    assert list(parsed.entries) == ["data/a%b", "data/line\nfeed", "data/cr\rhere", "data/keep%41s-is"]
    assert findings.codes() == ["BAG109"]
    assert parsed.alternates["data/a%b"] == "data/a%25b"


def test_older_manifests_are_not_percent_decoded() -> None:
    parsed, findings = manifest(f"{SHA}  data/a%25b\n", version=(0, 97))
    assert list(parsed.entries) == ["data/a%25b"] and findings.codes() == []


def test_manifest_keeps_spaces_inside_and_after_names_and_accepts_tabs() -> None:
    parsed, findings = manifest(f"{SHA.upper()}\tdata/with space \n{SHA} data/one-space")
    assert list(parsed.entries) == ["data/with space ", "data/one-space"]
    assert set(parsed.entries.values()) == {SHA} and findings.codes() == []


def test_manifest_reports_every_bad_line() -> None:
    parsed, findings = manifest(
        f"{SHA}  data/ok\nzzz  data/bad-hex\n{SHA}  /abs\n{SHA}  data/../../x\n{SHA}  data/ok\n{SHA[:10]}  data/short\n"
    )
    assert list(parsed.entries) == ["data/ok"]
    assert findings.codes() == ["BAG103", "BAG106", "BAG106", "BAG111", "BAG103"]
    assert [f.params["line"] for f in findings] == [2, 3, 4, 5, 6]


def test_a_repeated_entry_is_a_warning_and_a_conflicting_one_an_error() -> None:
    other = "b" * 64
    parsed, findings = manifest(f"{SHA}  data/a\n{SHA}  data/a\n{SHA}  data/b\n{other}  data/b\n")
    assert [(f.code, f.severity, f.params["line"]) for f in findings] == [
        ("BAG111", "warning", 2),
        ("BAG105", "error", 4),
    ]
    assert parsed.entries == {"data/a": SHA, "data/b": SHA}


def test_formatted_lines_parse_back() -> None:
    names = ["data/plain.txt", "data/50% off", "data/two\nlines", "data/Icon\r", "data/.hidden", "data/中文 文件"]
    text = "".join(format_manifest_line(SHA, name) for name in names)
    parsed, findings = manifest(text)
    assert list(parsed.entries) == names and findings.codes() == []
