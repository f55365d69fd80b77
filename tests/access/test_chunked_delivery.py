"""Files larger than one chunk are streamed chunk by chunk, each chunk checked before it is sent.

A bad chunk on the first-choice copy fails over to the next copy at that
chunk, mid-stream, and the bad copy is flagged (suspect, an audit queued,
which then queues its repair); when no copy has the chunk right the
response is cut short and no byte of it is sent.  Files ingested before
chunk digests existed are spooled and verified whole, as before, and get
their chunk digests in that pass.
"""

from __future__ import annotations

import random
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import delete, select

from preservation import chunks
from preservation.access import delivery
from preservation.access.delivery import ChunkedFile, VerifiedFile, file_row, open_verified
from preservation.audit import audit_replica
from preservation.catalog.chunk_models import FileChunks
from preservation.catalog.models import Node, Replica
from preservation.chunk_digests import CHUNK_BYTES, DIGEST_BYTES, chunk_digest
from preservation.ingest import ingest

from ..corruption import flip_bit
from ..fixtures import node_root
from .live import running_service
from .test_delivery import jobs_for, make_first_choice, replica_state

BIG = "data/big.bin"
SIZE = 5 * CHUNK_BYTES + 12345  # six chunks, the last one short
NODES = ("uni-pku", "cas-nsl", "inst-istic")


@pytest.fixture
def big(world, tmp_path):
    """A package of the open collection holding one file of six chunks; returns its bytes."""
    data = random.Random(22).randbytes(SIZE)
    delivery = tmp_path / "big-delivery"
    delivery.mkdir()
    (delivery / "big.bin").write_bytes(data)
    (delivery / "small.txt").write_bytes(b"small\n")
    (delivery / "empty.txt").write_bytes(b"")
    result = ingest(world.repo, delivery, "open-d", name="open-big")
    assert result["state"] == "preserved", result
    world.packages["big"] = result["package_id"]
    return data


def url(world) -> str:
    return f"/api/v1/packages/{world.packages['big']}/files/{quote(BIG)}"


def on_node(world, node):
    return node_root(world.repo, node) / world.packages["big"] / BIG


def chunk_rows(world) -> list[tuple[str, int, str, bytes]]:
    with world.repo.catalog.session() as s:
        return [tuple(r) for r in s.execute(
            select(FileChunks.path, FileChunks.chunk_bytes, FileChunks.algorithm, FileChunks.digests)
            .where(FileChunks.package_id == world.packages["big"]))]


def test_ingest_records_a_digest_per_chunk_of_big_files_only(world, big):
    [(path, chunk_bytes, algorithm, digests)] = chunk_rows(world)  # small.txt, one chunk, has none
    assert (path, chunk_bytes, algorithm) == (BIG, CHUNK_BYTES, "blake3")
    expected = b"".join(chunk_digest(big[i:i + CHUNK_BYTES]) for i in range(0, SIZE, CHUNK_BYTES))
    assert digests == expected and len(digests) == 6 * DIGEST_BYTES


def test_a_bad_chunk_on_the_first_choice_serves_a_middle_range_right_and_queues_the_repair(client, world, big):
    rid = make_first_choice(world, "big", "cas-nsl")
    flip_bit(on_node(world, "cas-nsl"), offset=3 * CHUNK_BYTES + 77)
    start, end = 2 * CHUNK_BYTES + 1000, 4 * CHUNK_BYTES + 999  # chunks 2, 3 and 4
    r = client.get(url(world), headers={**world.auth("alice"), "Range": f"bytes={start}-{end}"})
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert r.content == big[start:end + 1]
    assert r.headers["x-preserve-source"] == "cas-nsl"  # chunk 2 was right there; 3 and 4 came from another copy
    assert replica_state(world, rid) == "suspect" and jobs_for(world, rid) == [("audit", "queued")]
    audit = audit_replica(world.repo, rid)  # the queued audit, as a worker runs it
    assert audit.state == "corrupt" and ("repair", "queued") in jobs_for(world, rid)


def test_a_range_reads_only_the_chunks_it_touches(client, world, big):
    rid = make_first_choice(world, "big", "cas-nsl")
    flip_bit(on_node(world, "cas-nsl"), offset=CHUNK_BYTES - 1)  # chunk 0, outside the range
    r = client.get(url(world), headers={**world.auth("alice"), "Range": f"bytes={CHUNK_BYTES}-{CHUNK_BYTES + 9}"})
    assert r.status_code == 206 and r.content == big[CHUNK_BYTES:CHUNK_BYTES + 10]
    assert r.headers["x-preserve-source"] == "cas-nsl" and replica_state(world, rid) == "verified"


