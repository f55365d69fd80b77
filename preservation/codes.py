"""Every finding code of `preserve`, in one table.

A finding is what a check reports instead of stopping at the first problem
(:mod:`preservation.findings`).  Codes are stable: tests, scripts and the
catalog assert on them, so a code is never reused for another meaning.  Each
code has a default severity; a few delivery codes are errors in strict
(ingest) mode and warnings otherwise, which :func:`note` applies when asked.

Each family names what reports it and the document that carries its table
(:data:`FAMILIES`); a test keeps every table in step with this module, so a
new code is documented when it is defined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from preservation.findings import ERROR, WARNING, Finding, FindingList


@dataclass(frozen=True)
class Family:
    prefix: str
    doc: str
    """The document, relative to the project root, whose table lists the family's codes."""


FAMILIES: dict[str, Family] = {
    f.prefix: f
    for f in (
        # bag validation: BAG0xx bagit.txt and layout, BAG1xx manifests, BAG2xx payload files,
        # BAG3xx tag files, BAG4xx bag-info.txt, BAG5xx fetch.txt
        Family("BAG", "docs/bagit-findings.md"),
        Family("PRF", "docs/bagit-findings.md"),  # BagIt profile checks
        Family("DLV", "docs/bagit-findings.md"),  # delivery checks before bagging
        Family("A", "docs/concepts.md"),  # the audit of one copy on its node (audits, repairs, the fixity API)
        Family("R", "docs/findings.md"),  # rebuilding a lost catalog from the nodes
        Family("I", "docs/findings.md"),  # bulk imports of entitlements
        Family("FMV", "docs/validation.md"),  # format validation of payload files (preservation.formats.validation)
        Family("CA", "docs/findings.md"),  # content analysis at ingest (what formats and metadata analysers report)
        Family("FMT", "docs/formats.md"),  # format identification of payload files (preservation.formats)
        Family("K", "docs/findings.md"),  # KBART title lists and library holdings files (preservation.kbart)
        Family("MD", "docs/metadata.md"),  # article and book metadata read at ingest (preservation.metadata)
        Family("CFG", "docs/operations.md"),  # `preserve config check` (preservation.config_check)
    )
}


@dataclass(frozen=True)
class FindingCode:
    code: str
    severity: str
    title: str
    strict_only: bool = False
    """An error in strict mode, a warning otherwise."""

    @property
    def family(self) -> str:
        return _FORM.fullmatch(self.code).group(1)


CODES: dict[str, FindingCode] = {}
_FORM = re.compile(r"([A-Z]+)(\d{3})")


def _code(code: str, severity: str, title: str, strict_only: bool = False) -> str:
    """Define ``code``; raises ValueError for a malformed, unknown-family or repeated code."""
    form = _FORM.fullmatch(code)
    if form is None or form.group(1) not in FAMILIES:
        raise ValueError(f"finding code {code!r} is not a known family followed by three digits")
    if code in CODES:
        raise ValueError(f"finding code {code} defined twice")
    CODES[code] = FindingCode(code, severity, title, strict_only)
    return code


# --- bagit.txt and bag layout -------------------------------------------------
BAGIT_TXT_MISSING = _code("BAG001", ERROR, "bagit.txt is missing")
BAGIT_TXT_MALFORMED = _code("BAG002", ERROR, "bagit.txt has a line that is not `Label: value`")
BAGIT_TXT_BOM = _code("BAG003", ERROR, "bagit.txt starts with a byte-order mark")
VERSION_MISSING = _code("BAG004", ERROR, "bagit.txt has no BagIt-Version")
VERSION_UNSUPPORTED = _code("BAG005", ERROR, "BagIt-Version is malformed or not 0.93-1.0")
ENCODING_MISSING = _code("BAG006", ERROR, "bagit.txt has no Tag-File-Character-Encoding")
ENCODING_UNKNOWN = _code("BAG007", ERROR, "Tag-File-Character-Encoding names an unknown encoding")
ENCODING_NOT_UTF8 = _code("BAG008", WARNING, "tag files are not UTF-8 (allowed, but not portable)")
BAGIT_TXT_LAYOUT = _code("BAG009", WARNING, "bagit.txt lines out of order or extra lines")
PAYLOAD_DIR_MISSING = _code("BAG010", ERROR, "the data/ payload directory is missing")
TAG_FILE_UNDECODABLE = _code("BAG011", ERROR, "a tag file cannot be decoded with the declared encoding")
TAG_FILE_BOM = _code("BAG012", WARNING, "a tag file starts with a byte-order mark")
BAG_UNREADABLE = _code("BAG013", ERROR, "the bag directory or a tag file cannot be read")
BAGIT_TXT_LINE_FORM = _code("BAG014", ERROR, "a bagit.txt line is not exactly `Label: value` (RFC 8493 2.1.1)")
BAGIT_TXT_LINE_FORM_OLD = _code("BAG015", WARNING, "a bagit.txt line is not exactly `Label: value` (allowed before 1.0)")

