"""S3 back end (boto3): ``s3://BUCKET/PREFIX?endpoint=URL&region=R&profile=P``.

Works with AWS and S3-compatible stores (Ceph RGW, MinIO, SeaweedFS).  Key
``k`` is stored as object ``PREFIX/k``.  Credentials come from the boto3
chain or a named profile, never from the URI (see :mod:`.s3_uri`).

Writes are atomic: an object that fits in one part (8 MiB) is buffered and
sent with one PutObject only after the source stream has been consumed (and
verified); anything larger goes through a multipart upload that becomes
visible only on completion and is aborted on any failure.  A one-part object
carries its SHA-256 (``x-amz-checksum-sha256``, which the store keeps and
``stat`` reports); each part of a larger one carries its CRC32
(``x-amz-checksum-crc32``, as boto3's own uploads do), so the server refuses
bytes damaged on the way and the part is sent again.  A part's SHA-256 would
cost the worker and the store one more hash of every byte for nothing the
copy keeps: a multipart object's stored checksum is a checksum of checksums,
and every copy is re-read and verified against its sha256 and sha512 before
the package counts as preserved.  Memory stays at about five parts whatever
the object size: up to four parts are sent by worker threads while the next
fills.

Listing walks the key space one '/' level at a time and merges files and
sub-prefixes itself, so keys come out in byte order even from stores whose
flat listing follows their directory tree (SeaweedFS lists ``a/b`` before
``a.txt``).  Every key of a bucket is an object: there are no FIFOs, sockets
or links to report (``ObjectInfo.irregular`` is never set here).

With ``retention=MODE&retention_days=N`` every object is written under
Object Lock (WORM) until N days after the write, and a retained object
cannot be deleted.  On a versioned bucket a delete leaves a delete marker:
older versions stay until the bucket's lifecycle rules expire them.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import heapq
import itertools
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    ObjectNotFound,
    RetentionLocked,
    StorageError,
    StorageFull,
    StorageUnavailable,
    UnsupportedURI,
)

from .base import ObjectInfo, StorageAdapter, check_key
from .features import (
    FEATURE_CHECKSUMS,
    FEATURE_OBJECT_LOCK,
    FEATURE_SERVER_SIDE_COPY,
    FEATURE_TEMPORARY_FILES,
    FEATURE_TRAFFIC,
)
from .hashing import CHUNK_SIZE
from .s3_uri import S3Location, parse_s3_uri, redact

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART_SIZE = 8 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
# Unknown sizes: the part size doubles every PARTS_PER_STEP parts, so the
# first 8 GiB go in 8 MiB parts and 10,000 parts still reach S3's 5 TiB.
PARTS_PER_STEP = 1000
SINGLE_COPY_LIMIT = 5 * GiB
COPY_PART_SIZE = 512 * MiB
# parts of one object sent at once, as boto3's TransferManager does (it sends 10); each holds a part in memory
UPLOAD_CONCURRENCY = 4

_NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchVersion"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "403",
    "Forbidden",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidToken",
    "ExpiredToken",
    "InvalidSecurity",
}
_BAD_CHECKSUM = {"BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest", "XAmzContentSHA256Mismatch"}
_UNAVAILABLE = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestLimitExceeded",
    "OperationAborted",
}
_STORAGE_FULL = {"QuotaExceeded", "XMinioStorageFull"}
_NO_LOCK_CONFIG = {"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"}
_NOT_IMPLEMENTED = {"NotImplemented", "MethodNotAllowed", "501", "405"}


def part_size(size: int | None, number: int) -> int:
    """Size of part ``number`` (1-based) of a multipart upload of ``size`` bytes (None: unknown)."""
    if size is None:
        return min(MIN_PART_SIZE << ((number - 1) // PARTS_PER_STEP), MAX_PART_SIZE)
    needed = -(-size // MAX_PARTS)
    return min(max(MIN_PART_SIZE, -(-needed // MiB) * MiB), MAX_PART_SIZE)


def _b64_crc32(data: bytes | bytearray) -> str:
    """The part checksum S3 expects for ``ChecksumAlgorithm="CRC32"``: the big-endian CRC32, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def _b64_sha256(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class S3Adapter(StorageAdapter):
    scheme = "s3"

    def __init__(self, uri: str) -> None:
        self.spec: S3Location = parse_s3_uri(uri)
        super().__init__(redact(uri))
        self.bucket = self.spec.bucket
        self._root = self.spec.root
        self._traffic = 0
        self._traffic_lock = threading.Lock()
        self._bucket_checked = False
        self._lock_enabled: bool | None = None
        self.single_copy_limit = SINGLE_COPY_LIMIT
        self.copy_part_size = COPY_PART_SIZE
        try:
            session = boto3.session.Session(profile_name=self.spec.profile)
        except ProfileNotFound as e:
            raise UnsupportedURI(
                f"profile {self.spec.profile!r} is not in the AWS config files "
                "(~/.aws/config and ~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE)",
                uri=self.uri,
            ) from e
        self.region = self.spec.region or session.region_name or "us-east-1"
        self._client = session.client(
            "s3",
            endpoint_url=self.spec.endpoint,
            config=Config(
                region_name=self.region,
                signature_version="s3v4",
                connect_timeout=10,
                read_timeout=120,
                # attempts: botocore's default (3) unless AWS_MAX_ATTEMPTS or the profile says otherwise
                retries={"mode": "standard"},
                tcp_keepalive=True,
                max_pool_connections=16,
                # every upload carries a signed x-amz-checksum-sha256 header,
                # so hashing each body once more for the signature buys nothing
                s3={"addressing_style": self.spec.addressing, "payload_signing_enabled": False},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        if self.spec.create_bucket:
            self._create_bucket()

    @property
    def location(self) -> str:
        return self.spec.describe()

    @property
    def abilities(self) -> frozenset[str]:  # type: ignore[override]
        """Object lock only when this node writes under retention and its bucket allows it (the
        bucket is asked only then, as before the first write).  A bucket that cannot be asked just
        now is not said to lock: asking what an adapter can do never fails (an audit asks for its
        ``traffic``), and the first write asks again and fails with the store's error."""
        found = {FEATURE_SERVER_SIDE_COPY, FEATURE_CHECKSUMS, FEATURE_TRAFFIC, FEATURE_TEMPORARY_FILES}
        if self.spec.retention_mode is not None:
            try:
                if self._retention_supported():
                    found.add(FEATURE_OBJECT_LOCK)
            except StorageError:
                pass
        return frozenset(found)

    def close(self) -> None:
        self._client.close()

    def traffic(self) -> int:
        return self._traffic

    def _count(self, n: int) -> None:
        with self._traffic_lock:
            self._traffic += n

    def _name(self, key: str) -> str:
        return self._root + key

    # --- errors ------------------------------------------------------------

    def _translate(self, e: Exception, key: str = "", action: str = "") -> StorageError:
        """Turn a botocore exception into the adapter error an operator can act on."""
        where = f"bucket {self.bucket!r} at {self.spec.endpoint or 'AWS'}"
        what = f"{action} {key!r}".strip() if key else action or "request"
        if isinstance(e, ClientError):
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            message = error.get("Message") or code
            if code == "NoSuchBucket":
                return self._no_bucket()
            if code in _BAD_CHECKSUM:
                return ChecksumMismatch(
                    f"the server refused the bytes of {what} ({code}): they were damaged on the way",
                    key=key,
                    location=self.location,
                )
            if code in _DENIED or status == 403:
                return AccessDenied(
                    f"{code}: {message} ({what}); check the credentials/profile for {where}", location=self.location
                )
            if code in _NOT_FOUND or status == 404:
                return ObjectNotFound(key=key, location=self.location)
            if code in _STORAGE_FULL:
                return StorageFull(f"{code}: {message} ({what})", location=self.location)
            if code in _UNAVAILABLE or status >= 500:
                return StorageUnavailable(f"{code}: {message} ({what}); retry later", location=self.location)
            return StorageError(f"{code}: {message} ({what} in {self.location})")
        if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
            return AccessDenied(
                f"no usable AWS credentials for {where}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "an instance role, or ?profile=NAME with a profile in the AWS config files",
                location=self.location,
            )
        if isinstance(e, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
            return StorageUnavailable(f"{e} ({what})", location=self.location)
        return StorageError(f"{type(e).__name__}: {e} ({what} in {self.location})")

    def _no_bucket(self) -> StorageUnavailable:
        return StorageUnavailable(
            f"bucket {self.bucket!r} does not exist at {self.spec.endpoint or 'AWS'}: create it "
            "(with Object Lock if the node needs retention), or add create_bucket=1 to the node URI",
            location=self.location,
        )

    def _call(self, operation: str, key: str = "", **params: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **params)
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, key, operation) from e

    # --- bucket --------------------------------------------------------------

    def _create_bucket(self) -> None:
        params: dict[str, Any] = {"ObjectLockEnabledForBucket": self.spec.retention_mode is not None}
        if self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(Bucket=self.bucket, **params)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise self._translate(e, action="CreateBucket") from e
        except BotoCoreError as e:
            raise self._translate(e, action="CreateBucket") from e
        self._bucket_checked = True

    def _check_bucket(self) -> None:
        """Raise the missing-bucket error (once per adapter) instead of a misleading ObjectNotFound."""
        if self._bucket_checked:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise self._no_bucket() from e
            raise self._translate(e, action="HeadBucket") from e
        except BotoCoreError as e:
            raise self._translate(e, action="HeadBucket") from e
        self._bucket_checked = True

    def _retention_supported(self) -> bool:
        """Whether the bucket has Object Lock enabled (asked once, then remembered)."""
        if self._lock_enabled is None:
            try:
                reply = self._client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as e:
                code = str(e.response.get("Error", {}).get("Code", ""))
                if code in _NO_LOCK_CONFIG or code in _NOT_IMPLEMENTED:
                    self._lock_enabled = False
                    return False
                raise self._translate(e, action="GetObjectLockConfiguration") from e
            except BotoCoreError as e:
                raise self._translate(e, action="GetObjectLockConfiguration") from e
            config = reply.get("ObjectLockConfiguration", {})
            self._lock_enabled = config.get("ObjectLockEnabled") == "Enabled"
        return self._lock_enabled

    def _prepare_write(self) -> dict[str, Any]:
        """Check the bucket before the first write; return the Object Lock parameters for a new object."""
        self._check_bucket()
        if self.spec.retention_mode is None:
            return {}
        if not self._retention_supported():
            raise UnsupportedURI(
                f"retention={self.spec.retention_mode} needs Object Lock, but bucket {self.bucket!r} at "
                f"{self.spec.endpoint or 'AWS'} does not have it enabled: use a bucket created with Object Lock "
                "(most stores cannot enable it later) or remove retention from the node URI",
                uri=self.uri,
            )
        until = datetime.now(timezone.utc) + timedelta(days=self.spec.retention_days or 0)
        return {"ObjectLockMode": self.spec.retention_mode, "ObjectLockRetainUntilDate": until}

    # --- reading -------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any]:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self._name(key), ChecksumMode="ENABLED")
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                # a HEAD reply has no body: a missing bucket looks like a missing key
                self._check_bucket()
            raise self._translate(e, key, "HeadObject") from e
        except BotoCoreError as e:
            raise self._translate(e, key, "HeadObject") from e

    def _stat(self, key: str) -> ObjectInfo:
        head = self._head(key)
        checksums: dict[str, str] = {}
        stored = head.get("ChecksumSHA256")
        # a multipart object's checksum is a checksum of part checksums ("…-N"), not of the bytes
        if stored and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT" and "-" not in stored:
            checksums["sha256"] = base64.b64decode(stored).hex()
        return ObjectInfo(key=key, size=head["ContentLength"], modified=head.get("LastModified"), checksums=checksums)

    def _read(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        if length == 0:
            self._head(key)
            return iter(())
        params: dict[str, Any] = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            params["Range"] = f"bytes={offset}-{last}"
        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=self._name(key), **params)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())  # the object exists; the range starts at or after its end
            raise self._translate(e, key, "GetObject") from e
        except BotoCoreError as e:
            raise self._translate(e, key, "GetObject") from e
        return self._stream(reply["Body"], key)

    def _stream(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            for chunk in body.iter_chunks(CHUNK_SIZE):
                self._count(len(chunk))
                yield chunk
        except BotoCoreError as e:
            raise self._translate(e, key, "GetObject") from e
        finally:
            body.close()

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self._walk(self._root + prefix)

    def _walk(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in byte order, one '/' level per request series.

        Sub-prefixes wait in a heap until the first object that sorts after
        them; a store lists a sub-prefix no later than any object sorting
        after it, so nothing is emitted out of order and memory holds one
        page plus the pending sub-prefixes of each open level.
        """
        pending: list[str] = []
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        try:
            for page in pages:
                for common in page.get("CommonPrefixes", ()):
                    heapq.heappush(pending, common["Prefix"])
                for item in page.get("Contents", ()):
                    name = item["Key"]
                    while pending and pending[0] < name:
                        yield from self._walk(heapq.heappop(pending))
                    if name.endswith("/"):
                        continue  # a "folder" marker made by some tools, not an object
                    yield ObjectInfo(key=name[len(self._root) :], size=item["Size"], modified=item.get("LastModified"))
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, prefix, "ListObjectsV2") from e
        while pending:
            yield from self._walk(heapq.heappop(pending))

    # --- writing -------------------------------------------------------------

    def _write(self, key: str, chunks: Iterable[bytes], size: int | None) -> None:
        lock = self._prepare_write()
        parts = _parts(iter(chunks), size)
        # Looking two parts ahead tells a one-part object from a larger one;
        # a one-part object is sent only once the source is exhausted (hence verified).
        early = list(itertools.islice(parts, 2))
        if len(early) < 2:
            body = early[0][1] if early else bytearray()
            self._call(
                "put_object",
                key,
                Key=self._name(key),
                Body=body,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=_b64_sha256(body),
                **lock,
            )
            self._count(len(body))
            return
        self._write_multipart(key, _handed_over(early, parts), lock)

    def _write_multipart(self, key: str, parts: Iterator[tuple[int, bytearray]], lock: dict[str, Any]) -> None:
        """Send the parts UPLOAD_CONCURRENCY at a time while the next fills (memory: that many parts plus one)."""
        name = self._name(key)
        upload = self._call("create_multipart_upload", key, Key=name, ChecksumAlgorithm="CRC32", **lock)["UploadId"]
        done: list[dict[str, Any]] = []
        try:
            with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY, thread_name_prefix="preserve-s3-part") as sender:
                in_flight: collections.deque[Future[dict[str, Any]]] = collections.deque()
                for number, part in parts:
                    if len(in_flight) >= UPLOAD_CONCURRENCY:
                        done.append(in_flight.popleft().result())
                    in_flight.append(sender.submit(self._upload_part, key, upload, number, part))
                    del part
                while in_flight:
                    done.append(in_flight.popleft().result())
            self._call("complete_multipart_upload", key, Key=name, UploadId=upload, MultipartUpload={"Parts": done})
        except BaseException:
            self._abort(name, upload)
            raise

    def _upload_part(self, key: str, upload: str, number: int, part: bytearray) -> dict[str, Any]:
        checksum = _b64_crc32(part)
        reply = self._call(
            "upload_part",
            key,
            Key=self._name(key),
            UploadId=upload,
            PartNumber=number,
            Body=part,
            ChecksumAlgorithm="CRC32",
            ChecksumCRC32=checksum,
        )
        self._count(len(part))
        return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumCRC32": checksum}

    def _abort(self, name: str, upload: str) -> None:
        """Abort an upload while another error propagates; a failure here is left to sweep_temporary."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload)

    # --- deleting ------------------------------------------------------------

    def _delete(self, key: str) -> None:
        head = self._head(key)
        now = datetime.now(timezone.utc)
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            raise RetentionLocked(
                "it is under a legal hold; an administrator of the bucket must lift the hold first",
                key=key,
                location=self.location,
            )
        if head.get("ObjectLockMode") and until is not None and until > now:
            raise RetentionLocked(
                f"{head['ObjectLockMode']} retention until {until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC; "
                "it can be deleted after that date",
                key=key,
                location=self.location,
            )
        self._call("delete_object", key, Key=self._name(key))

    # --- copying -------------------------------------------------------------

    def copy_from(self, source: StorageAdapter, source_key: str, key: str) -> bool:
        """Copy inside the object store when ``source`` is an S3 node on the same service.

        Returns False (the caller streams the bytes) otherwise.  Raises
        ObjectNotFound when the source object is missing.
        """
        if not isinstance(source, S3Adapter):  # a wrapper, perhaps around an S3 store
            source = source.features.provider(FEATURE_SERVER_SIDE_COPY)
        if not isinstance(source, S3Adapter) or (source.spec.endpoint, source.region) != (
            self.spec.endpoint,
            self.region,
        ):
            return False
        source_key = check_key(source_key)
        key = check_key(key)
        size = source._head(source_key)["ContentLength"]
        lock = self._prepare_write()
        origin = {"Bucket": source.bucket, "Key": source._name(source_key)}
        if size <= self.single_copy_limit:
            reply = self._call(
                "copy_object", key, Key=self._name(key), CopySource=origin, ChecksumAlgorithm="SHA256", **lock
            )
        else:
            reply = self._copy_multipart(key, origin, size, lock)
        if lock:
            self._ensure_retention(key, reply.get("VersionId"), lock)
        return True

    def _copy_multipart(self, key: str, origin: dict[str, str], size: int, lock: dict[str, Any]) -> dict[str, Any]:
        name = self._name(key)
        step = max(self.copy_part_size, -(-size // MAX_PARTS))
        upload = self._call("create_multipart_upload", key, Key=name, ChecksumAlgorithm="SHA256", **lock)["UploadId"]
        parts = []
        try:
            for number, start in enumerate(range(0, size, step), start=1):
                end = min(start + step, size) - 1
                reply = self._call(
                    "upload_part_copy",
                    key,
                    Key=name,
                    UploadId=upload,
                    PartNumber=number,
                    CopySource=origin,
                    CopySourceRange=f"bytes={start}-{end}",
                )["CopyPartResult"]
                part = {"PartNumber": number, "ETag": reply["ETag"]}
                if reply.get("ChecksumSHA256"):
                    part["ChecksumSHA256"] = reply["ChecksumSHA256"]
                parts.append(part)
            return self._call(
                "complete_multipart_upload", key, Key=name, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort(name, upload)
            raise

    def _ensure_retention(self, key: str, version: str | None, lock: dict[str, Any]) -> None:
        """Apply retention to a copy when the store ignored the Object Lock headers of CopyObject."""
        head = self._head(key)
        if head.get("ObjectLockMode"):
            return
        params: dict[str, Any] = {"VersionId": version} if version else {}
        self._call(
            "put_object_retention",
            key,
            Key=self._name(key),
            Retention={"Mode": lock["ObjectLockMode"], "RetainUntilDate": lock["ObjectLockRetainUntilDate"]},
            **params,
        )

    # --- housekeeping --------------------------------------------------------

    def sweep_temporary(self, older_than_seconds: float = 3600.0) -> int:
        """Abort multipart uploads under this node's prefix started more than the given age ago."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
        aborted = 0
        pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self._root)
        try:
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"] <= cutoff:
                        self._call(
                            "abort_multipart_upload", upload["Key"], Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, self._root, "ListMultipartUploads") from e
        return aborted


def _handed_over(
    first: list[tuple[int, bytearray]], rest: Iterator[tuple[int, bytearray]]
) -> Iterator[tuple[int, bytearray]]:
    """``first`` then ``rest``, keeping no reference to a part once it is handed over (unlike itertools.chain)."""
    while first:
        yield first.pop(0)
    yield from rest


def _parts(source: Iterator[bytes], size: int | None) -> Iterator[tuple[int, bytearray]]:
    """Cut the chunks of ``source`` into numbered parts of ``part_size`` bytes (the last one shorter).

    Each part is a new buffer handed over to the caller; only the part being
    filled is held here.  An empty source gives no part.
    """
    number = 1
    target = part_size(size, number)
    part = bytearray()
    for chunk in source:
        view = memoryview(chunk)
        while len(part) + len(view) >= target:
            take = target - len(part)
            part += view[:take]
            view = view[take:]
            yield number, part
            number, part = number + 1, bytearray()
            target = part_size(size, number)
        part += view
    if part:
        yield number, part
