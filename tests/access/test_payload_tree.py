"""The payload tree's queries on SQLite and PostgreSQL: folders as byte-order prefixes of catalog paths, grouped
in the database; a search of names; a version's tree holding the files an earlier version stored.

Names chosen to sit next to a folder's name in byte order (``a-b``, ``a0``, ``a.txt`` around ``a/``), so a
prefix test that is off by one character shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.articles import pdf_bytes
from preservation.access.accounts import Principal
from preservation.access.payload_tree import package_tree, parse_folder, parse_page, parse_query
from preservation.ingest import ingest
from preservation.errors import InvalidRequest, NotFound

from ..fixtures import catalog_url, make_repo  # noqa: F401  (fixture)

STAFF = Principal(user_id=1, username="carol", role="staff", library_id=1, library_code="office",
                  library_name="Consortium Office")
FILES = {
    "a/x.txt": b"x\n", "a/deeper/y.txt": b"yy\n", "a-b/z.txt": b"zzz\n", "a0": b"0\n", "a.txt": b"a\n",
    "B/upper.txt": b"u\n", "é/accent.txt": b"e\n", "中文/文件.txt": "中\n".encode(), "a b/space.txt": b"s\n",
    "paper.pdf": pdf_bytes("v1", 4000, seed=3),
}


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def repo(catalog_url, tmp_path):  # noqa: F811
    r = make_repo(tmp_path / "home", catalog_url)
    try:
        yield r
    finally:
        r.close()


def _listing(tree) -> list[tuple[str, bool]]:
    return [(e["path"], e["folder"]) for e in tree["entries"]]


def test_folders_are_exact_prefixes_in_byte_order(repo, tmp_path):
    pid = ingest(repo, _write(tmp_path / "d", FILES), "journals", name="tree")["package_id"]
    top = package_tree(repo, STAFF, pid)
    # folders first, then files, each in byte order of name (B < a < a b < a-b < é < 中文)
    assert _listing(top) == [("B", True), ("a", True), ("a b", True), ("a-b", True), ("é", True), ("中文", True),
                             ("a.txt", False), ("a0", False), ("paper.pdf", False)]
    assert top["folder_files"] == len(FILES) and top["total"] == 9
    a = package_tree(repo, STAFF, pid, folder="a")
    assert _listing(a) == [("a/deeper", True), ("a/x.txt", False)]
    assert [e["files"] for e in a["entries"] if e["folder"]] == [1] and a["folder_files"] == 2
    assert _listing(package_tree(repo, STAFF, pid, folder="中文")) == [("中文/文件.txt", False)]
    with pytest.raises(NotFound):
        package_tree(repo, STAFF, pid, folder="a/x.txt")  # a file is not a folder
    with pytest.raises(NotFound):
        package_tree(repo, STAFF, pid, folder="a-")


def test_search_folds_case_and_keeps_to_its_folder(repo, tmp_path):
    pid = ingest(repo, _write(tmp_path / "d", FILES), "journals", name="tree")["package_id"]
    assert [e["path"] for e in package_tree(repo, STAFF, pid, query="UPPER")["entries"]] == ["B/upper.txt"]
    assert [e["path"] for e in package_tree(repo, STAFF, pid, query="É")["entries"]] == []  # names, not folders
    assert [e["path"] for e in package_tree(repo, STAFF, pid, query="Accent")["entries"]] == ["é/accent.txt"]
    assert [e["path"] for e in package_tree(repo, STAFF, pid, folder="a", query=".txt")["entries"]] == [
        "a/deeper/y.txt", "a/x.txt"]


def test_a_versions_tree_holds_what_earlier_versions_stored(repo, tmp_path):
    v1 = ingest(repo, _write(tmp_path / "v1", FILES), "journals", name="tree")["package_id"]
    changed = {**FILES, "a/x.txt": b"x, corrected\n", "new/n.txt": b"n\n"}
    v2 = ingest(repo, _write(tmp_path / "v2", changed), "journals", name="tree", version_of=v1)["package_id"]
    tree = package_tree(repo, STAFF, v2)
    assert ("new", True) in _listing(tree) and tree["folder_files"] == len(FILES) + 1
    pdf = next(e for e in tree["entries"] if e["path"] == "paper.pdf")
    assert pdf["inline"]  # stored by version 1: its format record is found through the reference
    assert package_tree(repo, STAFF, v1)["folder_files"] == len(FILES)


@pytest.mark.parametrize("text", ["..", "a/..", "/a", "a//b", "a/", ".", "a\\b", "a\x00", "a\u2029b", "x" * 1001])
def test_folder_text_that_can_name_no_folder(text):
    with pytest.raises(InvalidRequest):
        parse_folder(text)


@pytest.mark.parametrize("text", ["0", "-1", "01.5", "٣", "1000001", "9" * 5000])
def test_page_text_that_is_no_page(text):
    with pytest.raises(InvalidRequest):
        parse_page(text)


def test_the_good_values_parse():
    assert parse_folder("期刊/物理学报/2019") == "期刊/物理学报/2019" and parse_folder("") == ""
    assert parse_page("") == 1 and parse_page("007") == 7 and parse_page("1000000") == 1000000
    assert parse_query("  物理  ") == "物理" and parse_query("50%_off") == "50%_off"
    with pytest.raises(InvalidRequest):
        parse_query("x" * 201)