# --- manifests ------------------------------------------------------------------
NO_PAYLOAD_MANIFEST = _code("BAG101", ERROR, "no payload manifest with a supported algorithm")
UNSUPPORTED_ALGORITHM = _code("BAG102", WARNING, "a manifest uses an unsupported algorithm: not verified")
MANIFEST_LINE_MALFORMED = _code("BAG103", ERROR, "a manifest line is not `digest path`")
MANIFEST_BINARY_MARKER = _code("BAG104", WARNING, "md5sum-style `*` binary marker before a path")
MANIFEST_DUPLICATE = _code("BAG105", ERROR, "a manifest lists the same path twice with different digests")
MANIFEST_PATH_UNSAFE = _code("BAG106", ERROR, "a manifest path is absolute or leaves the bag: never opened")
PAYLOAD_ENTRY_OUTSIDE_DATA = _code("BAG107", ERROR, "a payload manifest lists a path outside data/")
MANIFEST_BLANK_LINE = _code("BAG108", WARNING, "a manifest has a blank line")
PATH_NOT_PERCENT_ENCODED = _code("BAG109", WARNING, "a manifest path has `%`, CR or LF not encoded as RFC 8493 says")
PATH_NOT_CANONICAL = _code("BAG110", WARNING, "a manifest path has `.` or empty segments")
MANIFEST_REPEATED_ENTRY = _code("BAG111", WARNING, "a manifest lists the same path twice with the same digest")

# --- payload files ----------------------------------------------------------------
PAYLOAD_MISSING = _code("BAG201", ERROR, "a payload file listed in a manifest is missing")
PAYLOAD_CHANGED = _code("BAG202", ERROR, "a payload file does not match its manifest digest")
PAYLOAD_UNEXPECTED = _code("BAG203", ERROR, "a file in data/ is in no payload manifest")
PAYLOAD_NOT_IN_EVERY_MANIFEST = _code("BAG204", ERROR, "a file in data/ is missing from some payload manifests")
NAME_NORMALISATION_MATCH = _code("BAG205", WARNING, "a manifest path matches a file only after NFC normalisation")
NOT_A_REGULAR_FILE = _code("BAG206", ERROR, "a bag entry is a symlink, device, FIFO or socket: never opened")
BAG_FILE_UNREADABLE = _code("BAG207", ERROR, "a file in the bag cannot be read")
NAMES_COLLIDE_NFC = _code("BAG208", WARNING, "two file names are equal after NFC normalisation")
NAMES_COLLIDE_CASE = _code("BAG209", WARNING, "two file names are equal after case folding")
NAME_NOT_UTF8 = _code("BAG210", ERROR, "a file name in the bag is not valid UTF-8")
PAYLOAD_IS_DIRECTORY = _code("BAG211", ERROR, "a manifest entry names a directory")
CASE_ONLY_DUPLICATE = _code(
    "BAG212", WARNING, "an absent manifest entry differs only by case from a listed file with its digest"
)

# --- tag files --------------------------------------------------------------------
TAG_FILE_MISSING = _code("BAG301", ERROR, "a tag file listed in a tag manifest is missing")
TAG_FILE_CHANGED = _code("BAG302", ERROR, "a tag file does not match its tag manifest digest")
TAG_FILE_UNLISTED = _code("BAG303", WARNING, "a tag file is not listed in every tag manifest")
TAG_MANIFEST_ODD_ENTRY = _code("BAG304", WARNING, "a tag manifest lists a payload file or a tag manifest")
TAG_ALGORITHMS_DIFFER = _code("BAG305", WARNING, "tag manifests and payload manifests use different algorithms")

