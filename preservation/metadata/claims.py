"""Which item a file of a package belongs to: the one rule for the files an item's metadata claims.

A record of the metadata (a JATS article, an ONIX product, a Dublin Core
record, a row of ``items.csv``) names its files as bag paths, resolved once,
relative to the folder of the metadata file that names them and never out of
the payload (:func:`preservation.metadata.xmlstream.resolve_href`, ``MD013``).
Then, in the ingest that registers the items:

1. A file of the package belongs to **at most one item**.  The metadata file
   itself is the exception: an ONIX or Dublin Core file, or ``items.csv``,
   describes many items and is the ``metadata`` file of each of them.
2. A file that lies beside a **metadata file of the same name** (``B.pdf``
   beside ``B.xml``) is that metadata's: another record naming it — article
   A's ``<self-uri>`` or ``<supplementary-material>`` pointing at article B's
   PDF, or at B's XML — loses the claim, whatever the order the files were
   read in (``MD017``).
3. Otherwise the first item to claim a file has it; a later record's claim
   on it is dropped (``MD017``).  A file found only by its name (the PDF
   beside the XML) that another item already holds is skipped silently, as
   an absent one is.

The claims already settled are read back from ``item_files`` (indexed by
package and path), a batch of records at a time, so the memory this takes
grows with one batch, never with the delivery.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import codes
from preservation.catalog.library_models import ItemFile
from preservation.findings import FindingList
from preservation.metadata.records import ItemRecord

METADATA_ROLE = "metadata"
_IN = 500  # values in one IN (…) list


def sibling_metadata(path: str) -> str:
    """The metadata file that owns ``path`` by name: the ``.xml`` of the same folder and stem.

    The stem as ``posixpath.splitext`` finds it (a name of leading dots only, ``.hidden``, has no extension),
    without its calls: this is asked twice for every file an item names."""
    start, dot = path.rfind("/") + 1, path.rfind(".")
    if dot > start and path[start:dot].strip("."):
        return path[:dot] + ".xml"
    return path + ".xml"


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), _IN):
        yield values[i:i + _IN]


class Claims:
    """The claims of one delivery's records on its files, settled a batch at a time (see the module)."""

    def __init__(self, session: Session, package_id: str) -> None:
        self.session = session
        self.package_id = package_id
        self._held: set[str] = set()  # paths of this batch already held by an item (earlier batch or record)
        self._siblings: set[str] = set()  # metadata files of the package that own files beside them by name

    @staticmethod
    def wanted(batch: list[ItemRecord]) -> set[str]:
        """The paths whose presence in the package settles the batch's claims: the files its records name and
        the metadata files that would own them by name (give :meth:`prepare` those that are present)."""
        named = {path for record in batch for path, _, _ in record.files}
        return named | {sibling_metadata(path) for record in batch for path, role, _ in record.files
                        if role != METADATA_ROLE}

    def prepare(self, batch: list[ItemRecord], present: set[str]) -> None:
        """Load, for one batch, which of its paths items already hold; ``present``: which of :meth:`wanted`'s
        paths are files of the package (stored or referenced), among them the owners by name that exist."""
        wanted = sorted({path for record in batch for path, role, _ in record.files if role != METADATA_ROLE})
        self._held = set()
        for chunk in _chunks(wanted):
            self._held.update(self.session.scalars(select(ItemFile.path).where(
                ItemFile.package_id == self.package_id, ItemFile.path.in_(chunk), ItemFile.role != METADATA_ROLE)))
        self._siblings = {sibling_metadata(path) for path in wanted} & present

    def files_of(self, record: ItemRecord, present: set[str], findings: FindingList, *,
                 claim: bool = True) -> list[tuple[str, str]]:
        """The record's files that the package holds and that are the record's to have, each once (its first
        role wins); a named absent file is ``MD012``, a named file of another item ``MD017``.

        With ``claim`` false (an item of an earlier version kept as it is) the files are checked, not taken.
        """
        own: dict[str, str] = {}
        for path, role, named in record.files:
            if path not in present:
                if named:
                    codes.note(findings, codes.MD_FILE_MISSING, f"the metadata names {path}, which the delivery "
                               "does not hold", record.metadata_path, file=path)
                continue
            if path in own:
                continue
            if role != METADATA_ROLE:
                owner = sibling_metadata(path)
                if owner != record.metadata_path and owner in self._siblings:
                    self._refuse(record, path, named, findings, f"it lies beside {owner}, whose file it is")
                    continue
                if path in self._held:
                    self._refuse(record, path, named, findings, "another item of the delivery has it already")
                    continue
            own[path] = role
        if claim:
            self._held.update(path for path, role in own.items() if role != METADATA_ROLE)
        return list(own.items())

    @staticmethod
    def _refuse(record: ItemRecord, path: str, named: bool, findings: FindingList, why: str) -> None:
        if named:
            where = f" ({record.where})" if record.where else ""
            codes.note(findings, codes.MD_FILE_CLAIMED, f"the metadata{where} names {path}, but {why}: "
                       "the claim is dropped", record.metadata_path, file=path)
