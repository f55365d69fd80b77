"""What the contract suite cannot say about the S3 adapter, checked against a real SeaweedFS."""

from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

import storage_adapters.s3 as s3_module
from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    ObjectNotFound,
    RetentionLocked,
    StorageUnavailable,
    UnsupportedURI,
)
from storage_adapters import exists, open_adapter, read_all, sweep_temporary, traffic
from storage_adapters.features import FEATURE_CHECKSUMS, FEATURE_OBJECT_LOCK, FEATURE_SERVER_SIDE_COPY
from storage_adapters.s3 import MAX_PARTS, MIN_PART_SIZE, UPLOAD_CONCURRENCY, MiB, part_size
from storage_adapters.s3_uri import parse_s3_uri
from tests.services import free_port

pytestmark = pytest.mark.s3

PREFIX = "node"


def _apply(monkeypatch, env: dict[str, str | None]) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def _names(server, bucket: str) -> list[str]:
    client = server.client()
    try:
        return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    finally:
        client.close()


def _uploads(server, bucket: str) -> list[str]:
    client = server.client()
    try:
        return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    finally:
        client.close()


def _generated(total: int, chunk: int = MiB, seed: int = 7):
    """``total`` pseudo-random bytes in ``chunk``-sized pieces, made on the fly."""
    rng = random.Random(seed)
    block = rng.randbytes(chunk)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield sent.to_bytes(8, "big") + block[8:n] if n > 8 else block[:n]
        sent += n


def _digest_of(total: int, chunk: int = MiB, seed: int = 7) -> str:
    h = hashlib.sha256()
    for piece in _generated(total, chunk, seed):
        h.update(piece)
    return h.hexdigest()


@pytest.fixture
def node(s3_env, s3_bucket):
    with open_adapter(s3_env.uri(s3_bucket, PREFIX)) as adapter:
        yield adapter


@pytest.fixture
def lock_bucket(s3_server):
    name = s3_server.new_bucket(object_lock=True)
    yield name
    s3_server.remove_bucket(name)


# --- part sizes --------------------------------------------------------------