# --- bag-info.txt ------------------------------------------------------------------
BAG_INFO_MALFORMED = _code("BAG401", ERROR, "a bag-info.txt line is not `Label: value` or a continuation")
BAG_INFO_BLANK_LINE = _code("BAG402", WARNING, "bag-info.txt has a blank line")
BAG_INFO_REPEATED = _code("BAG403", WARNING, "a reserved tag that SHOULD NOT repeat is repeated")
BAG_INFO_LABEL_FORMAT = _code("BAG404", WARNING, "a label has surrounding whitespace or no space after the colon")
OXUM_MALFORMED = _code("BAG405", ERROR, "Payload-Oxum is not `octets.count`")
OXUM_MISMATCH = _code("BAG406", ERROR, "Payload-Oxum does not match the payload on disk")
BAG_INFO_NOT_XML_TEXT = _code("BAG407", ERROR, "a bag-info.txt line has characters XML 1.0 cannot carry")

# --- fetch.txt ---------------------------------------------------------------------
FETCH_PRESENT = _code("BAG501", WARNING, "fetch.txt is present: the bag relies on remote files")
FETCH_MALFORMED = _code("BAG502", ERROR, "a fetch.txt line is not `url length path`")
FETCH_PATH_UNSAFE = _code("BAG503", ERROR, "a fetch.txt path is unsafe or outside data/")
FETCH_NOT_IN_MANIFEST = _code("BAG504", ERROR, "a fetch.txt entry is not listed in every payload manifest")

# --- BagIt profile ---------------------------------------------------------------
PROFILE_TAG_MISSING = _code("PRF001", ERROR, "a bag-info tag the profile requires is missing")
PROFILE_TAG_VALUE = _code("PRF002", ERROR, "a bag-info value is not one the profile allows")
PROFILE_TAG_REPEATED = _code("PRF003", ERROR, "a bag-info tag the profile says is not repeatable is repeated")
PROFILE_MANIFEST_MISSING = _code("PRF004", ERROR, "a payload manifest the profile requires is missing")
PROFILE_MANIFEST_NOT_ALLOWED = _code("PRF005", ERROR, "a payload manifest algorithm the profile does not allow")
PROFILE_TAG_MANIFEST_MISSING = _code("PRF006", ERROR, "a tag manifest the profile requires is missing")
PROFILE_TAG_MANIFEST_NOT_ALLOWED = _code("PRF007", ERROR, "a tag manifest algorithm the profile does not allow")
PROFILE_FETCH = _code("PRF008", ERROR, "fetch.txt present where the profile forbids it (or absent where required)")
PROFILE_VERSION = _code("PRF009", ERROR, "a BagIt version the profile does not accept")
PROFILE_SERIALIZATION = _code("PRF010", ERROR, "the profile requires a serialized bag")
PROFILE_TAG_FILE_MISSING = _code("PRF011", ERROR, "a tag file the profile requires is missing")
PROFILE_TAG_FILE_NOT_ALLOWED = _code("PRF012", ERROR, "a tag file the profile does not allow")
PROFILE_NAME_COLLISION = _code("PRF013", ERROR, "colliding file names, which the profile forbids")
PROFILE_PAYLOAD_FILE_MISSING = _code("PRF014", ERROR, "a payload file the profile requires is missing")
PROFILE_PAYLOAD_FILE_NOT_ALLOWED = _code("PRF015", ERROR, "a payload file the profile does not allow")
PROFILE_IDENTIFIER = _code("PRF016", WARNING, "the bag names another BagIt-Profile-Identifier")
PROFILE_DATA_NOT_EMPTY = _code("PRF017", ERROR, "the profile wants an empty payload (Data-Empty)")

