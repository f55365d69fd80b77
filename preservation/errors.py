"""The one error tree of `preserve`.

Every error an operator can see is a :class:`PreservationError` subclass with
a stable ``code`` (shown in messages and JSON), a stable process ``exit_code``
and a ``retryable`` flag that the job queue reads.  Messages say what happened
and what to do next.

Exit codes: 0 ok, 1 findings (audit / validation failures, reported by the
commands themselves through ``cli.common.exit_on_findings``), 2 usage; the
classes below own 3 and up.
"""

from __future__ import annotations

from typing import Any, ClassVar

EXIT_FINDINGS = 1
EXIT_USAGE = 2


class PreservationError(Exception):
    """Root of every error `preserve` raises on purpose."""

    code: ClassVar[str] = "E000"
    exit_code: ClassVar[int] = 3
    retryable: ClassVar[bool] = False
    template: ClassVar[str] = "{detail}"

    def __init__(self, detail: str = "", **params: Any) -> None:
        self.detail = detail
        self.params = params
        try:
            message = self.template.format(detail=detail, **params)
        except (KeyError, IndexError):
            message = detail or self.template
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "error": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


# --- configuration and usage -------------------------------------------------


class ConfigError(PreservationError):
    code = "E100"
    exit_code = 4
    template = "configuration error: {detail}"


class PolicyError(ConfigError):
    code = "E101"
    exit_code = 4
    template = "invalid policy {source}: {detail}"


class NotFound(PreservationError):
    """A named thing (node, collection, package, job …) does not exist."""

    code = "E110"
    exit_code = 5
    template = "{detail}"


class AlreadyExists(PreservationError):
    code = "E111"
    exit_code = 6
    template = "{detail}"


class InvalidRequest(PreservationError):
    """The operator asked for something that cannot be done as asked."""

    code = "E112"
    exit_code = EXIT_USAGE
    template = "{detail}"


class InvalidText(InvalidRequest):
    """Outside text that cannot be accepted: characters XML 1.0 cannot carry, or too long."""

    code = "E113"
    exit_code = EXIT_USAGE
    template = "{detail}"


class UsageReportRefused(InvalidRequest):
    """A COUNTER report request that cannot be served as asked; ``counter_code`` is its COUNTER API exception."""

    code = "E114"
    exit_code = 24
    template = "{detail}"


class InvalidIdentifier(InvalidRequest):
    """An ISSN, ISBN, CN serial number, DOI or publisher title id that is malformed or fails its check digit.

    ``scheme`` names the identifier kind and ``reason`` why it was refused
    (see :mod:`preservation.identifiers`).
    """

    code = "E115"
    exit_code = 19
    template = "{detail}"


class AmbiguousId(InvalidRequest):
    """A short id prefix that matches more than one package; ``candidates`` lists them."""

    code = "E116"
    exit_code = 20
    template = "{detail}"


class NodeInUse(InvalidRequest):
    """A node cannot be removed while the catalog still counts copies (or jobs) on it."""

    code = "E117"
    exit_code = 21
    template = "{detail}"


class Interrupted(PreservationError):
    """The operator pressed Ctrl-C; the message says what state was left and what finishes it."""

    code = "E118"
    exit_code = 22
    template = "interrupted: {detail}"


# --- catalog -----------------------------------------------------------------


class CatalogError(PreservationError):
    code = "E200"
    exit_code = 7
    retryable = True
    template = "catalog error: {detail}"


class CatalogNotInitialised(CatalogError):
    code = "E201"
    retryable = False
    template = "no catalog at {url}: run `preserve init` first"


class CatalogOutdated(CatalogError):
    code = "E202"
    retryable = False
    template = (
        "the catalog at {url} is at schema revision {current}, this preserve needs {head}: "
        "back it up, then run `preserve catalog upgrade`"
    )


class CatalogTooNew(CatalogError):
    code = "E203"
    retryable = False
    template = (
        "the catalog at {url} is at schema revision {current}, unknown to this preserve "
        "(newest known: {head}): upgrade preserve on this host"
    )


class CatalogDriverMissing(CatalogError):
    code = "E204"
    exit_code = 4
    retryable = False
    template = "the catalog at {url} needs the Python module {module!r}, which is not installed: {remedy}"


# --- storage -----------------------------------------------------------------


class StorageError(PreservationError):
    """A storage back end failed; the message names the node/URI and the key."""

    code = "E300"
    exit_code = 8
    retryable = True
    template = "storage error: {detail}"


class InvalidKey(StorageError):
    code = "E301"
    retryable = False
    template = "refused storage key {key!r}: {detail}"


class ObjectNotFound(StorageError):
    code = "E302"
    retryable = False
    template = "no object {key!r} in {location}"