def test_part_sizes_respect_s3_limits():
    assert part_size(20 * MiB, 1) == MIN_PART_SIZE
    for size in (10 * 1024**3, 200 * 1024**3, 5 * 1024**4):
        step = part_size(size, 1)
        assert step >= MIN_PART_SIZE and step % MiB == 0
        assert -(-size // step) <= MAX_PARTS
    # unknown size: 8 MiB parts first, growing so that 10,000 parts reach 5 TiB
    assert part_size(None, 1) == MIN_PART_SIZE
    assert sum(part_size(None, n) for n in range(1, MAX_PARTS + 1)) >= 5 * 1024**4


# --- streaming and multipart -------------------------------------------------


def test_large_stream_goes_multipart_with_bounded_memory(node, s3_server, s3_bucket):
    total = 64 * MiB
    tracemalloc.start()
    try:
        result = node.write("big/object.bin", _generated(total))
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read = hashlib.sha256()
        for chunk in node.read("big/object.bin"):
            read.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = _digest_of(total)
    assert result.size == total and result.digests["sha256"] == expected
    assert read.hexdigest() == expected
    # the parts in flight plus the one filling, never the object (64 MiB here)
    bound = (UPLOAD_CONCURRENCY + 1) * MIN_PART_SIZE + 8 * MiB
    assert bound < total
    assert write_peak < bound, f"write peak {write_peak / MiB:.1f} MiB"
    assert read_peak < 12 * MiB, f"read peak {read_peak / MiB:.1f} MiB"
    client = s3_server.client()
    head = client.head_object(Bucket=s3_bucket, Key=f"{PREFIX}/big/object.bin")
    client.close()
    assert head["ETag"].strip('"').endswith(f"-{total // MIN_PART_SIZE}")
    # a multipart checksum is a checksum of the part checksums: never reported as the object's sha256
    assert "sha256" not in node.stat("big/object.bin").checksums
    assert _uploads(s3_server, s3_bucket) == []


def test_known_size_and_stored_checksum_of_single_put(node):
    data = random.Random(1).randbytes(3 * MiB)
    node.write("small/one", data, size=len(data))
    info = node.stat("small/one")
    assert info.size == len(data)
    assert info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
    assert info.modified is not None and info.modified.tzinfo is not None


def test_ranged_reads_across_part_boundaries(node):
    total = 20 * MiB + 123
    data = b"".join(_generated(total, seed=3))
    node.write("r/multi", _generated(total, seed=3), size=total)
    boundary = MIN_PART_SIZE
    for offset, length in [
        (boundary - 100, 200),
        (boundary, 10),
        (boundary - 1, 1),
        (2 * boundary - 5, MiB),
        (0, 3 * boundary),
        (total - 50, 500),
        (boundary + 17, None),
    ]:
        got = read_all(node, "r/multi", offset, length)
        end = total if length is None else offset + length
        assert got == data[offset:end], (offset, length)
    assert read_all(node, "r/multi", total + 10) == b""


def test_read_of_missing_key_and_empty_range(node):
    with pytest.raises(ObjectNotFound):
        node.read("absent")
    with pytest.raises(ObjectNotFound):
        node.read("absent", 3, 0)


# --- checksums and aborted uploads -------------------------------------------


@pytest.mark.parametrize("total", [MiB, 20 * MiB], ids=["single-put", "multipart"])
def test_wrong_expected_digest_aborts_and_leaves_nothing(node, s3_server, s3_bucket, total):
    with pytest.raises(ChecksumMismatch):
        node.write("v/bad", _generated(total), expected={"sha256": "0" * 64})
    assert not exists(node, "v/bad")
    assert _names(s3_server, s3_bucket) == []
    assert _uploads(s3_server, s3_bucket) == []


def test_server_refuses_a_body_that_does_not_match_its_sha256(s3_server, s3_bucket):
    client = s3_server.client()
    wrong = s3_module._b64_sha256(b"something else")
    with pytest.raises(ClientError) as refused:
        client.put_object(
            Bucket=s3_bucket, Key="raw", Body=b"payload", ChecksumAlgorithm="SHA256", ChecksumSHA256=wrong
        )
    client.close()
    assert refused.value.response["Error"]["Code"] in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest")
    assert _names(s3_server, s3_bucket) == []


@pytest.mark.parametrize(
    ("total", "checksum"), [(MiB, "_b64_sha256"), (20 * MiB, "_b64_crc32")], ids=["single-put", "multipart"]
)
def test_damage_in_transit_becomes_checksum_mismatch(node, s3_server, s3_bucket, monkeypatch, total, checksum):
    # the adapter announces the checksum of other bytes, as if the body had been damaged after hashing
    honest = getattr(s3_module, checksum)
    monkeypatch.setattr(s3_module, checksum, lambda data: honest(bytes(data) + b"damage"))
    with pytest.raises(ChecksumMismatch) as refused:
        node.write("t/damaged", _generated(total))
    assert "damaged on the way" in str(refused.value)
    assert refused.value.retryable
    assert _names(s3_server, s3_bucket) == []
    assert _uploads(s3_server, s3_bucket) == []


def test_server_refuses_a_part_that_does_not_match_its_crc32(s3_server, s3_bucket):
    client = s3_server.client()
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key="raw-parts", ChecksumAlgorithm="CRC32")["UploadId"]
    body = b"p" * MIN_PART_SIZE
    with pytest.raises(ClientError) as refused:
        client.upload_part(
            Bucket=s3_bucket, Key="raw-parts", UploadId=upload, PartNumber=1, Body=body,
            ChecksumAlgorithm="CRC32", ChecksumCRC32=s3_module._b64_crc32(body[:-1] + b"q"),
        )
    client.abort_multipart_upload(Bucket=s3_bucket, Key="raw-parts", UploadId=upload)
    client.close()
    assert refused.value.response["Error"]["Code"] in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest")


def test_part_checksum_is_the_crc32_s3_expects():
    # the value S3 documents for CRC32: the big-endian checksum, base64 (zlib's CRC32 of "123456789" is cbf43926)
    assert s3_module._b64_crc32(b"123456789") == base64.b64encode(bytes.fromhex("cbf43926")).decode()


def test_failing_source_aborts_the_multipart_upload(node, s3_server, s3_bucket):
    def broken():
        yield from _generated(20 * MiB)
        raise OSError("delivery disk went away")

    with pytest.raises(OSError, match="went away"):
        node.write("w/partial", broken())
    assert _uploads(s3_server, s3_bucket) == []
    assert _names(s3_server, s3_bucket) == []


