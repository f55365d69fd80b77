"""The file_formats rows ingest writes through the driver read back as SQLAlchemy would have written them."""

from __future__ import annotations

import random
import zipfile

from sqlalchemy import select

from preservation.catalog.format_models import FileFormat
from preservation.ingest import ingest

from ..fixtures import make_repo
from . import validation_samples as samples


def test_records_read_back_on_sqlite_and_postgresql(catalog_url, tmp_path):
    delivery = tmp_path / "delivery"
    (delivery / "a").mkdir(parents=True)
    samples.valid_pdf(delivery / "a" / "valid.pdf")
    samples.encrypted_pdf(delivery / "a" / "encrypted.pdf")
    (delivery / "a" / "really-a-zip.pdf").write_bytes(
        samples.zip_bytes([("x.txt", b"not a PDF " * 50, zipfile.ZIP_DEFLATED)]))
    for i in range(3):  # three files of one identification share a row template
        (delivery / "a" / f"noise-{i}.bin").write_bytes(random.Random(i).randbytes(2000))
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        package_id = ingest(repo, str(delivery), "journals", replicate=False)["package_id"]
        with repo.catalog.session() as s:
            rows = {r.path: r for r in s.scalars(select(FileFormat).where(FileFormat.package_id == package_id))}
    finally:
        repo.close()
    assert sorted(rows) == ["data/a/encrypted.pdf", "data/a/noise-0.bin", "data/a/noise-1.bin", "data/a/noise-2.bin",
                            "data/a/really-a-zip.pdf", "data/a/valid.pdf"]
    locked = rows["data/a/encrypted.pdf"]
    assert locked.encrypted is True and locked.validation_kind == "pdf"
    assert rows["data/a/valid.pdf"].encrypted is False and rows["data/a/valid.pdf"].validation == "valid"
    zipped = rows["data/a/really-a-zip.pdf"]
    assert zipped.puid == "x-fmt/263" and zipped.details.get("extension_mismatch") is True
    assert any(f["code"] == "FMT002" for f in zipped.findings)
    noise = [rows[f"data/a/noise-{i}.bin"] for i in range(3)]
    assert all(r.basis == "extension" and r.size == 2000 and r.identified_at is not None for r in noise)
    assert noise[0].findings == noise[2].findings and {f["code"] for f in noise[0].findings} >= {"FMT001"}
    assert isinstance(noise[0].details, dict) and isinstance(noise[0].findings, list)
