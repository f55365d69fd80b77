"""Where formats show: `preserve formats report` (table, JSON, CSV), `formats show`, `status`, the PREMIS export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from lxml import etree

from preservation.collection import add_collection
from preservation.formats.report import CSV_COLUMNS
from preservation.ingest import ingest
from preservation.premis import PREMIS_NS

from ..fixtures import make_repo
from .test_identify_ingest import format_delivery, policy_with

NS = {"p": PREMIS_NS}


@pytest.fixture
def home(tmp_path):
    """A repository holding the issue-17 delivery; yields (home directory, package id)."""
    repo = make_repo(tmp_path / "home")
    try:
        result = ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
        assert result["state"] == "preserved"
        add_collection(repo, "empty", "Nothing yet", publisher="P", licence="L")
    finally:
        repo.close()
    return tmp_path / "home", result["package_id"]


def _by_puid(report: dict) -> dict:
    return {f["puid"]: f for f in report["formats"]}


def test_the_report_gives_files_and_bytes_per_format_and_what_is_at_risk(home, run_cli):
    path, _ = home
    report = run_cli("formats", "report", "--json", home=path).json()
    totals = report["totals"]
    assert totals["files"] == 10
    assert totals["unidentified"] == 2  # the truncated PDF (its name only) and the file nothing matches
    assert totals["invalid"] == 4  # truncated PDF, failing JATS, broken EPUB, PNG with a bad CRC
    assert (totals["encrypted"], totals["drm"]) == (1, 1)
    assert totals["at_risk"] == 6  # unidentified 2 + invalid 3 more + encrypted 1 (flags counted once a file)
    formats = _by_puid(report)
    assert formats["fmt/11"]["files"] == 2 and formats["fmt/11"]["mime"] == "image/png"
    assert formats["fmt/11"]["invalid"] == 1 and formats["fmt/11"]["at_risk"] == 1
    assert formats[None]["files"] == 1 and formats[None]["unidentified"] == 1
    assert formats["x-fmt/263"]["files"] == 1  # the .pdf that is a zip
    assert sum(f["bytes"] for f in report["formats"]) == totals["bytes"] > 0
    assert report["signature_versions"] and report["signature_versions"][0].startswith("v")
    assert run_cli("formats", "report", "--format", "json", home=path).json() == report


def test_the_report_as_csv(home, run_cli):
    path, _ = home
    out = run_cli("formats", "report", "--format", "csv", home=path).output
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == CSV_COLUMNS
    report = run_cli("formats", "report", "--json", home=path).json()
    assert len(rows) - 1 == len(report["formats"])
    png = [r for r in rows[1:] if r[0] == "fmt/11"]
    assert png and png[0][CSV_COLUMNS.index("files")] == "2"
    assert sum(int(r[CSV_COLUMNS.index("files")]) for r in rows[1:]) == 10


def test_the_report_of_one_collection(home, run_cli):
    path, _ = home
    assert run_cli("formats", "report", "--collection", "journals", "--json", home=path).json()["totals"]["files"] == 10
    empty = run_cli("formats", "report", "--collection", "empty", "--json", home=path).json()
    assert empty["totals"]["files"] == 0 and empty["formats"] == []


def test_an_unknown_collection_is_a_coded_error(home, run_cli):
    path, _ = home
    result = run_cli("formats", "report", "--collection", "nope\x1b[31m", "--json", home=path, exit_code=5)
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "E110"
    plain = run_cli("formats", "report", "--collection", "nope\x1b[31m", home=path, exit_code=5)
    assert "\x1b" not in plain.stderr  # outside text escaped on the terminal


def test_the_report_as_a_table(home, run_cli):
    path, _ = home
    out = run_cli("formats", "report", home=path).output
    assert "Portable" in out and "10 file(s)" in out and "6 at risk" in out


def test_at_risk_follows_the_policy_in_force(tmp_path, run_cli):
    policy = policy_with(tmp_path, at_risk=["fmt/11"])
    repo = make_repo(tmp_path / "home", policy=policy)
    try:
        ingest(repo, format_delivery(tmp_path / "delivery"), "journals")
    finally:
        repo.close()
    report = run_cli("formats", "report", "--json", home=tmp_path / "home").json()
    assert report["totals"]["at_risk"] == 2 and report["at_risk_means"] == ["fmt/11"]


def test_formats_show_lists_a_packages_files(home, run_cli):
    path, package_id = home
    shown = run_cli("formats", "show", package_id, "--json", home=path).json()
    files = {f["path"]: f for f in shown["files"]}
    assert len(files) == 10 and shown["totals"]["files"] == 10
    assert files["data/articles/encrypted.pdf"]["encrypted"] and files["data/articles/encrypted.pdf"]["at_risk"]
    assert files["data/images/good.png"]["puid"] == "fmt/11" and not files["data/images/good.png"]["at_risk"]
    assert "FMV103" in files["data/articles/truncated.pdf"]["findings"]
    table = run_cli("formats", "show", package_id, home=path).output
    assert "encrypted" in table and "10 file(s)" in table
    assert run_cli("formats", "show", package_id[:8], "--json", home=path).json()["package_id"] == package_id
    missing = run_cli("formats", "show", "no-such-package", "--json", home=path, exit_code=5)
    assert json.loads(missing.stderr)["error"]["code"] == "E110"


def test_package_show_summarises_formats(home, run_cli):
    path, package_id = home
    shown = run_cli("package", "show", package_id, "--json", home=path).json()
    formats = {f["puid"]: f for f in shown["formats"]}
    assert formats["fmt/11"]["files"] == 2 and sum(f["files"] for f in shown["formats"]) == 10
    assert formats[None]["files"] == 1  # the file nothing identified
    assert "formats" in run_cli("package", "show", package_id, home=path).output


def test_status_counts_encrypted_and_drm_locked_files(home, run_cli):
    path, _ = home
    report = run_cli("status", "--json", home=path).json()
    assert report["locked_files"] == {"encrypted": 1, "drm": 1, "locked": 1}
    assert "encrypted or DRM-locked" in run_cli("status", home=path).stderr


def test_status_of_a_repository_without_formats_counts_none(repo, run_cli, tmp_path):
    assert run_cli("status", "--json", home=tmp_path / "home").json()["locked_files"]["locked"] == 0


def test_the_premis_export_carries_each_files_pronom_format(home, run_cli, tmp_path):
    path, package_id = home
    target = tmp_path / "premis.xml"
    run_cli("events", "export", package_id, "--premis", "-o", target, home=path)
    root = etree.parse(str(target)).getroot()
    objects = {}
    for obj in root.findall("p:object", NS):
        name = obj.findtext("p:originalName", namespaces=NS)
        objects[name] = obj
    png = objects["data/images/good.png"].find("p:objectCharacteristics/p:format", NS)
    assert png.findtext("p:formatRegistry/p:formatRegistryName", namespaces=NS) == "PRONOM"
    assert png.findtext("p:formatRegistry/p:formatRegistryKey", namespaces=NS) == "fmt/11"
    assert png.findtext("p:formatDesignation/p:formatName", namespaces=NS) == "Portable Network Graphics"
    assert png.findtext("p:formatDesignation/p:formatVersion", namespaces=NS) == "1.0"
    assert "fido" in " ".join(n.text for n in png.findall("p:formatNote", NS))
    pdf = objects["data/articles/encrypted.pdf"].find("p:objectCharacteristics", NS)
    assert pdf.findtext("p:format/p:formatRegistry/p:formatRegistryKey", namespaces=NS).startswith("fmt/")
    assert [i.text for i in pdf.findall("p:inhibitors/p:inhibitorType", NS)] == [
        "Encryption", "DRM: restricted permissions"]
    unknown = objects["data/mystery.zz9q"].find("p:objectCharacteristics/p:format", NS)
    assert unknown.find("p:formatRegistry", NS) is None
    assert "not identified" in unknown.findtext("p:formatNote", namespaces=NS)
    tag_file = objects["bagit.txt"].find("p:objectCharacteristics/p:format", NS)  # tag files: no record
    assert tag_file.find("p:formatRegistry", NS) is None
    events = [e.findtext("p:eventType", namespaces=NS) for e in root.findall("p:event", NS)]
    assert "format identification" in events
