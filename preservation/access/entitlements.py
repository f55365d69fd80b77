"""Entitlements: which years of a collection each library paid for.

``import_entitlements`` reads a CSV (header ``library,collection,from_year,
to_year[,note]``) or YAML file (a list of mappings with the same keys, or
``{entitlements: [...]}``), checks every row and either adds them all in one
transaction or refuses the whole file with a finding per bad row and field.
Rows that exist already are counted as unchanged, so an import can be re-run.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation.access.accounts import get_library
from preservation.access.rights import MAX_YEAR, MIN_YEAR
from preservation.catalog.access_models import Entitlement, Library
from preservation.catalog.models import Collection
from preservation.codes import (
    DUPLICATE_ROW,
    FIELD_MISSING,
    INVALID_TEXT,
    NOT_A_YEAR,
    UNKNOWN_COLLECTION,
    UNKNOWN_FIELD,
    UNKNOWN_LIBRARY,
    UNREADABLE_FILE,
    YEARS_REVERSED,
)
from preservation.collection import get_collection
from preservation.errors import AlreadyExists, ImportRejected, InvalidRequest
from preservation.findings import FindingList
from preservation.repository import Repository
from preservation.text import check_xml_text, xml_forbidden

REQUIRED = ("library", "collection", "from_year", "to_year")
OPTIONAL = ("note",)
MAX_NOTE = 500


def _check_years(from_year: Any, to_year: Any) -> tuple[int, int]:
    years = []
    for label, value in (("from_year", from_year), ("to_year", to_year)):
        try:
            year = int(str(value).strip())
        except ValueError:
            raise InvalidRequest(f"{label} {value!r} is not a year") from None
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise InvalidRequest(f"{label} {year} is not between {MIN_YEAR} and {MAX_YEAR}")
        years.append(year)
    if years[0] > years[1]:
        raise InvalidRequest(f"from_year {years[0]} is after to_year {years[1]}")
    return years[0], years[1]


def _entitlement_dict(e: Entitlement) -> dict[str, Any]:
    return {"id": e.id, "library": e.library.code, "collection": e.collection.key, "from_year": e.from_year,
            "to_year": e.to_year, "note": e.note, "created_by": e.created_by, "created_at": e.created_at}


def _existing(session: Session, library_id: int, collection_id: int, years: tuple[int, int]) -> Entitlement | None:
    return session.execute(select(Entitlement).where(
        Entitlement.library_id == library_id, Entitlement.collection_id == collection_id,
        Entitlement.from_year == years[0], Entitlement.to_year == years[1],
    )).scalar_one_or_none()


def add_entitlement(
    repo: Repository, library_code: str, collection_key: str, from_year: int, to_year: int, *, note: str = "",
    created_by: str = "",
) -> dict[str, Any]:
    """Entitle a library to a collection's years ``from_year``..``to_year`` (inclusive).

    Raises NotFound, InvalidRequest (years), InvalidText (note, created_by), AlreadyExists.
    """
    years = _check_years(from_year, to_year)
    note = check_xml_text(note or "", "note")
    check_xml_text(created_by or "", "created_by", max_length=100)
    with repo.catalog.session() as s:
        library = get_library(s, library_code)
        collection = get_collection(s, collection_key)
        if _existing(s, library.id, collection.id, years) is not None:
            raise AlreadyExists(f"{library_code} is entitled to {collection_key} {years[0]}-{years[1]} already")
        e = Entitlement(library_id=library.id, collection_id=collection.id, from_year=years[0], to_year=years[1],
                        note=note[:MAX_NOTE], created_by=created_by)
        s.add(e)
        s.flush()
        return _entitlement_dict(e)


def list_entitlements(
    repo: Repository, *, library_code: str | None = None, collection_key: str | None = None
) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        stmt = (select(Entitlement).join(Library).join(Collection)
                .order_by(Library.code, Collection.key, Entitlement.from_year))
        if library_code:
            stmt = stmt.where(Entitlement.library_id == get_library(s, library_code).id)
        if collection_key:
            stmt = stmt.where(Entitlement.collection_id == get_collection(s, collection_key).id)
        return [_entitlement_dict(e) for e in s.scalars(stmt)]


# --- bulk import -------------------------------------------------------------------


@dataclass
class _Row:
    number: int  # CSV: the line number (the header is line 1); YAML: position in the list, from 1
    fields: dict[str, Any]


def _read_rows(path: Path, findings: FindingList) -> Iterator[_Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        findings.add(UNREADABLE_FILE, f"cannot read it: {e}", path=str(path))
        return
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            findings.add(UNREADABLE_FILE, "the CSV file has no header line", path=str(path))
            return
        known = set(REQUIRED) | set(OPTIONAL)
        unknown = [name for name in reader.fieldnames if (name or "").strip() not in known]
        for name in unknown:  # a header problem: reported once, on the header line
            findings.add(UNKNOWN_FIELD, f"row 1, field {name!r}: unknown column (expected "
                                        f"{', '.join(REQUIRED + OPTIONAL)})", row=1, field=name, value=None)
        for row in reader:
            extra = row.pop(None, None)  # type: ignore[call-overload]
            fields = {(k or "").strip(): v for k, v in row.items() if k not in unknown}
            if extra:
                fields["(extra columns)"] = extra
            yield _Row(reader.line_num, fields)
        return
    if path.suffix.lower() not in (".yaml", ".yml"):
        findings.add(UNREADABLE_FILE, "use a .csv, .yaml or .yml file", path=str(path))
        return
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        findings.add(UNREADABLE_FILE, f"not valid YAML: {e}", path=str(path))
        return
    if isinstance(data, dict) and set(data) == {"entitlements"}:
        data = data["entitlements"]
    if not isinstance(data, list):
        findings.add(UNREADABLE_FILE, "the YAML must be a list of entitlements (or {entitlements: [...]})",
                      path=str(path))
        return
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            findings.add(UNREADABLE_FILE, f"row {number} is not a mapping of fields", path=str(path), row=number)
            continue
        yield _Row(number, {str(k): v for k, v in item.items()})


def _bad(findings: FindingList, code: str, row: int, field: str, message: str, value: Any = None) -> None:
    findings.add(code, f"row {row}, field {field!r}: {message}", row=row, field=field,
                 value=None if value is None else str(value))


def _readable(findings: FindingList, row: int, field: str, value: str) -> bool:
    """False, after an I009 finding, when XML cannot carry ``value`` (it is never looked up nor stored)."""
    bad = xml_forbidden(value)
    if bad:
        _bad(findings, INVALID_TEXT, row, field, f"holds character(s) XML 1.0 cannot carry: {', '.join(bad[:5])}")
    return not bad


def _check_row(session: Session, row: _Row, findings: FindingList, libraries: dict, collections: dict):
    """One row → (library_id, collection_id, years, note), or None after adding its findings."""
    before = len(findings)
    fields = row.fields
    for name in sorted(set(fields) - set(REQUIRED) - set(OPTIONAL)):
        _bad(findings, UNKNOWN_FIELD, row.number, name, f"unknown field (expected {', '.join(REQUIRED + OPTIONAL)})")
    values = {}
    for name in REQUIRED:
        value = fields.get(name)
        if value is None or str(value).strip() == "":
            _bad(findings, FIELD_MISSING, row.number, name, "missing or empty")
        elif _readable(findings, row.number, name, str(value)):
            values[name] = str(value).strip()
    if "library" in values:
        code = values["library"]
        if code not in libraries:
            found = session.execute(select(Library.id).where(Library.code == code)).scalar_one_or_none()
            libraries[code] = found
        if libraries[code] is None:
            _bad(findings, UNKNOWN_LIBRARY, row.number, "library", f"no library with code {code!r}", code)
    if "collection" in values:
        key = values["collection"]
        if key not in collections:
            collections[key] = session.execute(select(Collection.id).where(Collection.key == key)).scalar_one_or_none()
        if collections[key] is None:
            _bad(findings, UNKNOWN_COLLECTION, row.number, "collection", f"no collection with key {key!r}", key)
    years = {}
    for name in ("from_year", "to_year"):
        if name in values:
            text = values[name]
            if text.isdigit() and MIN_YEAR <= int(text) <= MAX_YEAR:
                years[name] = int(text)
            else:
                _bad(findings, NOT_A_YEAR, row.number, name,
                     f"{text!r} is not a year between {MIN_YEAR} and {MAX_YEAR}", text)
    if len(years) == 2 and years["from_year"] > years["to_year"]:
        _bad(findings, YEARS_REVERSED, row.number, "from_year",
             f"{years['from_year']} is after to_year {years['to_year']}", years["from_year"])
    note = str(fields.get("note") or "")
    _readable(findings, row.number, "note", note)
    if len(note) > MAX_NOTE:
        _bad(findings, UNKNOWN_FIELD, row.number, "note", f"longer than {MAX_NOTE} characters")
    if len(findings) > before:
        return None
    return (libraries[values["library"]], collections[values["collection"]],
            (years["from_year"], years["to_year"]), note)


def import_entitlements(repo: Repository, path: str | Path, *, created_by: str = "") -> dict[str, Any]:
    """Add every entitlement of a CSV or YAML file, all or nothing.

    Raises ImportRejected (``findings`` names each bad row and field; nothing is added).
    """
    path = Path(path)
    findings = FindingList()
    with repo.catalog.session() as s:
        libraries: dict[str, int | None] = {}
        collections: dict[str, int | None] = {}
        seen: dict[tuple, int] = {}
        good = []
        rows = 0
        for row in _read_rows(path, findings):
            rows += 1
            checked = _check_row(s, row, findings, libraries, collections)
            if checked is None:
                continue
            key = checked[:3]
            if key in seen:
                _bad(findings, DUPLICATE_ROW, row.number, "library", f"repeats row {seen[key]}")
                continue
            seen[key] = row.number
            good.append(checked)
        if rows == 0 and findings.ok:
            findings.add(UNREADABLE_FILE, "the file holds no entitlements", path=str(path))
        if not findings.ok:
            first = findings.errors[0]
            raise ImportRejected(f"{len(findings.errors)} problem(s), first: {first.message}", findings=list(findings),
                                 source=str(path))
        added = unchanged = 0
        for library_id, collection_id, years, note in good:
            if _existing(s, library_id, collection_id, years) is not None:
                unchanged += 1
                continue
            s.add(Entitlement(library_id=library_id, collection_id=collection_id, from_year=years[0],
                              to_year=years[1], note=note, created_by=created_by))
            added += 1
        s.flush()
        return {"file": str(path), "rows": rows, "added": added, "unchanged": unchanged}