# --- deliveries -------------------------------------------------------------------
SYMLINK_INSIDE = _code("DLV001", ERROR, "a symbolic link (target inside the delivery)")
SYMLINK_OUTSIDE = _code("DLV002", ERROR, "a symbolic link pointing outside the delivery")
HARD_LINK = _code("DLV003", ERROR, "a hard link", strict_only=True)
SPECIAL_FILE = _code("DLV004", ERROR, "a device, FIFO or socket")
ABSOLUTE_PATH = _code("DLV005", ERROR, "an absolute member path")
PATH_TRAVERSAL = _code("DLV006", ERROR, "a member path that would leave the destination (`..`, NUL)")
DELIVERY_NAME_NOT_UTF8 = _code("DLV007", ERROR, "a name that is not valid UTF-8")
CONTROL_CHARACTER = _code("DLV008", ERROR, "a name with a control character (CR, LF, TAB ...)", strict_only=True)
DELIVERY_COLLIDE_NFC = _code("DLV009", ERROR, "names equal after NFC normalisation", strict_only=True)
DELIVERY_COLLIDE_CASE = _code("DLV010", ERROR, "names equal after case folding", strict_only=True)
UNREADABLE = _code("DLV011", ERROR, "a file or directory that cannot be read")
EMPTY_DIRECTORY = _code("DLV012", WARNING, "an empty directory (a bag cannot carry it)")
COMPRESSION_RATIO = _code("DLV013", ERROR, "an archive or zip member compressed beyond the ratio limit")
TOTAL_SIZE_LIMIT = _code("DLV014", ERROR, "the archive expands beyond the size or member limit")
ARCHIVE_LAYOUT = _code("DLV015", ERROR, "declared sizes or member layout are inconsistent")
TOO_DEEP = _code("DLV016", ERROR, "a tree deeper than the depth limit")
ENCRYPTED_MEMBER = _code("DLV017", ERROR, "an encrypted zip member")
UNSUPPORTED_MEMBER = _code("DLV018", ERROR, "an archive member of an unsupported type or compression")
DUPLICATE_MEMBER = _code("DLV019", ERROR, "the same path twice in an archive")
FILE_AND_DIRECTORY = _code("DLV020", ERROR, "a path that is both a file and a directory")
ARCHIVE_UNREADABLE = _code("DLV021", ERROR, "the archive is corrupt, truncated or unreadable")
NAME_NOT_PORTABLE = _code("DLV022", ERROR, "a backslash or an over-long name or path", strict_only=True)
NO_FILES = _code("DLV023", ERROR, "the delivery has no files", strict_only=True)
ARCHIVE_HOLDS_BAG = _code("DLV024", WARNING, "the archive holds a bag, which will be bagged as payload")
BAG_HAS_FETCH = _code("DLV025", ERROR, "the bag has a fetch.txt (an incomplete bag)", strict_only=True)
NOT_A_DELIVERY = _code("DLV026", ERROR, "neither a directory nor a supported archive")
CHANGED_WHILE_BAGGING = _code("DLV027", ERROR, "a file changed size while it was being bagged")
ENTRY_REPLACED = _code("DLV028", ERROR, "a file or directory was replaced between the check and the bagging")


# --- the audit of one copy ----------------------------------------------------------
FILE_MISSING = _code("A001", ERROR, "a file the catalog lists is not on the node")
FILE_CHANGED = _code("A002", ERROR, "a file's digest differs from the catalog")
SIZE_CHANGED = _code("A003", ERROR, "a file's size differs from the catalog")
FILE_UNEXPECTED = _code("A004", ERROR, "the node holds a file the package does not have")
FILE_UNREADABLE = _code("A005", ERROR, "a file could not be read")
REPLICA_ABSENT = _code("A006", ERROR, "none of the package's files are on the node")
NODE_UNAVAILABLE = _code("A007", ERROR, "the node's storage did not answer")
NOT_REGULAR = _code(
    "A008", ERROR, "the node holds a FIFO, socket, symbolic link or device where a file is or is not expected"
)
CHUNKS_DIFFER = _code(
    "A009", WARNING, "a file matches its digests but not the chunk digests the catalog holds for it (kept, not replaced)"
)

