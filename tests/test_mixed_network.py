"""Filesystem and S3 nodes in one network: replication, audit and restore across both."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from preservation.audit import audit
from preservation.catalog.models import Node, Package
from preservation.codes import FILE_CHANGED
from preservation.collection import add_collection
from preservation.errors import AccessDenied
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.repository import Repository
from preservation.restore import restore

TARGET = "data/期刊/物理学报/2024/第01期/论文-001.pdf"


@pytest.fixture
def mixed(tmp_path, s3_env, s3_bucket):
    home = tmp_path / "home"
    init_home(home)
    repo = Repository.open(home)
    add_node(repo, "uni", "university", "beijing", (tmp_path / "uni").as_uri())
    add_node(repo, "cas", "cas", "beijing", (tmp_path / "cas").as_uri())
    add_node(repo, "inst-s3", "institute", "wuhan", s3_env.uri(s3_bucket, "inst"))
    add_collection(repo, "journals", "期刊")
    yield repo, s3_env, s3_bucket
    repo.close()


def test_copy_on_s3_audits_clean_and_a_flipped_byte_is_named(mixed, sample_delivery, tmp_path):
    repo, server, bucket = mixed
    result = ingest(repo, sample_delivery, "journals")
    assert result["state"] == "preserved"
    assert audit(repo, package_id=result["package_id"]).ok
    client = server.client()
    key = f"inst/{result['package_id']}/{TARGET}"
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[1234] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    client.close()
    report = audit(repo, package_id=result["package_id"])
    [bad] = report.failed
    assert bad.node == "inst-s3"
    assert [(f.code, f.path) for f in bad.fixity.findings] == [(FILE_CHANGED, TARGET)]
    out = restore(repo, result["package_id"], tmp_path / "restored")
    original = (sample_delivery / TARGET.removeprefix("data/")).read_bytes()
    assert hashlib.sha256((tmp_path / "restored" / TARGET).read_bytes()).digest() == hashlib.sha256(original).digest()
    assert out["files"] > 9


def test_wrong_s3_credentials_are_refused_and_change_nothing(mixed, monkeypatch, tmp_path):
    repo, server, bucket = mixed
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "definitely-not-the-secret")
    with repo.catalog.session() as s:
        nodes_before = s.scalar(select(func.count()).select_from(Node))
    with pytest.raises(AccessDenied) as e:
        add_node(repo, "inst-2", "institute", "shanghai", server.uri(bucket, "other"))
    assert "credentials" in str(e.value).lower()
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Node)) == nodes_before
        assert s.scalar(select(func.count()).select_from(Package)) == 0
