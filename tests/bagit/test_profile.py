"""The BagIt profile in policies/ and profile checks folded into validate_bag."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import bagit
import pytest

from preservation.bagit import BagItProfile, default_profile, load_profile, validate_bag, validate_profile
from preservation.errors import PolicyError

from .builders import add_payload, append_line, edit_text, make_bag, make_tree, reseal


@pytest.fixture
def profile() -> BagItProfile:
    return load_profile(default_profile())


def test_the_shipped_profile_says_what_packages_must_be(profile: BagItProfile) -> None:
    assert profile.identifier == "urn:preserve:bagit-profile:package:1.0"
    assert profile.manifests_required == ("sha256", "sha512") == profile.tag_manifests_required
    assert profile.accept_versions == ("1.0",) and not profile.allow_fetch and profile.serialization == "forbidden"
    assert {k for k, r in profile.bag_info.items() if r.required} == {
        "External-Identifier", "Bag-Group-Identifier", "Source-Organization", "Bagging-Date", "Payload-Oxum", "Bag-Size",
    }


def test_our_bags_satisfy_it(tmp_path: Path, profile: BagItProfile) -> None:
    report = validate_bag(make_bag(tmp_path), profile=profile)
    assert report.valid and report.findings.codes() == [] and report.profile == profile.identifier


def test_bagit_python_bags_break_it_in_every_way_they_differ(tmp_path: Path, profile: BagItProfile) -> None:
    source = make_tree(tmp_path / "theirs", {"x": b"x"})
    bagit.make_bag(str(source), {"Source-Organization": "Them"}, checksums=["md5"])
    (source / "fetch.txt").write_text("")
    report = validate_bag(source, profile=default_profile())
    profile_codes = sorted(f.code for f in report.findings if f.code.startswith("PRF"))
    assert profile_codes == ["PRF001", "PRF001", "PRF001", "PRF004", "PRF004", "PRF006", "PRF006", "PRF008", "PRF009"]
    assert sorted(f.params["label"] for f in report.findings if f.code == "PRF001") == [
        "Bag-Group-Identifier", "Bag-Size", "External-Identifier",
    ]


def test_repeated_tags_and_collisions_break_it(tmp_path: Path, profile: BagItProfile) -> None:
    bag = make_bag(tmp_path)
    append_line(bag, "bag-info.txt", "External-Identifier: pkg-0002")
    add_payload(bag, unicodedata.normalize("NFC", "é"), b"1")
    add_payload(bag, unicodedata.normalize("NFD", "é"), b"2")
    findings = validate_profile(bag, profile)
    assert sorted(findings.codes()) == ["PRF003", "PRF013"]


def test_validate_profile_takes_a_report(tmp_path: Path, profile: BagItProfile) -> None:
    bag = make_bag(tmp_path)
    edit_text(bag, "bag-info.txt", "Bag-Group-Identifier: springer-journals\n", "")
    report = validate_bag(bag)
    assert report.valid
    assert validate_profile(report, profile).codes() == ["PRF001"]


def test_values_tag_files_and_payload_rules(tmp_path: Path) -> None:
    bag = make_bag(tmp_path)
    (bag / "extra.txt").write_text("x")
    reseal(bag)
    profile = BagItProfile.from_dict(
        {
            "BagIt-Profile-Info": {"BagIt-Profile-Identifier": "urn:test"},
            "Bag-Info": {"Source-Organization": {"values": ["Elsevier"]}},
            "Tag-Files-Required": ["mets.xml"],
            "Tag-Files-Allowed": [],
            "Payload-Files-Required": ["data/a.txt", "data/missing.txt"],
            "Payload-Files-Allowed": ["data/a.txt", "data/sub/*", "data/深/*", "data/empty"],
            "Manifests-Allowed": ["sha512"],
            "Serialization": "required",
        },
        source="test",
    )
    codes = sorted(validate_bag(bag, profile=profile).findings.codes())
    assert codes == ["PRF002", "PRF005", "PRF010", "PRF011", "PRF012", "PRF014"]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"Bag-Info": {}},
        {"BagIt-Profile-Info": {"BagIt-Profile-Identifier": "x"}, "Manifests-Required": "sha256"},
        {"BagIt-Profile-Info": {"BagIt-Profile-Identifier": "x"}, "Allow-Fetch.txt": "no"},
        {"BagIt-Profile-Info": {"BagIt-Profile-Identifier": "x"}, "Serialisation": "forbidden"},
        {"BagIt-Profile-Info": {"BagIt-Profile-Identifier": "x"}, "Bag-Info": {"X": {"required": "yes"}}},
    ],
)
def test_malformed_profiles_are_policy_errors(tmp_path: Path, document) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PolicyError):
        load_profile(path)


def test_unreadable_profiles_are_policy_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    for path in (tmp_path / "broken.json", tmp_path / "absent.json"):
        with pytest.raises(PolicyError):
            load_profile(path)