# --- rebuilding the catalog from the nodes --------------------------------------------
REBUILD_NO_BAGIT = _code("R001", ERROR, "a package recorded on a node has no bagit.txt there")
REBUILD_BAG_PROBLEM = _code("R002", ERROR, "the bag's tag files on the node have an error (the bag finding follows)")
REBUILD_DIGEST_MISMATCH = _code("R003", ERROR, "a digest computed on the node differs from the bag's manifest")
REBUILD_NODE_FAILED = _code("R004", ERROR, "a node, or a file on it, could not be read")
REBUILD_NO_COLLECTION = _code("R005", ERROR, "neither a package record nor Bag-Group-Identifier names a collection")
REBUILD_RECORD_UNTRUSTED = _code(
    "R006", ERROR, "a package record's evidence is not signed by a known coordinator key: the record is not trusted"
)
REBUILD_EVENT_ALTERED = _code(
    "R007", ERROR, "a node's events file of a package differs from its hashes or its signed digest: not used"
)
REBUILD_EVENT_UNCONFIRMED = _code(
    "R008", ERROR, "restored events disagree between nodes or break the chain's links: the unconfirmed are not restored"
)
REBUILD_EVIDENCE_MISMATCH = _code(
    "R009", ERROR, "a file on the node, or the checkpoint, differs from what the package's signed evidence states"
)
REBUILD_NO_EVIDENCE = _code("R010", WARNING, "a package record carries no signed evidence (written without a key)")

# --- preserve config check (preservation.config_check) -----------------------------------
CONFIG_UNREADABLE = _code("CFG001", ERROR, "the home or its config file cannot be read, or a setting in it is refused")
CONFIG_ABSENT = _code("CFG002", WARNING, "the home has no preserve.yaml: every setting is its default")
CONFIG_READABLE = _code("CFG003", WARNING, "the config file holds node keys or the access secret and others may read it")
CONFIG_WRITABLE = _code("CFG004", ERROR, "others than its owner may change the config file")
CONFIG_POLICY = _code("CFG005", ERROR, "the policy file cannot be read or is refused")
KEY_NOT_CONFIGURED = _code("CFG010", WARNING, "no checkpoint signing key is configured: the event log is not signed")
KEY_MISSING = _code("CFG011", ERROR, "the configured checkpoint key file cannot be read")
KEY_EXPOSED = _code("CFG012", ERROR, "a key file has group or other permissions (it must be 0600)")
SPACE_SHORT = _code("CFG020", ERROR, "free space (or a node's capacity) is below what must be received plus the margin")
SPACE_LOW = _code("CFG021", WARNING, "free space is less than twice the margin above what must be received")
CATALOG_UNREACHABLE = _code("CFG030", ERROR, "the catalog does not exist or cannot be reached")
CATALOG_NOT_AT_HEAD = _code("CFG031", ERROR, "the catalog's schema is not at the migrations' head (preserve init)")
NODE_NONE = _code("CFG040", WARNING, "the catalog has no nodes")
NODE_NO_CREDENTIALS = _code("CFG041", ERROR, "a node agent has no key under node_credentials")
NODE_NOT_ANSWERING = _code("CFG042", ERROR, "a node's storage does not answer, or its root is not mounted")
NODE_NOT_WRITABLE = _code("CFG043", ERROR, "a probe object could not be written, read back and deleted on a node")

# --- entitlement imports ------------------------------------------------------------------
FIELD_MISSING = _code("I001", ERROR, "a required field is missing or empty")
UNKNOWN_LIBRARY = _code("I002", ERROR, "no library has this code")
UNKNOWN_COLLECTION = _code("I003", ERROR, "no collection has this key")
NOT_A_YEAR = _code("I004", ERROR, "the value is not a year an entitlement can name")
YEARS_REVERSED = _code("I005", ERROR, "from_year is after to_year")
DUPLICATE_ROW = _code("I006", ERROR, "the same entitlement appears twice in the file")
UNKNOWN_FIELD = _code("I007", ERROR, "the row has a field this import does not know (a typo?)")
UNREADABLE_FILE = _code("I008", ERROR, "the file cannot be read as CSV or YAML rows")
INVALID_TEXT = _code(
    "I009", ERROR, "the value holds characters XML 1.0 cannot carry (control characters, U+FFFE, U+FFFF)"
)


# --- content analysis at ingest (preservation.analysis) ----------------------------
ANALYSER_FAILED = _code("CA001", WARNING, "an analyser failed on a file; the file is preserved as bytes, unanalysed")