def test_a_full_download_with_a_bad_chunk_in_the_middle_fails_over_without_a_bad_byte(client, world, big):
    rid = make_first_choice(world, "big", "uni-pku")
    flip_bit(on_node(world, "uni-pku"), offset=2 * CHUNK_BYTES + 5)
    r = client.get(url(world), headers=world.auth("alice"))
    assert r.status_code == 200 and r.content == big
    assert r.headers["x-preserve-source"] == "uni-pku"  # chunks 0 and 1 came from it, the rest from another copy
    assert replica_state(world, rid) == "suspect" and jobs_for(world, rid) == [("audit", "queued")]
    with world.repo.catalog.session() as s:
        assert "chunk 2" in s.get(Replica, rid).last_error


def test_when_every_copy_has_the_chunk_wrong_the_stream_ends_in_error_before_it(world, big):
    for node in NODES:
        flip_bit(on_node(world, node), offset=3 * CHUNK_BYTES + 9)
    with running_service(world.repo) as base, httpx.Client(base_url=base) as http:
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            with http.stream("GET", url(world), headers=world.auth("alice")) as r:
                assert r.status_code == 200  # the first chunk was right: the response had started
                for piece in r.iter_raw():
                    received += piece
    assert len(received) <= 3 * CHUNK_BYTES and bytes(received) == big[:len(received)]
    with world.repo.catalog.session() as s:
        states = {r.state for r in s.scalars(select(Replica).where(Replica.package_id == world.packages["big"]))}
    assert states == {"suspect"}