class StorageUnavailable(StorageError):
    code = "E303"
    retryable = True
    template = "storage at {location} is unavailable: {detail}"


class AccessDenied(StorageError):
    code = "E304"
    retryable = False
    template = "access denied by {location}: {detail}"


class ChecksumMismatch(StorageError):
    """Bytes written or read do not match the digest that was announced."""

    code = "E305"
    retryable = True
    template = "checksum mismatch for {key!r} in {location}: {detail}"


class StorageFull(StorageError):
    code = "E306"
    retryable = True
    template = "no space left at {location}: {detail}"


class RetentionLocked(StorageError):
    code = "E307"
    retryable = False
    template = "{key!r} in {location} is under retention and cannot be deleted: {detail}"


class UnsupportedURI(StorageError):
    code = "E308"
    retryable = False
    exit_code = 4
    template = "unsupported storage URI {uri!r}: {detail}"


class ReadOnlyStorage(StorageError):
    code = "E309"
    retryable = False
    template = "storage at {location} is read-only: refused to {detail}"


class NotRegularFile(InvalidKey):
    """The key names a FIFO, socket, symbolic link or device on the node: never data, never read."""

    code = "E310"
    retryable = False
    template = "refused storage key {key!r}: {detail}"


class AgentProtocolError(StorageError):
    """A node agent's answer breaks the protocol: a key outside what was asked, a check that does not account
    for exactly the files sent.  Nothing of such an answer is used; asking again would get the same answer."""

    code = "E311"
    retryable = False
    template = "the node agent at {location} broke the protocol: {detail}"


class SourceFailed(Exception):
    """Reading the bytes being copied failed: the source's fault, not the writer's.

    ``error`` is what the source raised: its store's coded error, or the
    ``OSError`` of a local read before the source store has translated it.
    Deliberately not a :class:`PreservationError`: it must pass through a
    writer's own ``except PreservationError`` untouched, so that the caller
    blames the source copy and never the destination.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


# --- bags and deliveries -----------------------------------------------------


class BagError(PreservationError):
    code = "E400"
    exit_code = 9
    template = "{detail}"


class BagInvalid(BagError):
    """A bag failed validation; ``report`` holds every finding."""

    code = "E401"
    exit_code = EXIT_FINDINGS
    template = "bag {path} is invalid: {detail}"

    def __init__(self, detail: str = "", report: Any = None, **params: Any) -> None:
        self.report = report
        super().__init__(detail, **params)


class DeliveryRejected(BagError):
    """A delivery cannot be ingested as given; ``findings`` lists every reason."""

    code = "E402"
    exit_code = 10
    template = "delivery {source} refused: {detail}"

    def __init__(self, detail: str = "", findings: Any = None, **params: Any) -> None:
        self.findings = list(findings or [])
        super().__init__(detail, **params)


# --- preservation operations -------------------------------------------------


class PlacementError(PreservationError):
    code = "E500"
    exit_code = 11
    retryable = True
    template = "cannot place package: {detail}"


class VerificationFailed(PreservationError):
    """A copy just written did not re-read with the expected digests."""

    code = "E501"
    exit_code = 12
    retryable = True
    template = "copy of {package} on node {node} failed verification: {detail}"


class NoVerifiedSource(PreservationError):
    code = "E502"
    exit_code = 13
    template = "no verified copy of {package} is left to {detail}"


class VersionRefused(PreservationError):
    """A new version of a package cannot be registered as asked (see docs/versions.md)."""

    code = "E503"
    exit_code = 25
    template = "cannot make a new version of {package}: {detail}"


class AmbiguousVersionMatch(VersionRefused):
    """The policy's matching rule finds more than one package the delivery could be the next version of."""

    code = "E508"
    template = ("the delivery matches {count} packages on {rule} ({detail}): nothing was registered; name the one "
                "it follows with --version-of")


class VersionInUse(PreservationError):
    """Removing these versions would remove bytes that a kept version references."""

    code = "E504"
    exit_code = 26
    template = "{detail}"


class DuplicateDelivery(PreservationError):
    """A delivery whose payload manifest equals a preserved package's (``--allow-duplicate`` to keep both)."""

    code = "E505"
    exit_code = 23
    template = "{detail}"


class ResuppliedFileMismatch(PreservationError):
    """A file offered to replace a lost one is not the file the catalog holds (size or a digest differs)."""

    code = "E506"
    exit_code = 27
    template = ("{detail}: nothing was written. Find the file of the original delivery whose size, sha256 and "
                "sha512 are the catalog's (`preserve package show`, the bag's manifests)")


class RestoreIncomplete(PreservationError):
    """``restore --partial`` wrote every intact file, but some files have no copy holding them right."""

    code = "E507"
    exit_code = 28
    template = "{detail}"