# --- article and book metadata read at ingest (preservation.metadata): warnings, the bytes are preserved anyway --
MD_MALFORMED = _code("MD001", WARNING, "the XML is not well-formed: no item is read from the point where it breaks")
MD_ENTITIES = _code(
    "MD002", WARNING, "the XML declares entities in its DTD (XXE, billion laughs): refused, nothing expanded or fetched"
)
MD_UNKNOWN_VOCABULARY = _code("MD003", WARNING, "the XML is not JATS, ONIX 3 or Dublin Core: no item read from it")
MD_TEXT_REFUSED = _code("MD004", WARNING, "a value holds characters XML 1.0 cannot carry: dropped")
MD_FIELD_TOO_LONG = _code("MD005", WARNING, "a value is longer than the catalog keeps (or too many authors, files): cut")
MD_NUMBER = _code("MD006", WARNING, "a year, month, day, volume, issue or page is not a number in range: dropped")
MD_ISSN = _code("MD007", WARNING, "an ISSN is malformed or its check digit is wrong: not used to find the title")
MD_ISBN = _code("MD008", WARNING, "an ISBN is malformed or its check digit is wrong: dropped")
MD_DOI = _code("MD009", WARNING, "a DOI is malformed: the item is stored without a DOI")
MD_CN = _code("MD010", WARNING, "a CN serial number is malformed: dropped")
MD_DOI_TAKEN = _code(
    "MD011", WARNING, "the DOI is already held by another item (another package, or earlier in the delivery): "
    "the item is stored without it"
)
MD_FILE_MISSING = _code("MD012", WARNING, "the metadata names a file the delivery does not hold")
MD_FILE_OUTSIDE = _code("MD013", WARNING, "the metadata names a file by an absolute path or outside the delivery: ignored")
MD_NO_TITLE = _code("MD014", WARNING, "a record has neither a title nor a DOI: no item is made of it")
MD_CSV_ROW = _code("MD015", WARNING, "items.csv: a row (or the file) cannot be read: not UTF-8, wrong field count, "
                   "no header")
MD_CSV_COLUMN = _code("MD016", WARNING, "items.csv has a column this format does not know: ignored")
MD_FILE_CLAIMED = _code("MD017", WARNING, "the metadata names a file that belongs to another item (the one of the "
                        "same name beside it, or the first to name it): the claim is dropped")
MD_PARSER_LOST = _code("MD018", WARNING, "the metadata parser process stopped (killed, out of memory) before it "
                       "answered for this file: no item read from it past where it stopped")
MD_FRONT_TOO_LARGE = _code("MD019", WARNING, "the front matter of a JATS file is larger than extraction reads: no "
                           "item read from it")


# --- KBART files: publishers' title lists, libraries' holdings (preservation.kbart) -----------------
KBART_UNREADABLE = _code("K001", ERROR, "the file cannot be read: not UTF-8, too large, a line too long, no rows or "
                         "too many")
KBART_HEADER = _code("K002", ERROR, "the header row is not the 25 KBART Phase II columns in their order")
KBART_FIELD_COUNT = _code("K003", ERROR, "a row does not have as many fields as the header")
KBART_TEXT = _code("K004", ERROR, "a field holds control characters or characters XML 1.0 cannot carry")
KBART_REQUIRED = _code("K005", ERROR, "a required field is empty (publication_title, publication_type)")
KBART_PUBLICATION_TYPE = _code("K006", ERROR, "publication_type is neither serial nor monograph")
KBART_DATE = _code("K007", ERROR, "a date is not YYYY, YYYY-MM or YYYY-MM-DD, or not a real date in 1500-2100")
KBART_REVERSED = _code("K008", ERROR, "the coverage ends before it begins")
KBART_IDENTIFIER = _code("K009", ERROR, "an identifier is malformed, fails its check digit, or is not of the kind "
                         "the publication type needs (ISSN for serials, ISBN for monographs)")
KBART_TOO_LONG = _code("K010", ERROR, "a field is longer than the catalog keeps")
KBART_CODED_VALUE = _code("K011", ERROR, "a field holds a value its column does not allow (embargo_info, "
                          "coverage_depth, access_type, title_url, preserve_kind)")
