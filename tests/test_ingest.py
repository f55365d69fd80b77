"""Ingest end to end on the embedded default: bag, register, three verified copies."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import bagit
import pytest
from sqlalchemy import func, select

from preservation.catalog.models import Event, Package, PackageFile, Replica
from preservation.errors import BagInvalid, DeliveryRejected, NotFound, PlacementError, PolicyError
from preservation.events import verify_chain
from preservation.ingest import ingest
from preservation.nodes import set_node_status

from .fixtures import node_root


def _catalog_counts(repo) -> tuple[int, int, int]:
    with repo.catalog.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Package)),
            s.scalar(select(func.count()).select_from(PackageFile)),
            s.scalar(select(func.count()).select_from(Replica)),
        )


def _staging_entries(repo) -> list[str]:
    return sorted(os.listdir(repo.staging_dir))


def test_ingest_makes_three_verified_copies_on_three_org_types(repo, sample_delivery):
    result = ingest(repo, sample_delivery, "journals")
    assert result["state"] == "preserved"
    with repo.catalog.session() as s:
        package = s.get(Package, result["package_id"])
        replicas = package.replicas
        assert sorted(r.node.org_type for r in replicas) == ["cas", "institute", "university"]
        assert all(r.state == "verified" and r.verified_at is not None for r in replicas)
        assert len({r.node.region for r in replicas}) >= 2
        assert package.staging_path is None
        payload = s.scalars(select(PackageFile).where(PackageFile.package_id == package.id,
                                                      PackageFile.is_tag.is_(False))).all()
        assert len(payload) == package.payload_files == 9
        types = [e.event_type for e in s.scalars(select(Event).where(Event.package_id == package.id))]
        assert types.count("replication") == 6  # started + success per copy
        assert {"ingestion", "message digest calculation", "validation", "information package creation"} <= set(types)
        assert verify_chain(s).ok
    assert _staging_entries(repo) == []
    for name in ("uni-pku", "cas-nsl", "inst-istic"):
        bag_dir = node_root(repo, name) / result["package_id"]
        bagit.Bag(str(bag_dir)).validate()
        original = sample_delivery / "期刊/物理学报/2024/第01期/论文-001.pdf"
        copy = bag_dir / "data/期刊/物理学报/2024/第01期/论文-001.pdf"
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == hashlib.sha256(original.read_bytes()).hexdigest()


def test_bag_info_carries_package_and_collection(repo, sample_delivery):
    result = ingest(repo, sample_delivery, "journals")
    bag = bagit.Bag(str(node_root(repo, "cas-nsl") / result["package_id"]))
    assert bag.info["External-Identifier"] == result["package_id"]
    assert bag.info["Bag-Group-Identifier"] == "journals"
    assert bag.info["Publisher"] == "Publisher Ltd"
    assert bag.info["Licence"] == "LIC-1"
    assert "Payload-Oxum" in bag.info and "Bag-Size" in bag.info and "Bagging-Date" in bag.info
    assert bag.version_info == (1, 0)


def test_existing_bag_is_kept_byte_identical(repo, tmp_path, sample_delivery):
    bag_dir = tmp_path / "theirbag"
    shutil.copytree(sample_delivery, bag_dir)
    bagit.make_bag(str(bag_dir), {"Source-Organization": "Their Press"}, checksums=["sha256", "sha512"])
    before = {p.relative_to(bag_dir).as_posix(): p.read_bytes() for p in bag_dir.rglob("*") if p.is_file()}
    result = ingest(repo, bag_dir, "journals")
    assert result["state"] == "preserved"
    copy = node_root(repo, "uni-pku") / result["package_id"]
    after = {p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before


def _tar(tmp_path: Path, members: dict[str, bytes], name="delivery.tar.gz") -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_tar_and_zip_deliveries(repo, tmp_path):
    tar = _tar(tmp_path, {"a/文件.txt": b"hello", "b/empty": b""})
    assert ingest(repo, tar, "journals")["state"] == "preserved"
    z = tmp_path / "d.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x/数据.csv", "1,2,3")
    result = ingest(repo, z, "journals")
    assert result["state"] == "preserved" and result["files"] == 1


def _assert_nothing_registered(repo, before):
    assert _catalog_counts(repo) == before
    assert _staging_entries(repo) == []
    for name in ("uni-pku", "cas-nsl", "inst-istic"):
        assert [p for p in node_root(repo, name).iterdir() if p.name != ".preserve-tmp"] == []


def _symlink_delivery(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "real.txt").write_text("x")
    os.symlink("/etc/passwd", d / "link")
    return d


def _nfc_nfd_delivery(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "caf\u00e9.txt").write_text("nfc")
    (d / "cafe\u0301.txt").write_text("nfd")
    return d


def _newline_delivery(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "bad\nname.txt").write_text("x")
    return d


def _traversal_tar(tmp_path):
    return _tar(tmp_path, {"ok.txt": b"fine", "../../etc/evil": b"pwned"})


def _absolute_tar(tmp_path):
    return _tar(tmp_path, {"/etc/evil": b"pwned"})


def _traversal_zip(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../escape.txt", "pwned")
    return z


def _bag_with_traversal_manifest(tmp_path):
    d = tmp_path / "bag"
    d.mkdir()
    (d / "f.txt").write_text("x")
    bagit.make_bag(str(d), checksums=["sha256"])
    with open(d / "manifest-sha256.txt", "a") as f:
        f.write("0" * 64 + "  data/../../outside.txt\n")
    return d


def _bag_with_wrong_oxum(tmp_path):
    d = tmp_path / "bag"
    d.mkdir()
    (d / "f.txt").write_text("x")
    bagit.make_bag(str(d), checksums=["sha256"])
    info = (d / "bag-info.txt").read_text().replace("Payload-Oxum: 1.1", "Payload-Oxum: 9.2")
    (d / "bag-info.txt").write_text(info)
    return d


BAD_DELIVERIES = {
    "symlink": (_symlink_delivery, DeliveryRejected),
    "nfc_nfd_duplicates": (_nfc_nfd_delivery, DeliveryRejected),
    "newline_in_name": (_newline_delivery, DeliveryRejected),
    "tar_traversal": (_traversal_tar, DeliveryRejected),
    "tar_absolute": (_absolute_tar, DeliveryRejected),
    "zip_traversal": (_traversal_zip, DeliveryRejected),
    "bag_manifest_traversal": (_bag_with_traversal_manifest, (BagInvalid, DeliveryRejected)),
    "bag_wrong_oxum": (_bag_with_wrong_oxum, (BagInvalid, DeliveryRejected)),
}


@pytest.mark.parametrize("case", sorted(BAD_DELIVERIES))
def test_bad_deliveries_are_refused_and_change_nothing(repo, tmp_path, case):
    make, error = BAD_DELIVERIES[case]
    source = make(tmp_path)
    before = _catalog_counts(repo)
    with pytest.raises(error) as e:
        ingest(repo, source, "journals")
    assert e.value.code.startswith("E4")
    _assert_nothing_registered(repo, before)
    assert not (tmp_path.parent / "outside.txt").exists() and not Path("/etc/evil").exists()


def test_unreadable_file_is_refused(repo, tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    (d / "ok.txt").write_text("fine")
    secret = d / "secret.txt"
    secret.write_text("locked")
    real_open, real_os_open = open, os.open

    def is_secret(file) -> bool:
        return isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(file) == str(secret)

    def guarded_open(file, *args, **kwargs):
        if is_secret(file):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    def guarded_os_open(file, *args, **kwargs):
        # delivery files are opened by name relative to their directory's descriptor
        if is_secret(file) or (kwargs.get("dir_fd") is not None and os.fsdecode(file) == secret.name):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    before = _catalog_counts(repo)
    with pytest.raises((DeliveryRejected, BagInvalid)):
        ingest(repo, d, "journals")
    monkeypatch.undo()
    _assert_nothing_registered(repo, before)


def test_unknown_collection_is_refused_before_staging(repo, sample_delivery):
    with pytest.raises(NotFound):
        ingest(repo, sample_delivery, "no-such-collection")
    assert _staging_entries(repo) == []


def test_no_placement_possible_registers_nothing(repo, sample_delivery):
    set_node_status(repo, "cas-nsl", "offline")
    before = _catalog_counts(repo)
    with pytest.raises(PlacementError) as e:
        ingest(repo, sample_delivery, "journals")
    assert "cas" in str(e.value)
    assert _catalog_counts(repo) == before
    assert _staging_entries(repo) == []


def test_large_file_streams_with_bounded_memory(repo, tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    with open(d / "big.bin", "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(96):
            f.write(block)
    tracemalloc.start()
    result = ingest(repo, d, "journals")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result["state"] == "preserved"
    assert peak < 64 * 2**20, f"peak traced memory {peak} bytes for a 96 MiB file"


def test_a_missing_bagit_profile_refuses_the_ingest_and_records_no_validation(repo, sample_delivery, tmp_path,
                                                                               monkeypatch):
    import preservation.ingest as ingest_module

    before = _catalog_counts(repo)
    monkeypatch.setattr(ingest_module, "PROFILE", tmp_path / "no-such-profile.json")
    with pytest.raises(PolicyError) as e:
        ingest(repo, sample_delivery, "journals")
    assert e.value.code == "E101" and "no-such-profile.json" in str(e.value)
    _assert_nothing_registered(repo, before)
    with repo.catalog.session() as s:
        assert s.scalars(select(Event).where(Event.event_type == "validation")).all() == []


def test_the_profile_ships_inside_the_package(repo, sample_delivery):
    import preservation
    import preservation.ingest as ingest_module

    package_dir = Path(preservation.__file__).parent
    assert Path(str(ingest_module.PROFILE)).resolve().parent == (package_dir / "policies").resolve()
    result = ingest(repo, sample_delivery, "journals")
    with repo.catalog.session() as s:
        validation = s.scalars(select(Event).where(Event.package_id == result["package_id"],
                                                   Event.event_type == "validation")).one()
    assert validation.detail["profile"] == "bagit-profile.json"


@pytest.mark.parametrize("option", [("--info", "Title=bad\uffff"), ("--info", "Ti\x01tle=x"), ("--name", "pkg\ufffe")])
def test_ingest_options_xml_cannot_carry_are_refused_before_any_work(repo, run_cli, sample_delivery, option,
                                                                     monkeypatch):
    opened = []
    monkeypatch.setattr("preservation.ingest.open_delivery", lambda *a, **k: opened.append(a))
    before = _catalog_counts(repo)
    out = run_cli("ingest", sample_delivery, "--collection", "journals", *option, exit_code=2)
    assert "E113" in out.output + out.stderr
    assert opened == []  # refused at the option, before the delivery is even opened
    _assert_nothing_registered(repo, before)
