"""validate_bag: every bad bag maps to the exact codes it must produce, and good bags from anyone validate."""

from __future__ import annotations

import codecs
import os
import shutil
import unicodedata
from pathlib import Path

import bagit
import pytest

from preservation.bagit import validate_bag
from preservation.errors import InvalidRequest, NotFound

from .builders import (
    PAYLOAD,
    add_payload,
    append_line,
    digest,
    edit_text,
    make_bag,
    make_tree,
    manifests,
    reseal,
    set_oxum,
)

NFC = unicodedata.normalize("NFC", "café.txt")
NFD = unicodedata.normalize("NFD", "café.txt")
SHA256_A = digest("sha256", PAYLOAD["a.txt"])


# --- the bad bags ----------------------------------------------------------------------
# Each builder damages a freshly written, valid bag in one way.


def bagit_txt_missing(bag: Path) -> None:
    (bag / "bagit.txt").unlink()


def bagit_txt_with_bom(bag: Path) -> None:
    (bag / "bagit.txt").write_bytes(codecs.BOM_UTF8 + (bag / "bagit.txt").read_bytes())
    reseal(bag)


def version_unsupported(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "BagIt-Version: 1.0", "BagIt-Version: 2.0")


def version_missing(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "BagIt-Version: 1.0\n", "")


def encoding_unknown(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "UTF-8", "NO-SUCH-ENCODING")


def bagit_txt_malformed_line(bag: Path) -> None:
    append_line(bag, "bagit.txt", "this line has no colon")


def payload_dir_missing(bag: Path) -> None:
    shutil.rmtree(bag / "data")


def no_payload_manifest(bag: Path) -> None:
    for manifest in manifests(bag).values():
        manifest.unlink()
    reseal(bag)


def unsupported_algorithm_beside_supported(bag: Path) -> None:
    lines = (bag / "manifest-sha256.txt").read_text().splitlines()
    fake = "".join("0" * 64 + "  " + line.split("  ", 1)[1] + "\n" for line in lines)
    (bag / "manifest-sha3_256.txt").write_text(fake)
    reseal(bag)


