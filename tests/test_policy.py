"""Policies load into typed objects; a bad policy is refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from preservation.errors import PolicyError
from preservation.policy import load_policy
from preservation.settings import DEFAULT_POLICY


def test_default_policy():
    p = load_policy(DEFAULT_POLICY)
    assert p.label == "default@1"
    assert p.replication.copies == 3
    assert p.replication.organisation_types == ["university", "cas", "institute"]
    assert p.replication.min_regions == 2
    assert p.digests == ["sha256", "sha512"]
    assert p.audit.interval_days == 90
    assert len(p.source_digest) == 64


def _write(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    change(data)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


BAD_POLICIES = {
    "copies_zero": (lambda d: d["replication"].update(copies=0), "replication.copies"),
    "unknown_org_type": (lambda d: d["replication"].update(organisation_types=["university", "company"]),
                         "replication.organisation_types"),
    "more_types_than_copies": (lambda d: d["replication"].update(copies=2), "replication"),
    "regions_exceed_copies": (lambda d: d["replication"].update(min_regions=9), "replication"),
    "no_sha512": (lambda d: d.update(digests=["sha256"]), "digests"),
    "unknown_digest": (lambda d: d.update(digests=["sha256", "sha512", "crc32"]), "digests"),
    "negative_interval": (lambda d: d["audit"].update(interval_days=-1), "audit.interval_days"),
    "audit_digest_not_kept": (lambda d: d["audit"].update(digest="md5"), "(top level)"),
    "typo_field": (lambda d: d["audit"].update(intervall_days=30), "audit.intervall_days"),
    "retention_without_days": (lambda d: d["retention"].update(mode="COMPLIANCE", days=0), "retention"),
    "bad_access_mode": (lambda d: d["access"].update(default_mode="grey"), "access.default_mode"),
    "missing_replication": (lambda d: d.pop("replication"), "replication"),
}


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_bad_policy_names_the_field(tmp_path, case):
    change, field = BAD_POLICIES[case]
    with pytest.raises(PolicyError) as e:
        load_policy(_write(tmp_path, change))
    assert f"'{field}" in str(e.value), str(e.value)
    assert e.value.code == "E101"


@pytest.mark.parametrize("content", [b"", b"- a list\n", b"name: [unclosed\n", b"\xff\xfe not utf-8"])
def test_unreadable_policy_files(tmp_path, content):
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(PolicyError):
        load_policy(path)


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(e.value)