def test_sweep_temporary_aborts_stale_uploads(node, s3_server, s3_bucket):
    client = s3_server.client()
    client.create_multipart_upload(Bucket=s3_bucket, Key=f"{PREFIX}/left/over")
    client.create_multipart_upload(Bucket=s3_bucket, Key="other-node/left/over")
    client.close()
    assert sweep_temporary(node, older_than_seconds=3600) == 0
    assert sweep_temporary(node, older_than_seconds=0) == 1
    assert _uploads(s3_server, s3_bucket) == ["other-node/left/over"]


# --- listing -----------------------------------------------------------------


def test_listing_paginates_past_1000_keys(node):
    keys = [f"many/{i:05d}" for i in range(1100)]
    for key in keys:
        node.write(key, b"x")
    listed = [o.key for o in node.list("many/")]
    assert listed == keys
    assert [o.key for o in node.list("many/010")] == keys[1000:1100]


def test_listing_is_in_byte_order_across_levels(node):
    # SeaweedFS's own listing puts "a/…" before "a.txt"; the adapter must not
    keys = ["d/a/b", "d/a.txt", "d/a b", "d/a!", "d/a-1/x", "d/a/c/d", "d/b", "d/a0", "d/é", "d/z/y/x"]
    for key in keys:
        node.write(key, key.encode())
    expected = sorted(keys, key=lambda k: k.encode())
    assert [o.key for o in node.list("d/")] == expected
    assert [o.key for o in node.list("d/a")] == [k for k in expected if k.startswith("d/a")]
    assert {o.key: o.size for o in node.list()} == {k: len(k.encode()) for k in keys}


# --- server-side copy ---------------------------------------------------------


def test_server_side_copy_between_buckets(s3_env, s3_bucket):
    other = s3_env.new_bucket()
    try:
        data = random.Random(5).randbytes(2 * MiB)
        with open_adapter(s3_env.uri(s3_bucket, "a")) as source, open_adapter(s3_env.uri(other, "b")) as target:
            source.write("pkg/file", data)
            assert FEATURE_SERVER_SIDE_COPY in target.features and FEATURE_CHECKSUMS in target.features
            assert target.copy_from(source, "pkg/file", "copied/file") is True
            assert traffic(target) == 0
            assert read_all(target, "copied/file") == data
            with pytest.raises(ObjectNotFound):
                target.copy_from(source, "pkg/absent", "copied/absent")
    finally:
        s3_env.remove_bucket(other)


def test_multipart_server_side_copy(node, s3_env, s3_bucket):
    total = 12 * MiB + 5
    node.write("src", _generated(total), size=total)
    node.single_copy_limit = 5 * MiB
    node.copy_part_size = 5 * MiB
    assert node.copy_from(node, "src", "dst") is True
    assert next(node.digest_many(["dst"])).digests["sha256"] == _digest_of(total)
    client = s3_env.client()
    etag = client.head_object(Bucket=s3_bucket, Key=f"{PREFIX}/dst")["ETag"]
    client.close()
    assert etag.strip('"').endswith("-3")


def test_copy_from_other_back_ends_is_declined(node, tmp_path):
    with open_adapter((tmp_path / "fs").as_uri()) as local:
        local.write("x", b"x")
        assert node.copy_from(local, "x", "x") is False


def test_traffic_counts_bytes_both_ways(node):
    node.write("t/x", b"a" * 1000)
    read_all(node, "t/x")
    read_all(node, "t/x", 100, 10)
    assert traffic(node) == 2010


# --- retention (Object Lock) ----------------------------------------------------


def test_retention_locks_every_write(s3_env, lock_bucket, s3_bucket):
    uri = s3_env.uri(lock_bucket, PREFIX, retention="GOVERNANCE", retention_days="2")
    with open_adapter(uri) as node, open_adapter(s3_env.uri(s3_bucket)) as plain:
        assert node._retention_supported()
        assert FEATURE_OBJECT_LOCK in node.features
        node.write("w/small", b"kept")
        node.write("w/large", _generated(9 * MiB))
        plain.write("source", b"copied in")
        assert node.copy_from(plain, "source", "w/copied")
        client = s3_env.client()
        soon = datetime.now(timezone.utc) + timedelta(days=2)
        for key in ("w/small", "w/large", "w/copied"):
            head = client.head_object(Bucket=lock_bucket, Key=f"{PREFIX}/{key}")
            assert head["ObjectLockMode"] == "GOVERNANCE", key
            assert abs((head["ObjectLockRetainUntilDate"] - soon).total_seconds()) < 600, key
        client.close()
        with pytest.raises(RetentionLocked) as locked:
            node.delete("w/small")
        assert "GOVERNANCE retention until" in str(locked.value)
        assert not locked.value.retryable
        assert read_all(node, "w/small") == b"kept"