def manifest_line_malformed(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", "not-a-digest-line")


def manifest_digest_wrong_length(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", "abcd  data/a.txt")


def manifest_binary_marker(bag: Path) -> None:
    edit_text(bag, "manifest-sha256.txt", f"{SHA256_A}  data/a.txt", f"{SHA256_A} *data/a.txt")


def manifest_duplicate_line(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", f"{SHA256_A}  data/a.txt")


def manifest_conflicting_duplicate(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", f"{'0' * 64}  data/a.txt")


def bagit_txt_space_before_colon(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "BagIt-Version: 1.0", "BagIt-Version : 1.0")


def bagit_txt_no_space_after_colon(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "Tag-File-Character-Encoding: UTF-8", "Tag-File-Character-Encoding:UTF-8")


def bagit_txt_tab_after_colon(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "BagIt-Version: 1.0", "BagIt-Version:\t1.0")


def bagit_txt_loose_separator_in_a_0_97_bag(bag: Path) -> None:
    edit_text(bag, "bagit.txt", "BagIt-Version: 1.0", "BagIt-Version : 0.97")


def case_only_duplicate_entry(bag: Path) -> None:
    """What a bag made on a case-insensitive file system looks like: data/A.txt was data/a.txt there."""
    for algorithm, manifest in manifests(bag).items():
        with manifest.open("a", encoding="utf-8") as f:
            f.write(f"{digest(algorithm, PAYLOAD['a.txt'])}  data/A.txt\n")
    reseal(bag)


def case_only_twin_with_another_digest(bag: Path) -> None:
    for algorithm, manifest in manifests(bag).items():
        with manifest.open("a", encoding="utf-8") as f:
            f.write(f"{digest(algorithm, b'not alpha')}  data/A.txt\n")
    reseal(bag)


def bag_info_value_xml_cannot_carry(bag: Path) -> None:
    append_line(bag, "bag-info.txt", "External-Description: a value with \uffff in it")


def bag_info_control_character(bag: Path) -> None:
    append_line(bag, "bag-info.txt", "External-Description: bell \x07")


def manifest_traversal(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", f"{SHA256_A}  data/../../outside.txt")


def manifest_absolute_path(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", f"{SHA256_A}  /etc/passwd")


def payload_manifest_lists_tag_file(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", f"{SHA256_A}  bagit.txt")


def manifest_blank_line(bag: Path) -> None:
    edit_text(bag, "manifest-sha256.txt", f"{SHA256_A}  data/a.txt\n", f"{SHA256_A}  data/a.txt\n\n")


def manifest_non_canonical_path(bag: Path) -> None:
    edit_text(bag, "manifest-sha256.txt", "  data/a.txt", "  data/./a.txt")


def manifest_with_bom(bag: Path) -> None:
    path = bag / "manifest-sha256.txt"
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    reseal(bag)


def manifest_not_utf8(bag: Path) -> None:
    with (bag / "manifest-sha256.txt").open("ab") as f:
        f.write(b"0" * 64 + b"  data/\xff\xfe.txt\n")
    reseal(bag)


def manifest_entry_is_directory(bag: Path) -> None:
    append_line(bag, "manifest-sha256.txt", f"{SHA256_A}  data/sub")


def payload_file_missing(bag: Path) -> None:
    (bag / "data" / "a.txt").unlink()


def payload_file_changed(bag: Path) -> None:
    (bag / "data" / "a.txt").write_bytes(b"ALPHA\n")


def payload_file_unexpected(bag: Path) -> None:
    (bag / "data" / "extra.txt").write_bytes(b"not listed")


def payload_not_in_every_manifest(bag: Path) -> None:
    edit_text(bag, "manifest-sha512.txt", f"{digest('sha512', PAYLOAD['a.txt'])}  data/a.txt\n", "")


def oxum_wrong(bag: Path) -> None:
    set_oxum(bag, "1.1")
    reseal(bag)


def oxum_malformed(bag: Path) -> None:
    set_oxum(bag, "lots")
    reseal(bag)


def bag_info_malformed_line(bag: Path) -> None:
    append_line(bag, "bag-info.txt", "a line without a label")


def bag_info_continuation_first(bag: Path) -> None:
    path = bag / "bag-info.txt"
    path.write_text("  continued from nothing\n" + path.read_text())
    reseal(bag)


def bag_info_reserved_tag_repeated(bag: Path) -> None:
    append_line(bag, "bag-info.txt", "Bagging-Date: 2024-06-01")


def names_collide_under_nfc(bag: Path) -> None:
    add_payload(bag, NFC, b"composed")
    add_payload(bag, NFD, b"decomposed")


def names_collide_under_case_folding(bag: Path) -> None:
    add_payload(bag, "Readme.txt", b"one")
    add_payload(bag, "README.txt", b"two")


def manifest_name_matches_only_after_nfc(bag: Path) -> None:
    add_payload(bag, NFD, b"stored decomposed", listed_as=NFC)


def percent_not_encoded_by_legacy_tool(bag: Path) -> None:
    add_payload(bag, "100%25 sure.txt", b"literal name", listed_as="100%25 sure.txt")


def raw_percent_sign_in_manifest(bag: Path) -> None:
    add_payload(bag, "50% off.txt", b"sale", listed_as="50% off.txt")


def fetch_txt_present(bag: Path) -> None:
    (bag / "fetch.txt").write_text("https://example.org/x 10 data/remote.bin\n")
    for algorithm, manifest in manifests(bag).items():
        with manifest.open("a") as f:
            f.write(f"{digest(algorithm, b'0123456789')}  data/remote.bin\n")
    reseal(bag)


def fetch_entry_not_in_manifest(bag: Path) -> None:
    (bag / "fetch.txt").write_text("https://example.org/x 10 data/remote.bin\n")
    reseal(bag)


def fetch_txt_malformed(bag: Path) -> None:
    (bag / "fetch.txt").write_text("https://example.org/x\n")
    reseal(bag)


def fetch_txt_outside_data(bag: Path) -> None:
    (bag / "fetch.txt").write_text("https://example.org/x - ../escape\n")
    reseal(bag)


def tag_file_missing(bag: Path) -> None:
    (bag / "bag-info.txt").unlink()


def tag_file_changed(bag: Path) -> None:
    edit_text(bag, "bag-info.txt", "pkg-0001", "pkg-0002", seal=False)


def tag_file_unlisted(bag: Path) -> None:
    (bag / "README.txt").write_text("a tag file nobody listed")


def tag_manifest_lists_payload(bag: Path) -> None:
    append_line(bag, "tagmanifest-sha256.txt", f"{SHA256_A}  data/a.txt", seal=False)


def tag_manifest_algorithms_differ(bag: Path) -> None:
    (bag / "tagmanifest-sha512.txt").unlink()
    (bag / "tagmanifest-md5.txt").write_text("")
    reseal(bag)


def symlink_pointing_outside(bag: Path) -> None:
    os.symlink("/etc/passwd", bag / "data" / "passwd")


def symlink_inside(bag: Path) -> None:
    os.symlink("a.txt", bag / "data" / "link")


def fifo_in_payload(bag: Path) -> None:
    os.mkfifo(bag / "data" / "pipe")


def name_not_utf8(bag: Path) -> None:
    with open(os.path.join(os.fsencode(bag / "data"), b"bad-\xff.txt"), "wb") as f:
        f.write(b"x")


def control_characters_percent_encoded(bag: Path) -> None:
    add_payload(bag, "new\nline", b"lf", listed_as="new%0Aline")
    add_payload(bag, "carriage\rreturn", b"cr", listed_as="carriage%0dreturn")


BAD_BAGS = {
    bagit_txt_missing: {"BAG001", "BAG301"},
    bagit_txt_with_bom: {"BAG003"},
    version_unsupported: {"BAG005"},
    version_missing: {"BAG004", "BAG009"},
    encoding_unknown: {"BAG007"},
    bagit_txt_malformed_line: {"BAG002"},
    payload_dir_missing: {"BAG010", "BAG201", "BAG406"},
    no_payload_manifest: {"BAG101", "BAG203"},
    unsupported_algorithm_beside_supported: {"BAG102"},
    manifest_line_malformed: {"BAG103"},
    manifest_digest_wrong_length: {"BAG103"},
    manifest_binary_marker: {"BAG104"},
    manifest_duplicate_line: {"BAG111"},
    manifest_conflicting_duplicate: {"BAG105"},
    bagit_txt_space_before_colon: {"BAG014"},
    bagit_txt_no_space_after_colon: {"BAG014"},
    bagit_txt_tab_after_colon: {"BAG014"},
    bagit_txt_loose_separator_in_a_0_97_bag: {"BAG015"},
    case_only_duplicate_entry: {"BAG212"},
    case_only_twin_with_another_digest: {"BAG201"},
    bag_info_value_xml_cannot_carry: {"BAG407"},
    bag_info_control_character: {"BAG407"},
    manifest_traversal: {"BAG106"},
    manifest_absolute_path: {"BAG106"},
    payload_manifest_lists_tag_file: {"BAG107"},
    manifest_blank_line: {"BAG108"},
    manifest_non_canonical_path: {"BAG110"},
    manifest_with_bom: {"BAG012"},
    manifest_not_utf8: {"BAG011", "BAG201"},
    manifest_entry_is_directory: {"BAG211"},
    payload_file_missing: {"BAG201", "BAG406"},
    payload_file_changed: {"BAG202"},
    payload_file_unexpected: {"BAG203", "BAG406"},
    payload_not_in_every_manifest: {"BAG204"},
    oxum_wrong: {"BAG406"},
    oxum_malformed: {"BAG405"},
    bag_info_malformed_line: {"BAG401"},
    bag_info_continuation_first: {"BAG401"},
    bag_info_reserved_tag_repeated: {"BAG403"},
    names_collide_under_nfc: {"BAG208"},
    names_collide_under_case_folding: {"BAG209"},
    manifest_name_matches_only_after_nfc: {"BAG205"},
    percent_not_encoded_by_legacy_tool: {"BAG109"},
    raw_percent_sign_in_manifest: {"BAG109"},
    fetch_txt_present: {"BAG501", "BAG201"},
    fetch_entry_not_in_manifest: {"BAG501", "BAG504"},
    fetch_txt_malformed: {"BAG501", "BAG502"},
    fetch_txt_outside_data: {"BAG501", "BAG503"},
    tag_file_missing: {"BAG301"},
    tag_file_changed: {"BAG302"},
    tag_file_unlisted: {"BAG303"},
    tag_manifest_lists_payload: {"BAG304"},
    tag_manifest_algorithms_differ: {"BAG305"},
    symlink_pointing_outside: {"BAG206"},
    symlink_inside: {"BAG206"},
    fifo_in_payload: {"BAG206"},
    name_not_utf8: {"BAG210"},
    control_characters_percent_encoded: set(),
}
"""Builder -> the exact set of codes the damaged bag must produce (errors and warnings)."""

WARNINGS_ONLY = {
    manifest_duplicate_line,
    bagit_txt_loose_separator_in_a_0_97_bag,
    case_only_duplicate_entry,
    unsupported_algorithm_beside_supported,
    manifest_binary_marker,
    manifest_blank_line,
    manifest_non_canonical_path,
    manifest_with_bom,
    bag_info_reserved_tag_repeated,
    names_collide_under_nfc,
    names_collide_under_case_folding,
    manifest_name_matches_only_after_nfc,
    percent_not_encoded_by_legacy_tool,
    raw_percent_sign_in_manifest,
    tag_file_unlisted,
    tag_manifest_lists_payload,
    tag_manifest_algorithms_differ,
    control_characters_percent_encoded,
}


@pytest.fixture
def good_bag(tmp_path: Path) -> Path:
    bag = make_bag(tmp_path)
    report = validate_bag(bag)
    assert report.valid and not report.findings.codes(), report.findings.to_list()
    return bag


@pytest.mark.parametrize("damage", list(BAD_BAGS), ids=lambda f: f.__name__)
def test_bad_bag_produces_exactly_its_codes(good_bag: Path, damage) -> None:
    damage(good_bag)
    report = validate_bag(good_bag)
    assert set(report.findings.codes()) == BAD_BAGS[damage], report.findings.to_list()
    assert report.valid == (damage in WARNINGS_ONLY)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_finding_is_reported_not_only_the_first(good_bag: Path, workers: int) -> None:
    payload_file_changed(good_bag)
    payload_file_unexpected(good_bag)
    (good_bag / "data" / "sub" / "b.txt").unlink()
    report = validate_bag(good_bag, workers=workers)
    by_code = {f.code: f for f in report.findings}
    assert set(by_code) == {"BAG201", "BAG202", "BAG203", "BAG406"}
    changed = [f for f in report.errors if f.code == "BAG202"]
    assert sorted(f.params["algorithm"] for f in changed) == ["sha256", "sha512"]
    assert {f.path for f in changed} == {"data/a.txt"}
    assert by_code["BAG201"].path == "data/sub/b.txt"


def test_unsafe_manifest_paths_are_never_opened(good_bag: Path, monkeypatch) -> None:
    secret = good_bag.parent / "outside.txt"
    secret.write_text("secret")
    manifest_traversal(good_bag)
    opened: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.fsdecode(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    report = validate_bag(good_bag)
    assert report.findings.codes() == ["BAG106"]
    assert not any("outside" in p for p in opened)


def test_symlinked_tag_file_is_not_followed(good_bag: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (good_bag / "bagit.txt").unlink()
    os.symlink(outside, good_bag / "bagit.txt")
    codes = set(validate_bag(good_bag).findings.codes())
    assert {"BAG001", "BAG206"} <= codes


def test_completeness_only_reads_no_payload(good_bag: Path) -> None:
    payload_file_changed(good_bag)
    report = validate_bag(good_bag, completeness_only=True)
    assert report.valid and len(report.files) == 0
    assert not validate_bag(good_bag).valid


def test_report_carries_digests_of_what_was_read(good_bag: Path) -> None:
    report = validate_bag(good_bag)
    records = {r.path: r for r in report.files}
    assert records["data/a.txt"].digests["sha512"] == digest("sha512", PAYLOAD["a.txt"])
    assert records["data/深/层/中文.txt"].size == len(PAYLOAD["深/层/中文.txt"])
    assert "bag-info.txt" in records
    assert report.payload_oxum == f"{sum(map(len, PAYLOAD.values()))}.{len(PAYLOAD)}"
    out = report.to_dict()
    assert out["valid"] is True and out["findings"] == [] and out["bag_info"]["External-Identifier"] == "pkg-0001"


@pytest.mark.parametrize("checksums", [["sha256", "sha512"], ["md5"]])
def test_bags_made_by_bagit_python_validate(tmp_path: Path, checksums: list[str]) -> None:
    source = make_tree(tmp_path / "theirs", {"x.txt": b"x", "deep/er/é.txt": b"e", "空.bin": b""})
    bagit.make_bag(str(source), {"Source-Organization": "Them"}, checksums=checksums)
    report = validate_bag(source)
    assert report.valid and report.findings.codes() == [], report.findings.to_list()
    assert report.payload_algorithms == tuple(checksums)


def test_older_bags_need_each_file_in_one_manifest_only(good_bag: Path) -> None:
    edit_text(good_bag, "bagit.txt", "BagIt-Version: 1.0", "BagIt-Version: 0.97")
    payload_not_in_every_manifest(good_bag)
    report = validate_bag(good_bag)
    assert report.valid and report.version == "0.97" and report.findings.codes() == []


def test_missing_and_non_directory_paths_raise(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        validate_bag(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidRequest):
        validate_bag(tmp_path / "file")


def test_progress_reports_running_totals(good_bag: Path) -> None:
    seen: list[tuple[int, int]] = []
    validate_bag(good_bag, progress=lambda b, f: seen.append((b, f)))
    assert seen[-1][1] == len(PAYLOAD) + 4  # payload files + bagit.txt, bag-info.txt, two manifests


def test_a_case_only_duplicate_names_both_files(good_bag: Path) -> None:
    case_only_duplicate_entry(good_bag)
    (finding,) = validate_bag(good_bag).findings
    assert (finding.code, finding.severity, finding.path, finding.params["present"]) == (
        "BAG212", "warning", "data/A.txt", "data/a.txt"
    )


def _with_manifests_of(bag: Path, algorithms: list[str]) -> Path:
    """Rewrite the bag's payload and tag manifests with ``algorithms`` instead of sha256 + sha512."""
    for prefix in ("manifest-", "tagmanifest-"):
        for old in manifests(bag, prefix).values():
            old.unlink()
    payload = sorted(p for p in (bag / "data").rglob("*") if p.is_file())
    for algorithm in algorithms:
        (bag / f"manifest-{algorithm}.txt").write_text(
            "".join(f"{digest(algorithm, p.read_bytes())}  {p.relative_to(bag).as_posix()}\n" for p in payload),
            encoding="utf-8",
        )
        (bag / f"tagmanifest-{algorithm}.txt").write_text("", encoding="utf-8")
    reseal(bag)
    return bag


@pytest.mark.parametrize("algorithms", [["sha224"], ["sha384"], ["sha224", "sha384"], ["md5", "sha1"]])
def test_every_algorithm_hashlib_guarantees_with_a_bagit_name_is_verified(good_bag: Path, algorithms) -> None:
    _with_manifests_of(good_bag, algorithms)
    report = validate_bag(good_bag)
    assert report.valid and report.findings.codes() == [], report.findings.to_list()
    assert report.payload_algorithms == tuple(algorithms) and report.tag_algorithms == tuple(algorithms)
    bagit.Bag(str(good_bag)).validate()  # bagit-python agrees the bag is valid
    (good_bag / "data" / "a.txt").write_bytes(b"ALPHA\n")
    changed = [f for f in validate_bag(good_bag).errors if f.code == "BAG202"]
    assert sorted(f.params["algorithm"] for f in changed) == sorted(algorithms)


@pytest.mark.parametrize("checksums", [["sha224"], ["sha384"]])
def test_sha224_and_sha384_bags_made_by_bagit_python_validate(tmp_path: Path, checksums: list[str]) -> None:
    source = make_tree(tmp_path / "theirs", {"x.txt": b"x", "deep/er/é.txt": b"e"})
    bagit.make_bag(str(source), {"Source-Organization": "Them"}, checksums=checksums)
    report = validate_bag(source)
    assert report.valid and report.findings.codes() == [], report.findings.to_list()
    assert report.payload_algorithms == tuple(checksums)


def test_sha3_manifests_alone_are_not_guessed_at(good_bag: Path) -> None:
    _with_manifests_of(good_bag, ["sha3_256"])
    report = validate_bag(good_bag)
    assert set(report.findings.codes()) == {"BAG101", "BAG102"} and not report.valid
