"""`status` shows the versions per package and the bytes each node did not store again."""

from __future__ import annotations

from preservation.ingest import ingest
from preservation.status import status

from .helpers import FIRST, second, write_delivery


def test_status_counts_versions_and_the_bytes_saved_on_each_node(repo, run_cli, tmp_path):
    third = second(FIRST)
    third["g.txt"] = b"golf\n"
    ids, referenced = [], 0
    for n, files in enumerate((FIRST, second(FIRST), third), start=1):
        out = ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                     version_of=ids[-1] if ids else None)
        ids.append(out["package_id"])
        referenced += out.get("version", {}).get("referenced_bytes", 0)
    ingest(repo, write_delivery(tmp_path / "other", {"x.txt": b"unversioned"}), "journals")
    found = status(repo)["versions"]
    assert found["versioned_packages"] == 1 and found["versions"] == 3
    assert found["per_package"] == [{"package_id": ids[0], "versions": 3}]
    # version 2 references a, d (renamed) and e; version 3 all five of version 2
    assert referenced == 16 + 19 + 700 + (16 + len(b"bravo, corrected\n") + 19 + 700 + len(b"foxtrot, new\n"))
    assert found["bytes_saved_per_node"] == {"cas-nsl": referenced, "inst-istic": referenced, "uni-pku": referenced}
    text = run_cli("status", home=repo.settings.home).output
    assert "bytes saved by versions" in text and "versions: 3 of 1 versioned package" in text