KBART_TWO_TITLES = _code("K012", ERROR, "the row's identifiers belong to two different titles")
KBART_REPEATED = _code("K013", WARNING, "the same coverage of a title appears twice: the repeat is skipped")
KBART_NO_SUCH_TITLE = _code("K014", WARNING, "no title of the repository has the row's identifiers: the row is "
                            "skipped (a library's file)")
KBART_NO_IDENTIFIER = _code("K015", ERROR, "the row has no identifier a title can be found by (print_identifier, "
                            "online_identifier, title_id, preserve_cn)")
KBART_EXTRA_COLUMN = _code("K016", WARNING, "a column after the standard ones is not one preserve reads: kept "
                           "with the title (a publisher's list) or ignored (a library's file)")


# --- format identification (preservation.formats): PRONOM, by FIDO's signatures ------------------------
FORMAT_UNIDENTIFIED = _code("FMT001", WARNING, "no signature matches the file's bytes: identified by its name only, "
                            "or not at all")
FORMAT_NAME_MISMATCH = _code("FMT002", WARNING, "the file's name says one format and its bytes another")
FORMAT_LOCKED = _code("FMT003", WARNING, "the file is encrypted or DRM-locked: held, but it may not open later")
FORMAT_AT_RISK = _code("FMT004", WARNING, "the file's format is at risk under the format policy")
FORMAT_UNACCEPTABLE = _code("FMT005", ERROR, "the file's format is unacceptable under the format policy: the "
                            "delivery is refused")
FORMAT_MORE = _code("FMT006", WARNING, "more files had the same finding: only the first ones are listed (the "
                    "catalog has them all)")
FORMAT_UNREAD = _code("FMT007", WARNING, "re-identification could not read the file's head and tail from any "
                      "verified copy")


