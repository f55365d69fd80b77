"""A delivery changed between its check and its bagging: nothing from outside it is ever bagged.

The deterministic cases swap one entry after the check; the race keeps
swapping a directory for a link to an outside directory (and back) while
ingests run, and then looks for the outside file's bytes on every node.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from preservation import ingest as ingest_module
from preservation.bagit import create_bag, open_delivery, writer
from preservation.bagit.delivery_base import EntryReplaced
from preservation.catalog.models import Package, PackageFile
from preservation.errors import DeliveryRejected
from preservation.ingest import ingest

from .builders import INFO, make_bag, make_tree

SECRET = b"OUTSIDE-SECRET-0123456789abcdefghijklmno"  # 40 bytes, as the attack's secret.txt
INSIDE = b"inside--delivery-0123456789abcdefghijklm"


def _delivery(tmp: Path) -> tuple[Path, Path]:
    """(delivery, outside): zzz/secret.txt inside, a same-named, same-sized file in a directory outside."""
    assert len(SECRET) == len(INSIDE) == 40
    source = make_tree(tmp / "delivery", {"aaa/one.bin": os.urandom(3000), "zzz/secret.txt": INSIDE})
    outside = make_tree(tmp / "outside", {"secret.txt": SECRET})
    return source, outside


def _swap_directory_for_link(source: Path, outside: Path) -> None:
    os.rename(source / "zzz", source.parent / "zzz.moved")
    os.symlink(outside, source / "zzz")


def _swap_directory_for_directory(source: Path, outside: Path) -> None:
    os.rename(source / "zzz", source.parent / "zzz.moved")
    os.rename(outside, source / "zzz")


def _swap_file_for_file(source: Path, outside: Path) -> None:
    os.rename(outside / "secret.txt", source / "zzz" / "secret.txt")


def _swap_file_for_link(source: Path, outside: Path) -> None:
    os.unlink(source / "zzz" / "secret.txt")
    os.symlink(outside / "secret.txt", source / "zzz" / "secret.txt")


def _swap_file_for_fifo(source: Path, outside: Path) -> None:
    os.unlink(source / "zzz" / "secret.txt")
    os.mkfifo(source / "zzz" / "secret.txt")


def _swap_root_for_link(source: Path, outside: Path) -> None:
    os.rename(source, source.parent / "delivery.moved")
    os.symlink(outside, source)


SWAPS = [_swap_directory_for_link, _swap_directory_for_directory, _swap_file_for_file, _swap_file_for_link,
         _swap_file_for_fifo, _swap_root_for_link]


def _holds_secret(root: Path) -> list[str]:
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_symlink() and path.is_file() and SECRET in path.read_bytes():
                found.append(str(path))
    return found


@pytest.mark.parametrize("swap", SWAPS, ids=lambda f: f.__name__.removeprefix("_swap_"))
def test_an_entry_swapped_after_the_check_is_refused_and_nothing_is_bagged(tmp_path: Path, swap) -> None:
    source, outside = _delivery(tmp_path)
    (tmp_path / "out").mkdir()
    with open_delivery(source) as delivery:
        assert delivery.check().ok
        swap(source, outside)
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "out" / "bag", INFO, fsync=False)
    assert [f.code for f in refused.value.findings] == ["DLV028"], refused.value
    assert os.listdir(tmp_path / "out") == [], "no partial bag is left behind"


@pytest.mark.parametrize("swap", SWAPS, ids=lambda f: f.__name__.removeprefix("_swap_"))
def test_an_entry_swapped_once_bagging_has_started_never_brings_outside_bytes(tmp_path: Path, swap) -> None:
    """The attack: aaa/ is being bagged (its first file is copied) when zzz is swapped."""
    source, outside = _delivery(tmp_path)
    (tmp_path / "out").mkdir()
    swapped = []

    def swap_once(done_bytes: int, done_files: int) -> None:
        if not swapped:
            swapped.append(done_files)
            swap(source, outside)

    with open_delivery(source) as delivery:
        assert delivery.check().ok
        try:
            # one worker: each file is copied before the walk goes on, so the swap lands inside the walk
            create_bag(delivery, tmp_path / "out" / "bag", INFO, workers=1, progress=swap_once, fsync=False)
        except DeliveryRejected as refused:
            assert [f.code for f in refused.findings] == ["DLV028"], refused
            assert os.listdir(tmp_path / "out") == [], "no partial bag is left behind"
        else:
            # the root is held open from the start of the bagging: a swapped root changes nothing
            assert swap is _swap_root_for_link
            assert (tmp_path / "out" / "bag" / "data" / "zzz" / "secret.txt").read_bytes() == INSIDE
    assert swapped == [1], "the swap came after the first file was copied"
    assert _holds_secret(tmp_path / "out") == []


def test_a_file_swapped_after_it_was_listed_is_not_opened(tmp_path: Path) -> None:
    source, outside = _delivery(tmp_path)
    with open_delivery(source) as delivery:
        assert delivery.check().ok
        entries = {entry.path: entry for entry in delivery.entries()}
        _swap_file_for_file(source, outside)
        with pytest.raises(EntryReplaced):
            entries["zzz/secret.txt"].open_fd()
        os.close(entries["aaa/one.bin"].open_fd())


def test_a_directory_swapped_after_it_was_listed_is_still_read_from_the_delivery(tmp_path: Path) -> None:
    source, outside = _delivery(tmp_path)
    with open_delivery(source) as delivery:
        assert delivery.check().ok
        entries = {entry.path: entry for entry in delivery.entries()}
        _swap_directory_for_link(source, outside)
        with entries["zzz/secret.txt"].open() as f:
            assert f.read() == INSIDE


def test_a_directory_swapped_back_is_bagged_from_the_delivery(tmp_path: Path) -> None:
    source, outside = _delivery(tmp_path)
    with open_delivery(source) as delivery:
        assert delivery.check().ok
        _swap_directory_for_link(source, outside)
        os.unlink(source / "zzz")
        os.rename(source.parent / "zzz.moved", source / "zzz")
        create_bag(delivery, tmp_path / "bag", INFO, fsync=False)
    assert (tmp_path / "bag" / "data" / "zzz" / "secret.txt").read_bytes() == INSIDE
    assert _holds_secret(tmp_path / "bag") == []


# --- the race -------------------------------------------------------------------------------

ATTEMPTS = 200


class _Swapper:
    """Another process (as an attacker would be) swapping ``zzz`` for a link to ``outside`` and back.

    ``swaps`` counts the swaps so far (in shared memory).  Each state is held
    for a moment, so that both a listing and the open after it can meet it.
    """

    def __init__(self, source: Path, outside: Path) -> None:
        context = multiprocessing.get_context("fork")
        self._swaps = context.Value("q", 0, lock=False)
        self._stop = context.Event()
        self._process = context.Process(
            target=_swap_until_stopped, args=(source / "zzz", source.parent / "zzz.parked", outside, self._swaps,
                                              self._stop), daemon=True)

    @property
    def swaps(self) -> int:
        return self._swaps.value

    def start(self) -> None:
        self._process.start()

    def halt(self) -> None:
        self._stop.set()
        self._process.join(10)
        assert self._process.exitcode == 0, "the swapper failed"


def _swap_until_stopped(zzz: Path, parked: Path, outside: Path, swaps, stop) -> None:
    while not stop.is_set():
        os.rename(zzz, parked)
        os.symlink(outside, zzz)
        swaps.value += 1
        stop.wait(0.0002)
        os.unlink(zzz)
        os.rename(parked, zzz)
        swaps.value += 1
        stop.wait(0.0002)


def test_directory_swapped_for_a_link_during_ingest_never_brings_outside_bytes(tmp_path: Path, repo, monkeypatch):
    """>= 200 ingests race the swapper; an ingest raced when a swap happened between its check and its bag."""
    # more than a batch of small files (64) in aaa/: the walk stops while they are copied, before it reaches zzz/
    files = {f"aaa/{i:03d}.bin": os.urandom(2048) for i in range(80)}
    source = make_tree(tmp_path / "delivery", files | {"zzz/secret.txt": INSIDE})
    outside = make_tree(tmp_path / "outside", {"secret.txt": SECRET})
    swapper = _Swapper(source, outside)
    real_create_bag = ingest_module.create_bag
    raced = []

    def create_bag_watched(*args, **kwargs):
        # the check has run (stage checks before it bags): a swap from here on races the bagging
        before = swapper.swaps
        try:
            return real_create_bag(*args, **kwargs)
        finally:
            raced.append(swapper.swaps != before)

    monkeypatch.setattr(ingest_module, "create_bag", create_bag_watched)
    outcomes: dict[str, int] = {}
    preserved = []
    swapper.start()
    try:
        for _ in range(ATTEMPTS):
            try:
                result = ingest(repo, source, "journals")
            except DeliveryRejected as e:
                key = ",".join(sorted({f.code for f in e.findings}))
                outcomes[key] = outcomes.get(key, 0) + 1
                continue
            assert result["state"] == "preserved"
            preserved.append(result["package_id"])
            outcomes["preserved"] = outcomes.get("preserved", 0) + 1
    finally:
        swapper.halt()
    print(f"\n{ATTEMPTS} ingests, {sum(raced)} raced a swap during bagging: {outcomes}")
    # a check that meets the swap half-done refuses with what it saw then (a link, an unlistable directory)
    assert "" not in outcomes, "a refusal without a finding code"
    # on a loaded machine the swapper gets less time; a few dozen races is the usual count
    assert sum(raced) >= 10, f"only {sum(raced)} of {ATTEMPTS} ingests raced a swap"
    assert outcomes.get("DLV028", 0) >= 1, "no swap was caught during the bagging"
    home = Path(repo.settings.home)
    assert _holds_secret(home) == [], "bytes from outside the delivery reached the repository"
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Package)) == len(preserved)
        secrets = s.scalars(select(PackageFile.sha256).where(PackageFile.path == "data/zzz/secret.txt")).all()
    assert set(secrets) <= {hashlib.sha256(INSIDE).hexdigest()}, "a package holds other bytes"
    assert os.listdir(repo.staging_dir) == []


def test_a_bag_whose_tag_files_were_read_elsewhere_is_refused(tmp_path: Path, monkeypatch) -> None:
    """The bag is swapped for a look-alike while its tag files are parsed, and back before its files are copied."""
    bag = make_bag(tmp_path, {"a.txt": b"alpha", "sub/b.txt": INSIDE})
    outside = tmp_path / "outside-bag"
    shutil.copytree(bag, outside)
    with open(outside / "bag-info.txt", "a", encoding="utf-8") as f:
        f.write("Contact-Name: OUTSIDE\n")
    real_inspection = writer.BagInspection

    def inspected_elsewhere(root: str):
        os.rename(bag, tmp_path / "parked")
        os.rename(outside, bag)
        try:
            return real_inspection(root)
        finally:
            os.rename(bag, outside)
            os.rename(tmp_path / "parked", bag)

    (tmp_path / "out").mkdir()
    with open_delivery(bag) as delivery:
        assert delivery.check().ok
        monkeypatch.setattr(writer, "BagInspection", inspected_elsewhere)
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "out" / "copy", INFO, fsync=False)
    assert [(f.code, f.path) for f in refused.value.findings] == [("DLV028", "bag-info.txt")]
    assert os.listdir(tmp_path / "out") == []


def test_a_file_removed_before_its_directory_is_walked_again_is_refused_with_a_code(tmp_path: Path) -> None:
    source, _ = _delivery(tmp_path)
    with open_delivery(source) as delivery:
        assert delivery.check().ok
        entries = delivery.entries()
        first = next(entries)
        assert first.path == "aaa/one.bin"
        os.unlink(source / "zzz" / "secret.txt")
        with pytest.raises(DeliveryRejected) as refused:
            list(entries)
    assert [f.code for f in refused.value.findings] == ["DLV028"]
