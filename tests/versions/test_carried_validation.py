"""Under the default policy (format validation on) a new version's unchanged files are neither staged nor validated
again: their validation in the version before is carried over, marked so, and only by this validator, within the
package."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sqlalchemy import select, update

from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import Event, Package
from preservation.collection import add_collection
from preservation.errors import VersionRefused
from preservation.formats import analyser as format_analyser
from preservation.formats.analyser import FORMAT_IDENTIFICATION, FormatAnalyser
from preservation.formats.identify import Signatures, signatures
from preservation.formats.validation import Validator
from preservation.formats.validation.identity import validator_identity
from preservation import ingest as ingest_module
from preservation.ingest import ingest

from ..fixtures import make_repo
from ..formats.validation_samples import png, truncated_pdf, valid_pdf
from .helpers import package_ids, write_delivery
from .test_match_versions import IDENT, matching  # noqa: F401 - the fixture: a policy that matches on identifier

VALIDATED = ("data/good.pdf", "data/bad.pdf", "data/pic.png")
"""The files of the first delivery that validation opens (notes.txt is not validated)."""


@pytest.fixture
def repo(tmp_path, catalog_url):
    """The repository of these tests, its catalog on SQLite and on PostgreSQL."""
    r = make_repo(tmp_path / "home", catalog_url)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, bytes]:
    """The first delivery: a valid PDF, an invalid (truncated) one, a PNG, a text file and a PDF to be edited."""
    root = tmp_path_factory.mktemp("samples")
    return {
        "good.pdf": valid_pdf(root / "good.pdf").read_bytes(),
        "bad.pdf": truncated_pdf(root / "bad.pdf").read_bytes(),
        "pic.png": png(root / "pic.png").read_bytes(),
        "notes.txt": b"not a validated format\n",
        "edit.pdf": valid_pdf(root / "edit.pdf", pages=2).read_bytes(),
    }


KEPT = ("data/good.pdf", "data/bad.pdf")
"""The validated files that version 2 (:func:`_edited`) leaves unchanged."""
CHANGED = ["data/edit.pdf", "data/new.pdf", "data/pic.png"]
"""The files version 2 changes or adds (and so stages and validates)."""


def _edited(first: dict[str, bytes], samples_dir: Path) -> dict[str, bytes]:
    """Version 2: edit.pdf truncated (now invalid), one byte of pic.png's pixels changed (the same size: its
    digests are asked for, and differ; now invalid), new.pdf added, the rest unchanged."""
    files = dict(first)
    files["edit.pdf"] = first["edit.pdf"][: len(first["edit.pdf"]) * 2 // 3]
    picture = bytearray(first["pic.png"])
    idat = picture.index(b"IDAT") + 8
    picture[idat] ^= 0xFF
    files["pic.png"] = bytes(picture)
    files["new.pdf"] = valid_pdf(samples_dir / "new.pdf", pages=4).read_bytes()
    return files


@pytest.fixture
def validated_paths(monkeypatch) -> list[str]:
    """Every payload path handed to a validating process during the test."""
    seen: list[str] = []
    real = Validator.validate_many

    def spy(self, items):
        def noted():
            for key, path, kind in items:
                seen.append(key)
                yield key, path, kind
        return real(self, noted())

    monkeypatch.setattr(Validator, "validate_many", spy)
    return seen


@pytest.fixture
def identified_names(monkeypatch) -> list[str]:
    """The name of every file identified from its bytes during the test."""
    seen: list[str] = []
    real = Signatures.identify

    def spy(self, head, tail, size, name):
        seen.append(name)
        return real(self, head, tail, size, name)

    monkeypatch.setattr(Signatures, "identify", spy)
    return seen


def _identification(row: FileFormat) -> tuple:
    """What identification said of a file, and when."""
    return (row.puid, row.mime, row.format_name, row.format_version, row.basis, row.tool, row.tool_version,
            row.signature_version, row.identified_at, {k: v for k, v in row.details.items()
                                                       if k in ("alternatives", "extension_mismatch", "notes")})


def _rows(repo, package_id: str) -> dict[str, FileFormat]:
    with repo.catalog.session() as s:
        rows = s.scalars(select(FileFormat).where(FileFormat.package_id == package_id)).all()
        s.expunge_all()
    return {row.path: row for row in rows}


def _staged(repo, package_id: str) -> dict[str, int]:
    """The staged bag's payload files and their sizes: every byte staging wrote for the payload."""
    with repo.catalog.session() as s:
        staged = Path(s.get(Package, package_id).staging_path)
    return {p.relative_to(staged).as_posix(): p.stat().st_size for p in (staged / "data").rglob("*") if p.is_file()}