# --- format validation (preservation.formats.validation): warnings; a format policy may make them errors --
# the engine: limits and crashes (outcome "limit" or "error")
VALIDATION_TIME_LIMIT = _code("FMV001", WARNING, "validation stopped at the time limit: the file was not checked")
VALIDATION_MEMORY_LIMIT = _code("FMV002", WARNING, "validation stopped at the memory limit: the file was not checked")
VALIDATION_CRASHED = _code("FMV003", WARNING, "the validating process died on the file (a crash, or killed)")
VALIDATION_UNREADABLE = _code(
    "FMV004", WARNING, "the file could not be opened for validation (missing, unreadable or not a regular file)"
)
VALIDATION_FAILED = _code("FMV005", WARNING, "the checker failed unexpectedly, or knows no such kind")
# PDF (pikepdf / qpdf)
PDF_NOT_PDF = _code("FMV101", WARNING, "no %PDF- header: the file is not a PDF")
PDF_UNREADABLE = _code("FMV102", WARNING, "qpdf cannot open the file as a PDF")
PDF_TRUNCATED = _code("FMV103", WARNING, "no %%EOF at the end: the PDF is truncated")
PDF_XREF_REPAIRED = _code("FMV104", WARNING, "the cross-reference table is damaged and had to be reconstructed")
PDF_DAMAGED = _code("FMV105", WARNING, "qpdf reports damage: bad objects, streams that do not decode, unreadable pages")
PDF_ENCRYPTED = _code("FMV106", WARNING, "the PDF is encrypted (it opens without a password)")
PDF_PASSWORD = _code("FMV107", WARNING, "the PDF needs a password to open: its content was not checked")
PDF_RESTRICTED = _code("FMV108", WARNING, "the PDF's permissions restrict printing, copying or changing it (DRM)")
PDF_NO_PAGES = _code("FMV109", WARNING, "the PDF has no pages, or its page tree cannot be read")
# XML (lxml; nothing is ever fetched, no DTD loaded, no entity expanded)
XML_MALFORMED = _code("FMV201", WARNING, "the XML is not well-formed")
XML_ENTITY_DECLARED = _code(
    "FMV202", WARNING, "the XML declares entities in its DTD: refused, never expanded or fetched"
)
XML_ENTITY_UNDECLARED = _code(
    "FMV203", WARNING, "the XML uses entities only an external DTD defines, which is never loaded"
)
# JATS: the elements the catalog relies on
JATS_ROOT = _code("FMV301", WARNING, "the root element of a JATS article is not <article>")
JATS_NO_ARTICLE_META = _code("FMV302", WARNING, "no <front> with <article-meta>")
JATS_NO_ARTICLE_ID = _code("FMV303", WARNING, "<article-meta> has no <article-id>")
JATS_DOI = _code("FMV304", WARNING, "a DOI is not of the form 10.NNNN/suffix")
JATS_NO_JOURNAL_TITLE = _code("FMV305", WARNING, "no <journal-meta> with a <journal-title>")
JATS_NO_ISSN = _code("FMV306", WARNING, "<journal-meta> has no <issn>")
JATS_ISSN = _code("FMV307", WARNING, "an ISSN is malformed or its check digit is wrong")
JATS_NO_PUB_YEAR = _code("FMV308", WARNING, "no <pub-date> with a four-digit year")
JATS_VOLUME_ISSUE = _code("FMV309", WARNING, "<volume> or <issue> is not a number-like value")
# ONIX 3: the elements the catalog relies on
ONIX_ROOT = _code("FMV401", WARNING, "the root is not an ONIX 3 <ONIXMessage release=\"3.x\">")
ONIX_NO_PRODUCT = _code("FMV402", WARNING, "the ONIX message has no <Product>")
ONIX_NO_RECORD_REFERENCE = _code("FMV403", WARNING, "a <Product> has no <RecordReference>")
ONIX_NO_PRODUCT_IDENTIFIER = _code("FMV404", WARNING, "a <Product> has no <ProductIdentifier> with an <IDValue>")
ONIX_NO_TITLE = _code("FMV405", WARNING, "a <Product> has no title (<TitleText> or <TitleWithoutPrefix>)")
# EPUB (OCF container)
EPUB_NOT_ZIP = _code("FMV501", WARNING, "the EPUB is not a readable zip archive")
EPUB_MIMETYPE_FIRST = _code("FMV502", WARNING, "the first member of the EPUB is not `mimetype`")
EPUB_MIMETYPE_COMPRESSED = _code("FMV503", WARNING, "`mimetype` is compressed (it must be stored)")
EPUB_MIMETYPE_CONTENT = _code("FMV504", WARNING, "`mimetype` does not hold exactly application/epub+zip")
EPUB_NO_CONTAINER = _code("FMV505", WARNING, "META-INF/container.xml is missing or not well-formed")
EPUB_ROOTFILE = _code("FMV506", WARNING, "container.xml names no rootfile, or one that is not in the archive")
EPUB_MEMBER_CORRUPT = _code("FMV507", WARNING, "a member of the EPUB fails its CRC check or does not decompress")
EPUB_ENCRYPTED = _code(
    "FMV508", WARNING, "the EPUB encrypts content (META-INF/encryption.xml, beyond font obfuscation)"
)
EPUB_RIGHTS = _code("FMV509", WARNING, "the EPUB carries DRM rights (META-INF/rights.xml)")
# images (Pillow)
IMAGE_UNIDENTIFIED = _code("FMV601", WARNING, "Pillow cannot read the file as an image")
IMAGE_BROKEN = _code("FMV602", WARNING, "the image fails Pillow's verify (a bad CRC or structure)")
IMAGE_TRUNCATED = _code("FMV603", WARNING, "the image data is truncated or does not decode")
IMAGE_TOO_LARGE = _code(
    "FMV604", WARNING, "the image has more pixels than the limit (a decompression bomb?): not decoded"
)


def severity(code: str, strict: bool = True) -> str:
    spec = CODES[code]
    if spec.strict_only and not strict:
        return WARNING
    return spec.severity


def note(
    findings: FindingList, code: str, message: str, path: str | None = None, *, strict: bool = True, **params: Any
) -> Finding:
    """Add a finding with ``code``'s severity (in strict mode or not)."""
    return findings.add(code, message, path, severity(code, strict), **params)


def markdown_table(*families: str) -> str:
    """The codes of ``families`` (prefixes, in that order) as the Markdown table their document carries."""
    lines = ["| code | severity | meaning |", "|---|---|---|"]
    for family in families:
        for spec in CODES.values():
            if spec.family != family:
                continue
            sev = "error (warning when not strict)" if spec.strict_only else spec.severity
            lines.append(f"| {spec.code} | {sev} | {spec.title.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