def test_an_audit_of_a_node_without_retention_never_asks_for_the_lock_configuration(node, monkeypatch):
    node.write("a/f", b"audited")

    def asked():
        raise AssertionError("GetObjectLockConfiguration was called")

    monkeypatch.setattr(node, "_retention_supported", asked)
    assert FEATURE_OBJECT_LOCK not in node.features
    assert [key for key, _ in node.inventory("a/")] == ["a/f"]
    rows = [("f", 7, (hashlib.sha256(b"audited").hexdigest(),))]
    assert [b.checked for b in node.verify_many("a/", rows)] == [1]


def test_a_bucket_that_cannot_be_asked_about_its_lock_is_not_said_to_lock_and_a_write_fails(
    s3_env, lock_bucket, monkeypatch
):
    with open_adapter(s3_env.uri(lock_bucket, PREFIX, retention="GOVERNANCE", retention_days="2")) as node:
        def down():
            raise StorageUnavailable("the store does not answer", location=node.location)

        monkeypatch.setattr(node, "_retention_supported", down)
        assert FEATURE_OBJECT_LOCK not in node.features
        assert traffic(node) == 0  # an audit asks this first: it never fails
        with pytest.raises(StorageUnavailable):
            node.write("x", b"must not land unlocked")
    assert f"{PREFIX}/x" not in _names(s3_env, lock_bucket)


def test_retention_is_refused_on_a_bucket_without_object_lock(s3_env, s3_bucket):
    with open_adapter(s3_env.uri(s3_bucket, PREFIX, retention="COMPLIANCE", retention_days="30")) as node:
        assert node._retention_supported() is False
        assert FEATURE_OBJECT_LOCK not in node.features
        with pytest.raises(UnsupportedURI) as refused:
            node.write("x", b"must not land unlocked")
    assert "does not have it enabled" in str(refused.value)
    assert _names(s3_env, s3_bucket) == []


def test_create_bucket_with_object_lock(s3_env):
    name = f"t-created-{random.randrange(10**9)}"
    try:
        uri = s3_env.uri(name, "", create_bucket="1", retention="GOVERNANCE", retention_days="1")
        with open_adapter(uri) as node:
            assert node._retention_supported()
            node.write("k", b"v")
        with open_adapter(uri) as again:  # creating an existing bucket of ours is fine
            assert read_all(again, "k") == b"v"
    finally:
        s3_env.remove_bucket(name)


# --- credentials ------------------------------------------------------------------


def test_wrong_secret_is_access_denied_and_writes_nothing(s3_server, s3_bucket, monkeypatch, tmp_path):
    env = s3_server.credentials_env(home=tmp_path)
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    _apply(monkeypatch, env)
    with open_adapter(s3_server.uri(s3_bucket, PREFIX)) as node:
        with pytest.raises(AccessDenied) as denied:
            node.write("x", b"data")
        with pytest.raises(AccessDenied):
            node.stat("x")
    message = str(denied.value)
    assert "check the credentials/profile" in message
    assert s3_bucket in message and s3_server.endpoint in message
    assert "not-the-secret" not in message
    assert not denied.value.retryable
    assert _names(s3_server, s3_bucket) == []


def test_read_only_identity_can_read_but_not_write(s3_server, s3_bucket, monkeypatch, tmp_path):
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=f"{PREFIX}/there", Body=b"readable")
    client.close()
    _apply(monkeypatch, s3_server.credentials_env(s3_server.reader, home=tmp_path))
    with open_adapter(s3_server.uri(s3_bucket, PREFIX)) as node:
        assert read_all(node, "there") == b"readable"
        with pytest.raises(AccessDenied):
            node.write("new", b"refused")
        with pytest.raises(AccessDenied):
            node.delete("there")
    assert _names(s3_server, s3_bucket) == [f"{PREFIX}/there"]