def _validation(row: FileFormat) -> tuple:
    """What validation said of a file, as its row holds it (its provenance apart)."""
    return (row.validation, row.validation_kind, row.encrypted, row.drm, (row.details or {}).get("validation"),
            row.findings, row.details["validated"]["findings"], row.details["validated"]["validator"])


def _carried_event(repo, package_id: str) -> dict:
    with repo.catalog.session() as s:
        event = s.scalars(select(Event).where(Event.package_id == package_id,
                                              Event.event_type == FORMAT_IDENTIFICATION)).one()
        return event.detail


def test_unchanged_files_are_not_staged_nor_validated_again_and_their_validation_is_carried(
        repo, tmp_path, samples, validated_paths, identified_names):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", samples), "journals")
    assert v1["state"] == "preserved"
    assert sorted(validated_paths) == sorted([*VALIDATED, "data/edit.pdf"])
    first = _rows(repo, v1["package_id"])
    assert first["data/good.pdf"].validation == "valid" and first["data/bad.pdf"].validation == "invalid"
    assert "carried_from" not in first["data/good.pdf"].details["validated"]

    assert sorted(identified_names) == sorted(samples)
    validated_paths.clear()
    identified_names.clear()
    later = _edited(samples, tmp_path)
    v2 = ingest(repo, write_delivery(tmp_path / "v2", later), "journals", version_of=v1["package_id"],
                replicate=False)
    # staging wrote the changed and the added files only; only those were identified and validated
    assert _staged(repo, v2["package_id"]) == {path: len(later[path[5:]]) for path in CHANGED}
    assert sorted(validated_paths) == CHANGED
    assert sorted(identified_names) == sorted(path.rsplit("/", 1)[1] for path in CHANGED)
    second = _rows(repo, v2["package_id"])
    assert set(second) == {f"data/{rel}" for rel in later}
    for path in (*KEPT, "data/notes.txt"):  # identification carried too, with the time it was made
        assert _identification(second[path]) == _identification(first[path])
        assert second[path].details["identified"] == {"carried_from": {"package_id": v1["package_id"], "version": 1}}
    for path in CHANGED:
        assert "identified" not in second[path].details
    for path in KEPT:  # the same results, marked as carried from version 1
        assert _validation(second[path]) == _validation(first[path])
        assert second[path].details["validated"]["carried_from"] == {"package_id": v1["package_id"], "version": 1}
    assert second["data/bad.pdf"].validation == "invalid" and second["data/bad.pdf"].findings
    # a file changed in bytes is validated afresh: the truncated edit.pdf is invalid now
    assert second["data/edit.pdf"].validation == "invalid" and first["data/edit.pdf"].validation == "valid"
    assert second["data/pic.png"].validation == "invalid" and first["data/pic.png"].validation == "valid"
    for path in CHANGED:
        assert "carried_from" not in second[path].details["validated"]
    assert second["data/notes.txt"].validation is None
    assert _carried_event(repo, v2["package_id"])["identification_carried"] == {"files": 3}
    carried = _carried_event(repo, v2["package_id"])["validation_carried"]
    assert carried["files"] == 2 and carried["from"] == [{"package_id": v1["package_id"], "version": 1}]
    assert _carried_event(repo, v2["package_id"])["validator"] == validator_identity()


