"""One PackageLayout: the package prefix, the record key and the record live in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preservation.errors import ObjectNotFound
from preservation.layout import PackageLayout, recorded_package_ids
from storage_adapters.filesystem import FilesystemAdapter

PRODUCT = Path(__file__).resolve().parents[1] / "preservation"


def test_keys_of_a_package_on_a_node():
    layout = PackageLayout("pkg-1")
    assert layout.prefix == "pkg-1/"
    assert layout.key("data/a.txt") == "pkg-1/data/a.txt"
    assert layout.path_of(layout.key("data/中文.txt")) == "data/中文.txt"
    assert layout.record_key == ".preserve/packages/pkg-1.json"


def test_the_record_reads_back_as_written_and_lists_its_package(tmp_path):
    adapter = FilesystemAdapter(tmp_path.as_uri())
    record = {"package_id": "pkg-1", "collection": {"key": "journals", "title": "中文期刊"}}
    PackageLayout("pkg-1").write_record(adapter, record)
    adapter.write(".preserve/packages/notes.txt", b"not a record")
    adapter.write(".preserve/packages/nested/pkg-2.json", b"{}")
    assert PackageLayout("pkg-1").read_record(adapter) == record
    assert list(recorded_package_ids(adapter)) == ["pkg-1"]
    with pytest.raises(ObjectNotFound):
        PackageLayout("pkg-3").read_record(adapter)


def test_no_other_module_builds_a_package_key():
    built = re.compile(r'f"\{[\w.]*(package_id|package\.id)\}/|["\']\.preserve/packages')  # code, not prose
    offenders = [f"{path.relative_to(PRODUCT)}:{n}" for path in PRODUCT.rglob("*.py") if path.name != "layout.py"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if built.search(line)]
    assert offenders == []