def test_credentials_from_a_named_profile(s3_server, s3_bucket, monkeypatch, tmp_path):
    _apply(monkeypatch, s3_server.profile_env("preserve-node", tmp_path / "aws"))
    with open_adapter(s3_server.uri(s3_bucket, PREFIX, profile="preserve-node")) as node:
        node.write("via/profile", b"ok")
        assert read_all(node, "via/profile") == b"ok"
    with pytest.raises(UnsupportedURI, match="profile 'nobody' is not in the AWS config files"):
        open_adapter(s3_server.uri(s3_bucket, PREFIX, profile="nobody"))


def test_no_credentials_at_all(s3_server, s3_bucket, monkeypatch, tmp_path):
    _apply(monkeypatch, s3_server.credentials_env(home=tmp_path))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with open_adapter(s3_server.uri(s3_bucket, PREFIX)) as node:
        with pytest.raises(AccessDenied, match="no usable AWS credentials"):
            node.stat("x")


# --- URIs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "s3://AKIAEXAMPLE:hunter2@bucket/x",
        "s3://AKIAEXAMPLE@bucket/x",
        "s3://bucket/x?endpoint=http://AKIAEXAMPLE:hunter2@127.0.0.1:9000",
        "s3://bucket/x?secret_key=hunter2",
        "s3://bucket/x?aws_secret_access_key=hunter2&region=eu-west-1",
    ],
)
def test_credentials_in_uris_are_refused_without_echoing_them(uri):
    with pytest.raises(UnsupportedURI) as refused:
        open_adapter(uri)
    message = str(refused.value)
    assert "hunter2" not in message and "AKIAEXAMPLE" not in message
    assert "credential" in message


@pytest.mark.parametrize(
    "uri, complaint",
    [
        ("s3://Bucket_Name/x", "not a valid bucket name"),
        ("s3://bucket:9000/x", "?endpoint="),
        ("s3://bucket/x?retention=COMPLIANCE", "retention_days"),
        ("s3://bucket/x?retention_days=3", "retention=COMPLIANCE"),
        ("s3://bucket/x?retention=FOREVER&retention_days=3", "COMPLIANCE, GOVERNANCE"),
        ("s3://bucket/x?retention=GOVERNANCE&retention_days=0", "whole number"),
        ("s3://bucket/x?addressing=sideways", "path, virtual"),
        ("s3://bucket/x?endpoint=ftp://host", "http://"),
        ("s3://bucket/../x", "bad prefix"),
        ("s3://bucket/x?region=a&region=b", "twice"),
        ("s3://bucket/x?create_bucket=maybe", "create_bucket"),
    ],
)
def test_bad_uris_are_refused(uri, complaint):
    with pytest.raises(UnsupportedURI) as refused:
        parse_s3_uri(uri)
    assert complaint in str(refused.value)


def test_uri_parsing():
    spec = parse_s3_uri(
        "s3://my-bucket/nodes/a/?endpoint=https://s3.example.org/&region=eu-1&profile=p"
        "&retention=compliance&retention_days=3650&create_bucket=1"
    )
    assert (spec.bucket, spec.prefix, spec.root) == ("my-bucket", "nodes/a", "nodes/a/")
    assert (spec.endpoint, spec.region, spec.profile, spec.addressing) == (
        "https://s3.example.org",
        "eu-1",
        "p",
        "path",
    )
    assert (spec.retention_mode, spec.retention_days, spec.create_bucket) == ("COMPLIANCE", 3650, True)
    aws = parse_s3_uri("s3://my-bucket")
    assert (aws.endpoint, aws.prefix, aws.root, aws.addressing) == (None, "", "", "virtual")


# --- unknown bucket, unreachable service ---------------------------------------------


def test_unknown_bucket_says_to_create_it(s3_env):
    with open_adapter(s3_env.uri("t-no-such-bucket", PREFIX)) as node:
        for action in (lambda: node.stat("x"), lambda: list(node.list()), lambda: node.write("x", b"x")):
            with pytest.raises(StorageUnavailable) as missing:
                action()
            assert "does not exist" in str(missing.value) and "create_bucket=1" in str(missing.value)
    client = s3_env.client()
    assert "t-no-such-bucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    client.close()


def test_unreachable_endpoint_is_retryable(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with open_adapter(f"s3://bucket/x?endpoint=http://127.0.0.1:{free_port()}") as node:
        with pytest.raises(StorageUnavailable) as down:
            node.stat("x")
    assert down.value.retryable