class JobError(PreservationError):
    code = "E600"
    exit_code = 14
    template = "{detail}"


class WaitTimedOut(JobError):
    """``ingest --wait --timeout`` ended before the package's replication jobs did; they go on."""

    code = "E601"
    exit_code = 31
    template = "{detail}: the workers go on writing its copies; `preserve package show` follows them"


class NotPreserved(JobError):
    """The package's replication jobs ended and it is not preserved (a copy could not be written or verified)."""

    code = "E602"
    exit_code = 32
    template = "{detail}: see `preserve jobs list --state dead` for why, then `preserve jobs retry`"


class AccessRefused(PreservationError):
    code = "E800"
    exit_code = 15
    template = "access refused: {detail}"


def all_error_classes() -> list[type[PreservationError]]:
    seen: list[type[PreservationError]] = []
    stack: list[type[PreservationError]] = [PreservationError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def error_class(
    code: object,
    among: tuple[type[PreservationError], ...] = (StorageError,),
    default: type[PreservationError] = StorageError,
) -> type[PreservationError]:
    """The error class whose code is ``code`` when it is one of ``among``; ``default`` otherwise.

    A report or a node agent's answer keeps an error as its code and message (a
    finding's ``error_code``, a response's ``code``); this gives the class back,
    and with it whether the failure may pass on a retry, without letting a
    recorded or remote code stand for an error of another kind.
    """
    for cls in all_error_classes():
        if cls.code == code and issubclass(cls, among):
            return cls
    return default


# --- access service ----------------------------------------------------------


class AuthenticationFailed(AccessRefused):
    """Unknown user, wrong password, or an API key that is unknown, expired or revoked."""

    code = "E801"
    exit_code = 16
    template = "authentication failed: {detail}"


class TooManyAttempts(AccessRefused):
    """Login refused without checking the password: too many recent failures."""

    code = "E802"
    exit_code = 17
    retryable = True
    template = "too many failed logins for {username!r} from {client_ip}: try again in {minutes} minutes"


class AccountDisabled(AuthenticationFailed):
    """The right password of a user (or library) an operator has disabled: told only to who knows the password."""

    code = "E804"
    template = "this account is disabled: {detail}"


class TooManyResetRequests(TooManyAttempts):
    """Password reset links asked for too often from one address."""

    code = "E805"
    template = "too many password reset requests from {client_ip}: try again in {minutes} minutes"


class MailNotSent(PreservationError):
    """The SMTP server of ``notifications.email`` could not be reached or refused the message."""

    code = "E806"
    exit_code = 29
    retryable = True
    template = "the e-mail was not sent: {detail} (check notifications.email in preserve.yaml)"


class ImportRejected(PreservationError):
    """A bulk import was refused as a whole; ``findings`` names every bad row and field."""

    code = "E803"
    exit_code = 18
    template = "{source} refused, nothing was imported: {detail}"

    def __init__(self, detail: str = "", findings: Any = None, **params: Any) -> None:
        self.findings = list(findings or [])
        super().__init__(detail, **params)


# --- evidence: the event log's signed checkpoints (docs/evidence.md) ----------------


class CheckpointKeyMissing(ConfigError):
    """No signing key configured, or its file is missing or unreadable."""

    code = "E700"
    exit_code = 40
    template = "no checkpoint signing key: {detail} (`preserve init` creates one; see docs/evidence.md)"


class NotCheckpointed(PreservationError):
    """An event, or the log, is not yet under a signed checkpoint."""

    code = "E701"
    exit_code = 41
    template = "{detail}: run `preserve events checkpoint` first"


class CheckpointInvalid(PreservationError):
    """A checkpoint note that cannot be read, is signed by no known key, or whose signature is wrong."""

    code = "E702"
    exit_code = 42
    template = "checkpoint refused: {detail}"


class WitnessRefused(PreservationError):
    """A witness refuses a checkpoint that does not extend the last one it holds (a fork, truncation or rewrite)."""

    code = "E703"
    exit_code = 43
    template = "witness refused the checkpoint: {detail}"


class QuorumNotReached(PreservationError):
    """Too few witnesses co-signed a key-introduction checkpoint for the new key to count."""

    code = "E704"
    exit_code = 44
    retryable = True
    template = "{detail}: run the command again when more nodes answer (docs/evidence.md)"


class WitnessKeyRefused(PreservationError):
    """A witness key an operator would import or rotate to: a bad key file, a fingerprint that differs, a node
    that is no witness agent, or a key that is not new."""

    code = "E705"
    exit_code = 45
    template = "witness key refused: {detail} (docs/evidence.md)"
