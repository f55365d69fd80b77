"""The generic check (``StorageAdapter._verify_many`` over ``digest_many``) never passes a file it has no
digest for: a back end that owes a result and gives none, or answers for another key, cannot make a row
count as read."""

from __future__ import annotations

import hashlib

from storage_adapters.base import VERIFY_UNREADABLE, StorageAdapter
from storage_adapters.filesystem import FilesystemAdapter


class Forgetful(FilesystemAdapter):
    """Digests every key but ``skip``, and answers once more for a key nobody asked about."""

    skip = "p/b"

    def _digest_many(self, keys, algorithms, workers, chunked=frozenset()):
        asked = [k for k in keys if k != self.skip]
        yield from super()._digest_many(asked, algorithms, workers, chunked)
        yield from super()._digest_many(asked[:1], algorithms, workers, chunked)  # the first one twice


def test_a_row_without_a_digest_is_a_problem_never_a_pass(tmp_path):
    (tmp_path / "p").mkdir()
    rows = []
    for name in ("a", "b", "c"):
        data = name.encode() * 10
        (tmp_path / "p" / name).write_bytes(data)
        rows.append((name, len(data), (hashlib.sha256(data).hexdigest(),)))
    adapter = Forgetful(tmp_path.as_uri())
    batches = list(StorageAdapter._verify_many(adapter, "p/", iter(rows), ("sha256",), 2))
    assert sum(b.checked for b in batches) == 2  # a and c, each once
    [problem] = [p for b in batches for p in b.problems]
    assert (problem.path, problem.kind) == ("b", VERIFY_UNREADABLE)
    assert "no digest came back" in str(problem.error)