def test_a_bad_first_chunk_everywhere_is_an_error_status_and_no_body(client, world, big):
    for node in NODES:
        flip_bit(on_node(world, node), offset=4 * CHUNK_BYTES)
    r = client.get(url(world), headers={**world.auth("alice"), "Range": f"bytes={4 * CHUNK_BYTES}-"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "E502" and "content-range" not in r.headers


def test_a_file_without_chunk_digests_is_spooled_and_gets_them(client, world, big):
    with world.repo.catalog.session() as s:
        s.execute(delete(FileChunks).where(FileChunks.package_id == world.packages["big"]))
    with world.repo.catalog.session() as s:
        row = file_row(s, world.packages["big"], BIG)
    with open_verified(world.repo, world.packages["big"], row, agent="test") as served:
        assert isinstance(served, VerifiedFile)  # the old path: spooled, verified whole
    [(_, _, _, digests)] = chunk_rows(world)
    assert len(digests) == 6 * DIGEST_BYTES
    r = client.get(url(world), headers={**world.auth("alice"), "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == big[100:200]
    with open_verified(world.repo, world.packages["big"], row, agent="test") as served:
        assert isinstance(served, ChunkedFile)


def test_an_old_package_without_chunks_still_serves_a_corrupt_first_choice_around(client, world, big):
    with world.repo.catalog.session() as s:
        s.execute(delete(FileChunks).where(FileChunks.package_id == world.packages["big"]))
    rid = make_first_choice(world, "big", "inst-istic")
    flip_bit(on_node(world, "inst-istic"), offset=SIZE - 1)
    r = client.get(url(world), headers=world.auth("alice"))
    assert r.status_code == 200 and r.content == big and r.headers["x-preserve-source"] != "inst-istic"
    assert replica_state(world, rid) == "suspect"


@pytest.mark.parametrize("header, status", [
    (f"bytes={SIZE}-", 416), (f"bytes={10 * SIZE}-{20 * SIZE}", 416), ("bytes=-0", 416),
    ("bytes=" + "9" * 5000 + "-", 416), ("bytes=abc", 200), ("bytes=5-2", 200), ("items=0-10", 200),
    ("bytes=0-1,5-9", 200), ("bytes=\x00-", 200),
])
def test_bad_range_headers_are_refused_or_ignored_never_a_server_error(client, world, big, header, status):
    r = client.get(url(world), headers={**world.auth("alice"), "Range": header})
    assert r.status_code == status
    if status == 416:
        assert r.json()["error"]["code"] and r.headers["content-range"] == f"bytes */{SIZE}"
    else:
        assert r.content == big


def test_a_new_version_reuses_the_chunk_digests_of_its_unchanged_files(client, world, big, tmp_path):
    delivery = tmp_path / "big-delivery"
    (delivery / "small.txt").write_bytes(b"small, corrected\n")
    result = ingest(world.repo, delivery, "open-d", name="open-big-2", version_of=world.packages["big"])
    assert result["state"] == "preserved", result
    v2 = result["package_id"]
    with world.repo.catalog.session() as s:
        assert s.scalars(select(FileChunks.path).where(FileChunks.package_id == v2)).all() == []
    rid = make_first_choice(world, "big", "inst-istic")  # version 1 stores the bytes: its copies serve them
    flip_bit(on_node(world, "inst-istic"), offset=4 * CHUNK_BYTES + 1)
    r = client.get(f"/api/v1/packages/{v2}/files/{quote(BIG)}", headers={**world.auth("carol"),
                                                                         "Range": f"bytes={4 * CHUNK_BYTES}-"})
    assert r.status_code == 206 and r.content == big[4 * CHUNK_BYTES:]
    assert r.headers["x-preserve-version"] == "2" and replica_state(world, rid) == "suspect"


def test_an_empty_file_is_checked_on_a_copy_and_sent_empty(client, world, big):
    rid = make_first_choice(world, "big", "cas-nsl")
    (node_root(world.repo, "cas-nsl") / world.packages["big"] / "data/empty.txt").unlink()
    r = client.get(f"/api/v1/packages/{world.packages['big']}/files/data/empty.txt", headers=world.auth("alice"))
    assert r.status_code == 200 and r.content == b"" and r.headers["x-preserve-source"] not in ("", "cas-nsl")
    assert replica_state(world, rid) == "suspect"


# --- older packages get their chunk digests from an audit --------------------------------------------


def forget_chunks(world) -> None:
    """As a package ingested before chunk digests existed: no rows."""
    with world.repo.catalog.session() as s:
        s.execute(delete(FileChunks).where(FileChunks.package_id == world.packages["big"]))


def replica_on(world, node_name) -> int:
    with world.repo.catalog.session() as s:
        return s.execute(select(Replica.id).join(Node).where(
            Replica.package_id == world.packages["big"], Node.name == node_name)).scalar_one()


def counting_chunk_checks(monkeypatch) -> list[int]:
    """The lengths of the chunks the access service checks against their digests, in order."""
    checked: list[int] = []

    def counted(data):
        checked.append(len(data))
        return chunk_digest(data)

    monkeypatch.setattr(delivery, "chunk_digest", counted)
    return checked


def test_an_audit_gives_an_older_package_its_chunk_digests_and_a_range_then_checks_only_its_chunks(
        client, world, big, monkeypatch):
    ingested = chunk_rows(world)
    forget_chunks(world)
    audit = audit_replica(world.repo, replica_on(world, "uni-pku"))
    assert audit.ok and audit.fixity.chunks_recorded == 1
    assert chunk_rows(world) == ingested  # the digests the ingest computed, from the audit's one read
    checked = counting_chunk_checks(monkeypatch)
    start, end = 2 * CHUNK_BYTES + 100, 3 * CHUNK_BYTES + 200  # chunks 2 and 3
    with world.repo.catalog.session() as s:
        row = file_row(s, world.packages["big"], BIG)
    with open_verified(world.repo, world.packages["big"], row, agent="test", start=start, end=end) as served:
        assert isinstance(served, ChunkedFile)  # streamed chunk by chunk, not spooled
        assert b"".join(served.chunks(start, end)) == big[start:end]
    assert checked == [CHUNK_BYTES, CHUNK_BYTES]
    checked.clear()
    r = client.get(url(world), headers={**world.auth("alice"), "Range": f"bytes={start}-{end - 1}"})
    assert r.status_code == 206 and r.content == big[start:end] and checked == [CHUNK_BYTES, CHUNK_BYTES]
    again = audit_replica(world.repo, replica_on(world, "cas-nsl"))  # the next audit has nothing to add
    assert again.ok and again.fixity.chunks_recorded == 0 and chunk_rows(world) == ingested


def test_a_file_that_fails_its_audit_gets_no_chunk_digests(world, big):
    forget_chunks(world)
    flip_bit(on_node(world, "cas-nsl"), offset=3 * CHUNK_BYTES + 5)
    audit = audit_replica(world.repo, replica_on(world, "cas-nsl"))
    assert audit.state == "corrupt" and audit.fixity.chunks_recorded == 0
    assert chunk_rows(world) == []


def test_chunk_digests_stored_meanwhile_that_differ_are_kept_and_reported(world, big, monkeypatch):
    forget_chunks(world)
    other = bytes(6 * DIGEST_BYTES)
    real = chunks.record_found

    def raced(catalog, package_id, found):
        # another reader recorded digests for the file after the audit read its rows (here: wrong ones)
        with catalog.session() as s:
            s.add(FileChunks(package_id=package_id, path=BIG, chunk_bytes=CHUNK_BYTES, algorithm="blake3",
                             digests=other))
        return real(catalog, package_id, found)

    monkeypatch.setattr(chunks, "record_found", raced)
    audit = audit_replica(world.repo, replica_on(world, "uni-pku"))
    assert audit.state == "verified" and audit.fixity.chunks_recorded == 0  # the bytes are right: a warning
    [warning] = audit.fixity.findings
    assert (warning.code, warning.severity, warning.path) == ("A009", "warning", BIG)
    assert chunk_rows(world) == [(BIG, CHUNK_BYTES, "blake3", other)]  # not replaced