def test_a_carried_validation_names_the_version_that_made_it(repo, tmp_path, samples, validated_paths):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", samples), "journals")
    later = _edited(samples, tmp_path)
    v2 = ingest(repo, write_delivery(tmp_path / "v2", later), "journals", version_of=v1["package_id"])
    assert v2["state"] == "preserved"
    validated_paths.clear()
    v3 = ingest(repo, write_delivery(tmp_path / "v3", later), "journals", version_of=v1["package_id"],
                replicate=False)
    assert validated_paths == [] and _staged(repo, v3["package_id"]) == {}
    third = _rows(repo, v3["package_id"])
    assert third["data/good.pdf"].details["validated"]["carried_from"] == {"package_id": v1["package_id"],
                                                                          "version": 1}
    assert third["data/edit.pdf"].details["validated"]["carried_from"] == {"package_id": v2["package_id"],
                                                                          "version": 2}
    assert third["data/good.pdf"].details["identified"]["carried_from"] == {"package_id": v1["package_id"],
                                                                           "version": 1}
    assert third["data/edit.pdf"].details["identified"]["carried_from"] == {"package_id": v2["package_id"],
                                                                           "version": 2}
    assert _carried_event(repo, v3["package_id"])["validation_carried"]["from"] == [
        {"package_id": v1["package_id"], "version": 1}, {"package_id": v2["package_id"], "version": 2}]


def _other_signatures():
    changed = copy.copy(signatures())
    changed.signature_version = f"{changed.signature_version}-next"
    return changed


@pytest.mark.parametrize("change", ["validator", "signatures"])
def test_another_validator_or_signature_table_validates_again(repo, tmp_path, samples, validated_paths,
                                                              monkeypatch, change):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", samples), "journals")
    validated_paths.clear()
    if change == "validator":
        monkeypatch.setattr(format_analyser, "validator_identity", lambda: "checks 2; pikepdf 99.0")
        analysers = None  # the default ones, made after the change
    else:
        analysers = [FormatAnalyser(repo.policy.formats, known=_other_signatures())]
    v2 = ingest(repo, write_delivery(tmp_path / "v2", samples), "journals", version_of=v1["package_id"],
                replicate=False, analysers=analysers)
    assert sorted(validated_paths) == sorted([*VALIDATED, "data/edit.pdf"])
    assert set(_staged(repo, v2["package_id"])) >= set(VALIDATED)
    second = _rows(repo, v2["package_id"])
    for path in VALIDATED:
        assert "carried_from" not in second[path].details["validated"]
    assert "validation_carried" not in _carried_event(repo, v2["package_id"])
    if change == "signatures":  # identified again, by the other signature table
        assert second["data/notes.txt"].signature_version.endswith("-next")
        assert all("identified" not in row.details for row in second.values())
    if change == "validator":
        assert second["data/good.pdf"].details["validated"]["validator"] == "checks 2; pikepdf 99.0"


