"""Formats at ingest: every file of a delivery identified and, where its format needs it, validated.

Each file is built by the test (no binary is kept in the repository): PDFs
valid, encrypted and truncated, JATS that passes and fails, a broken EPUB,
PNGs good and with a bad CRC, a ``.pdf`` that is really a zip and a file no
signature matches.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import Event, Package
from preservation.errors import DeliveryRejected
from preservation.formats.analyser import FORMAT_IDENTIFICATION
from preservation.ingest import ingest

from ..fixtures import make_repo
from . import validation_samples as samples

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "preservation" / "policies" / "default.yaml"


def format_delivery(root: Path) -> Path:
    """A delivery with one file of each case issue 17 names."""
    (root / "articles").mkdir(parents=True)
    (root / "books").mkdir()
    (root / "images").mkdir()
    samples.valid_pdf(root / "articles" / "valid.pdf")
    samples.encrypted_pdf(root / "articles" / "encrypted.pdf")
    samples.truncated_pdf(root / "articles" / "truncated.pdf")
    (root / "articles" / "jats-good.xml").write_text(samples.JATS_GOOD, encoding="utf-8")
    # an <article> that says it is JATS (article-type), so the JATS rules apply, and fails them
    jats_bad = samples.JATS_BAD.replace("<article>", '<article article-type="research-article">')
    (root / "articles" / "jats-bad.xml").write_text(jats_bad, encoding="utf-8")
    samples.corrupt_member_epub(root / "books" / "broken.epub")
    samples.png(root / "images" / "good.png")
    samples.png_bad_crc(root / "images" / "bad-crc.png")
    (root / "articles" / "really-a-zip.pdf").write_bytes(
        samples.zip_bytes([("article.txt", b"not a PDF at all " * 50, zipfile.ZIP_DEFLATED)]))
    (root / "mystery.zz9q").write_bytes(random.Random(7).randbytes(3000))
    return root


def policy_with(tmp_path: Path, **formats) -> Path:
    """The default policy with some of its ``formats`` settings changed."""
    import yaml

    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data["formats"].update(formats)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def rows(repo, package_id: str) -> dict[str, FileFormat]:
    with repo.catalog.session() as s:
        found = s.scalars(select(FileFormat).where(FileFormat.package_id == package_id)).all()
        s.expunge_all()
        return {r.path: r for r in found}


@pytest.fixture
def ingested(repo, tmp_path):
    result = ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
    assert result["state"] == "preserved"
    return result


def test_every_payload_file_has_its_format_record(repo, ingested):
    found = rows(repo, ingested["package_id"])
    assert sorted(found) == sorted([
        "data/articles/valid.pdf", "data/articles/encrypted.pdf", "data/articles/truncated.pdf",
        "data/articles/jats-good.xml", "data/articles/jats-bad.xml", "data/books/broken.epub",
        "data/images/good.png", "data/images/bad-crc.png", "data/articles/really-a-zip.pdf", "data/mystery.zz9q",
    ])
    for row in found.values():
        assert row.tool == "fido" and row.tool_version and row.signature_version.startswith("v")
        assert row.identified_at is not None and row.size > 0


@pytest.mark.parametrize("path, mime, basis, validation, encrypted", [
    ("data/articles/valid.pdf", "application/pdf", "signature", "valid", False),
    ("data/articles/encrypted.pdf", "application/pdf", "signature", "valid", True),
    # PRONOM's PDF signatures want %%EOF near the end: a truncated PDF is a PDF by its name only
    ("data/articles/truncated.pdf", "application/pdf", "extension", "invalid", False),
    ("data/articles/jats-good.xml", "application/xml", "signature", "valid", False),
    ("data/articles/jats-bad.xml", "application/xml", "signature", "invalid", False),
    ("data/books/broken.epub", "application/epub+zip", "signature", "invalid", False),
    ("data/images/good.png", "image/png", "signature", "valid", False),
    ("data/images/bad-crc.png", "image/png", "signature", "invalid", False),
    ("data/articles/really-a-zip.pdf", "application/zip", "signature", None, False),
    ("data/mystery.zz9q", "", "none", None, False),
])
def test_each_file_is_what_its_bytes_say(repo, ingested, path, mime, basis, validation, encrypted):
    row = rows(repo, ingested["package_id"])[path]
    assert (row.mime, row.basis, row.validation, row.encrypted) == (mime, basis, validation, encrypted)


def test_the_record_keeps_puids_validation_details_and_findings(repo, ingested):
    found = rows(repo, ingested["package_id"])
    assert found["data/images/good.png"].puid == "fmt/11"
    assert found["data/articles/really-a-zip.pdf"].puid == "x-fmt/263"
    assert found["data/articles/really-a-zip.pdf"].details["extension_mismatch"] is True
    assert found["data/mystery.zz9q"].puid is None
    truncated = found["data/articles/truncated.pdf"]
    assert truncated.validation_kind == "pdf" and "FMV103" in [f["code"] for f in truncated.findings]
    assert "FMV602" in [f["code"] for f in found["data/images/bad-crc.png"].findings] or \
        "FMV601" in [f["code"] for f in found["data/images/bad-crc.png"].findings]
    assert found["data/articles/encrypted.pdf"].drm is True  # copying and printing denied


def test_the_ingest_result_warns_and_names_the_package_of_locked_files(repo, ingested):
    warnings = ingested["warnings"]
    by_code = {}
    for w in warnings:
        by_code.setdefault(w["code"], []).append(w)
    assert [w["path"] for w in by_code["FMT002"]] == ["data/articles/really-a-zip.pdf"]
    assert [w["path"] for w in by_code["FMT001"]] == ["data/articles/truncated.pdf", "data/mystery.zz9q"]
    (locked,) = by_code["FMT003"]
    assert locked["path"] == "data/articles/encrypted.pdf"
    assert ingested["package_id"] in locked["message"] and locked["params"]["package_id"] == ingested["package_id"]
    assert all(w["severity"] == "warning" for w in warnings)
    summary = ingested["content"]["formats"]
    assert summary["files"] == 10 and summary["locked"] == 1
    assert summary["by_basis"] == {"extension": 1, "none": 1, "signature": 8}


def test_an_event_records_what_identification_found(repo, ingested):
    with repo.catalog.session() as s:
        (event,) = s.scalars(select(Event).where(Event.package_id == ingested["package_id"],
                                                 Event.event_type == FORMAT_IDENTIFICATION)).all()
        assert event.outcome == "warning"  # a locked file
        assert event.agent.startswith("preserve (fido ")  # this system's software agent, naming the tool
        assert event.detail["locked_files"] == ["data/articles/encrypted.pdf"]
        assert event.detail["signature_version"].startswith("v")


def test_an_unacceptable_format_refuses_the_delivery_and_leaves_nothing(tmp_path):
    repo = make_repo(tmp_path / "home", policy=policy_with(tmp_path, unacceptable=["encrypted"]))
    try:
        with pytest.raises(DeliveryRejected) as refused:
            ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
        codes = [f.code for f in refused.value.findings if f.is_error]
        assert codes == ["FMT005"]
        assert refused.value.findings[[f.code for f in refused.value.findings].index("FMT005")].path \
            == "data/articles/encrypted.pdf"
        with repo.catalog.session() as s:
            assert s.scalar(select(func.count()).select_from(Package)) == 0
            assert s.scalar(select(func.count()).select_from(FileFormat)) == 0
        assert list(repo.staging_dir.iterdir()) == []
    finally:
        repo.close()


def test_the_policy_can_make_a_validation_finding_refuse_the_delivery(tmp_path):
    repo = make_repo(tmp_path / "home", policy=policy_with(tmp_path, refuse=["FMV103"]))
    try:
        with pytest.raises(DeliveryRejected) as refused:
            ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
        errors = [f for f in refused.value.findings if f.is_error]
        assert [(f.code, f.path) for f in errors] == [("FMV103", "data/articles/truncated.pdf")]
        assert "the format policy refuses it" in errors[0].message
    finally:
        repo.close()


def test_signature_files_that_do_not_load_cost_the_analysis_never_the_package(repo, tmp_path, monkeypatch):
    from preservation.formats import analyser

    def broken():
        raise OSError("formats-v109.xml: no such file\x1b[31m")

    monkeypatch.setattr(analyser, "signatures", broken)
    result = ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
    assert result["state"] == "preserved"
    (failed,) = [w for w in result["warnings"] if w["code"] == "CA001"]
    assert "format identification is unavailable" in failed["message"] and "\x1b" not in failed["message"]
    assert rows(repo, result["package_id"]) == {}
    assert result["content"]["formats"]["files"] == 0


def test_identification_off_records_nothing(tmp_path):
    repo = make_repo(tmp_path / "home", policy=policy_with(tmp_path, identify=False))
    try:
        result = ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
        assert result["state"] == "preserved"
        assert rows(repo, result["package_id"]) == {}
        assert result["content"]["formats"]["files"] == 0
    finally:
        repo.close()


def test_validation_off_still_identifies(tmp_path):
    repo = make_repo(tmp_path / "home", policy=policy_with(tmp_path, validate_files=False))
    try:
        result = ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
        found = rows(repo, result["package_id"])
        assert len(found) == 10 and all(r.validation is None for r in found.values())
        assert found["data/articles/valid.pdf"].mime == "application/pdf"
    finally:
        repo.close()


def test_a_hostile_pdf_is_stopped_by_the_limits_and_ingest_goes_on(tmp_path):
    root = tmp_path / "delivery"
    root.mkdir()
    samples.exploding_pdf(root / "bomb.pdf")
    samples.valid_pdf(root / "after.pdf")
    repo = make_repo(tmp_path / "home", policy=policy_with(tmp_path, memory_limit_mib=256, workers=1))
    try:
        result = ingest(repo, root, "journals")
        assert result["state"] == "preserved"
        found = rows(repo, result["package_id"])
        assert found["data/bomb.pdf"].validation == "limit"
        assert [f["code"] for f in found["data/bomb.pdf"].findings][0] == "FMV002"
        assert found["data/after.pdf"].validation == "valid"
        assert 0 < result["content"]["formats"]["validation_peak_rss_bytes"] <= 256 << 20
    finally:
        repo.close()


def test_many_files_of_one_warning_are_counted_not_listed(repo, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    rng = random.Random(5)
    for i in range(30):
        (root / f"blob-{i:02d}.zz9q").write_bytes(rng.randbytes(200))
    result = ingest(repo, root, "journals")
    listed = [w for w in result["warnings"] if w["code"] == "FMT001"]
    assert len(listed) == 20
    (more,) = [w for w in result["warnings"] if w["code"] == "FMT006" and w["params"]["finding"] == "FMT001"]
    assert more["params"]["more"] == 10 and more["params"]["files"] == 30
    assert len(rows(repo, result["package_id"])) == 30  # the catalog keeps every file's record