def test_a_validation_never_crosses_from_another_package(repo, tmp_path, samples, validated_paths):
    add_collection(repo, "books", "Books", publisher="Other Press", licence="LIC-2")
    other = ingest(repo, write_delivery(tmp_path / "other", samples), "books")
    # the other package's record of good.pdf says something no validator said: if it were taken, it would show
    with repo.catalog.session() as s:
        row = s.get(FileFormat, (other["package_id"], "data/good.pdf"))
        forged = {**row.details, "validated": {**row.details["validated"], "findings": [["FMV001", "forged"]]}}
        s.execute(update(FileFormat).where(FileFormat.package_id == other["package_id"],
                                           FileFormat.path == "data/good.pdf")
                  .values(details=forged, validation="invalid"))
        s.commit()
    v1 = ingest(repo, write_delivery(tmp_path / "v1", samples), "journals", analysers=[])  # no format records
    validated_paths.clear()
    v2 = ingest(repo, write_delivery(tmp_path / "v2", samples), "journals", version_of=v1["package_id"],
                replicate=False)
    # the version before knows nothing of these formats: staged and validated afresh, whatever another holds
    assert sorted(validated_paths) == sorted([*VALIDATED, "data/edit.pdf"])
    assert set(_staged(repo, v2["package_id"])) >= set(VALIDATED)
    good = _rows(repo, v2["package_id"])["data/good.pdf"]
    assert good.validation == "valid" and "carried_from" not in good.details["validated"]
    assert ["FMV001", "forged"] not in good.details["validated"]["findings"]
    # a version of the other package carries its own record (forged here), never this lineage's
    validated_paths.clear()
    o2 = ingest(repo, write_delivery(tmp_path / "o2", samples), "books", version_of=other["package_id"],
                replicate=False)
    carried = _rows(repo, o2["package_id"])["data/good.pdf"].details["validated"]
    assert carried["carried_from"] == {"package_id": other["package_id"], "version": 1}
    assert "data/good.pdf" not in validated_paths


def test_a_version_matched_by_the_policy_is_staged_as_one_named_is(matching, tmp_path, samples, validated_paths):
    v1 = ingest(matching, write_delivery(tmp_path / "v1", samples), "journals", bag_info=IDENT)
    validated_paths.clear()
    later = _edited(samples, tmp_path)
    v2 = ingest(matching, write_delivery(tmp_path / "v2", later), "journals", bag_info=IDENT, replicate=False)
    assert v2["matched"]["package_id"] == v1["package_id"] and v2["version"]["number"] == 2
    assert _staged(matching, v2["package_id"]) == {path: len(later[path[5:]]) for path in CHANGED}
    assert sorted(validated_paths) == CHANGED
    assert _rows(matching, v2["package_id"])["data/good.pdf"].details["validated"]["carried_from"] == {
        "package_id": v1["package_id"], "version": 1}


def test_a_match_that_changes_once_bagged_refuses_the_delivery(matching, tmp_path, samples, monkeypatch):
    v1 = ingest(matching, write_delivery(tmp_path / "v1", samples), "journals", bag_info=IDENT)
    real = ingest_module.match_delivery
    answers = iter([real, lambda *a, **k: None])  # before bagging: the package; once bagged: none
    monkeypatch.setattr(ingest_module, "match_delivery", lambda *a, **k: next(answers)(*a, **k))
    before = package_ids(matching)
    with pytest.raises(VersionRefused, match="ingest it again"):
        ingest(matching, write_delivery(tmp_path / "v2", samples), "journals", bag_info=IDENT)
    assert package_ids(matching) == before and v1["package_id"] in before
    left = [p.name for p in matching.staging_dir.iterdir() if not p.name.startswith(".")]
    assert [name for name in left if name.split(".")[0] not in before] == []  # the refused bag was removed


class _ReadsStaged:
    """An analyser that opens staged files and says nothing of what it can do without."""

    name = "reads-staged"

    def observer(self, path, size):
        return None

    def finish(self, bag_root, findings):
        self.opened = sorted(p.relative_to(bag_root).as_posix() for p in Path(bag_root, "data").rglob("*")
                             if p.is_file())

    def register(self, session, package_id, findings):
        return {}


def test_an_analyser_that_reads_staged_files_without_saying_what_it_can_do_without_gets_every_file(
        repo, tmp_path, samples):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", samples), "journals")
    reader = _ReadsStaged()
    v2 = ingest(repo, write_delivery(tmp_path / "v2", samples), "journals", version_of=v1["package_id"],
                replicate=False, analysers=[FormatAnalyser(repo.policy.formats), reader])
    assert reader.opened == sorted(f"data/{rel}" for rel in samples)
    assert _staged(repo, v2["package_id"]) == {f"data/{rel}": len(data) for rel, data in samples.items()}
