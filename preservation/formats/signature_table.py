"""FIDO's PRONOM signatures as one compact table, planned for fast matching and kept in the user's cache.

Loading FIDO (``Fido()`` parses its XML signature files with ElementTree)
and working out, for each of its ~1,900 signatures, which bytes it cannot
match without takes more than a second: more than a small delivery takes
to ingest.  :func:`load` does that work once per signature install and
keeps the result as a JSON table in the user's cache directory
(``$PRESERVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/preserve``, else
``~/.cache/preserve``), named by a key made of FIDO's version, the
signature directory's file names, sizes and modification times, and the source of
this module and of :mod:`preservation.formats.identify` (our code
version).  The file is written atomically (a temporary file renamed into
place) and carries the SHA-256 of its body: a table whose key or digest
does not match, or that does not parse, is rebuilt, never trusted.  JSON
holds no code, so a planted cache file can at worst change what
identification says, as a changed signature file could.  When the cache
directory cannot be written, the table is built in memory each time.

What a signature's plan says (:func:`plan_signature`):

- ``keys``: the bytes its ``BOF`` expression needs at fixed offsets of the
  head (up to :data:`KEY_LENGTH` bytes, e.g. ``%PDF`` at 0), so a file is
  tried only against the signatures whose key it has;
- ``wait``: for a signature with no such key, strings one of which it needs
  somewhere in the head (within its reach), found for all such signatures
  in one scan of the head;
- ``needs``: the literal runs each pattern contains, checked with a
  substring search before the expression runs;
- ``empty``: its ``BOF`` expression can only match an empty head.

Each is derived from the parsed expression and is a necessary condition of
a match, so the plan can make matching faster, never different
(``tests/formats/test_identify.py`` compares the answers with FIDO's own
matcher).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TABLE_FORMAT = 1
"""The layout of the cached file; the key also changes with any change to this module's source."""
KEY_LENGTH = 4
"""At most this many leading bytes of a ``BOF`` expression index it."""
MIN_WAITED = 3
"""Strings a signature waits for are at least this long (shorter ones would be found in almost any head)."""
_MAX_SET = 64  # a set of strings wider than this is not worth indexing
_MAX_WAITED = 128  # a signature waits for at most this many strings
_MAX_SPREAD = 8  # `.{a,b}` before the key: indexed at each of the offsets a..b when b - a is at most this
_PREFIX = "fido-signatures-"


def cache_dir() -> Path:
    """Where the table is kept: ``$PRESERVE_CACHE_DIR``, ``$XDG_CACHE_HOME/preserve`` or ``~/.cache/preserve``."""
    explicit = os.environ.get("PRESERVE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "preserve"


def load(conf_dir: str, directory: Path | None = None) -> dict[str, Any]:
    """The planned signature table of FIDO's signature files in ``conf_dir``: from the cache, or built and cached.

    Raises what FIDO raises when its signature files are missing or unreadable.
    """
    from fido import __version__ as fido_version

    key = _key(conf_dir, fido_version)
    directory = cache_dir() if directory is None else directory
    path = directory / f"{_PREFIX}{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]}.json"
    table = _read(path, key)
    if table is not None:
        return table
    table = build(conf_dir)
    _write(path, key, table)
    return table


def _key(conf_dir: str, fido_version: str) -> dict[str, Any]:
    """What the table is made from: FIDO's version, every file of its signature directory, our code."""
    here = Path(__file__).resolve().parent
    code = hashlib.sha256()
    for module in ("signature_table.py", "identify.py"):
        code.update((here / module).read_bytes())
    root = os.path.abspath(conf_dir)
    stamps = []
    with os.scandir(root) as entries:  # versions.xml names the files in use; any of them may be replaced
        for entry in entries:
            if entry.is_file():
                st = entry.stat()
                stamps.append([entry.name, st.st_size, st.st_mtime_ns])
    stamps.sort()
    return {"format": TABLE_FORMAT, "fido": fido_version, "code": code.hexdigest(), "conf_dir": root,
            "files": stamps}


def _read(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached table at ``path`` when its key and digest are right; None (to rebuild) otherwise."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, _, body = data.partition(b"\n")
    try:
        head = json.loads(header)
        if head.get("key") != key or head.get("sha256") != hashlib.sha256(body).hexdigest():
            log.info("signature table %s is stale or damaged: rebuilding it", path)
            return None
        table = json.loads(body)
    except (ValueError, AttributeError):
        log.info("signature table %s does not parse: rebuilding it", path)
        return None
    return table if isinstance(table, dict) else None


def _write(path: Path, key: dict[str, Any], table: dict[str, Any]) -> None:
    """Write the table atomically; a cache that cannot be written only costs the next process a rebuild."""
    body = json.dumps(table, separators=(",", ":")).encode()
    header = json.dumps({"key": key, "sha256": hashlib.sha256(body).hexdigest()}, separators=(",", ":")).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(header + b"\n" + body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as e:
        log.info("signature table not cached in %s: %s", path.parent, e)


# --- building the table from FIDO's files ----------------------------------------------------------


def _text(data: bytes) -> str:
    """Bytes as a JSON string (latin-1: one character per byte, both ways)."""
    return data.decode("latin-1")


def build(conf_dir: str) -> dict[str, Any]:
    """Read FIDO's signature files in ``conf_dir`` and plan every signature (about a second)."""
    from xml.etree import ElementTree

    from fido.fido import Fido
    from fido.versions import get_local_versions

    versions = get_local_versions(conf_dir)
    pronom = str(versions.pronom_version)
    container_file = str(versions.pronom_container_signature)
    container_date = re.sub(r"\D", "", container_file) or container_file
    fido = Fido(quiet=True, conf_dir=conf_dir, handle_matches=lambda *a, **k: None,
                format_files=[versions.pronom_signature, versions.fido_extension_signature])
    formats: list[list[Any]] = []
    index_of: dict[str, int] = {}
    for element in fido.formats:
        puid = element.findtext("puid") or ""
        index_of[puid] = len(formats)
        formats.append([puid, element.findtext("mime") or "", element.findtext("name") or "",
                        element.findtext("version") or "",
                        sorted({(e.text or "").lower() for e in element.findall("extension")}),
                        element.findtext("container") or ("ole" if puid == "fmt/111" else "")])
    priority = [sorted(index_of[p] for p in fido.puid_has_priority_over_map.get(f[0], ()) if p in index_of)
                for f in formats]
    signatures: list[dict[str, Any]] = []
    for fi, element in enumerate(fido.formats):
        for sig in element.findall("signature"):
            patterns = [(pat.findtext("position") or "", (pat.findtext("regex") or "").encode("utf-8"))
                        for pat in sig.findall("pattern")]
            try:
                for _, source in patterns:
                    re.compile(source)
            except re.error:
                break  # FIDO stops trying a format at an expression that does not compile
            signatures.append(plan_signature(fi, sig.findtext("name") or "", patterns))
    tree = ElementTree.parse(os.path.join(os.path.abspath(conf_dir), container_file))
    containers = {}
    for kind, name in (("zip", "ZIP"), ("ole", "OLE2")):
        extracted = fido.extract_signatures(tree, signature_type=name)
        containers[kind] = {path: {puid: [_text(s["signature"]) for s in sigs] for puid, sigs in by_puid.items()}
                            for path, by_puid in extracted.items()}
    return {"signature_version": f"v{pronom} container-{container_date}", "formats": formats,
            "priority": priority, "signatures": signatures, "containers": containers}


def plan_signature(format_index: int, name: str, patterns: list[tuple[str, bytes]]) -> dict[str, Any]:
    """One signature's patterns and the necessary conditions of a match that let matching skip it."""
    planned: list[list[Any]] = []
    needs: list[list[Any]] = []
    keys = wait = None
    for position, source in patterns:
        planned.append([position, _text(source), _tail_reach(source) if position == "EOF" else None])
        needed = _needed_bytes(source)
        if needed is not None:
            reach = _head_reach(source) if position == "BOF" else None if position != "EOF" else _tail_reach(source)
            needs.append([position == "EOF", _text(needed), reach])
        if position == "BOF" and keys is None:
            keys = _leading_keys(source)
        if position != "EOF" and wait is None:
            strings = _required_strings(source)
            if strings is not None:
                wait = [[_text(s) for s in sorted(strings)], _head_reach(source) if position == "BOF" else None]
    if keys is not None:
        offsets, found = keys
        keys = [sorted(offsets), [_text(k) for k in sorted(found)]]
    empty = any(position == "BOF" and _only_empty(source) for position, source in patterns)
    return {"format": format_index, "name": name, "patterns": planned, "needs": needs, "keys": keys,
            "wait": None if keys is not None else wait, "empty": empty}


# --- what a parsed expression needs ----------------------------------------------------------------


def _parsed(source: bytes) -> tuple[Any, Any] | None:
    try:
        from re import _constants as C
        from re import _parser
        parsed = _parser.parse(source)
    except (ImportError, re.error):  # a Python without the parser: no plan, the signature is always tried
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    return C, parsed


def _strings_of(C: Any, op: Any, av: Any) -> set[bytes] | None:
    """The strings one item of a parsed expression can match (each match is exactly one), or None."""
    if op is C.LITERAL:
        return {bytes((av,))}
    if op is C.IN:
        out: set[bytes] = set()
        for kind, value in av:
            if kind is C.LITERAL:
                out.add(bytes((value,)))
            elif kind is C.RANGE:
                if value[1] - value[0] >= _MAX_SET:
                    return None
                out.update(bytes((b,)) for b in range(value[0], value[1] + 1))
            else:  # NEGATE, CATEGORY …
                return None
        return out if 0 < len(out) <= _MAX_SET else None
    if op is C.BRANCH:
        out = set()
        for alternative in av[1]:
            found = _strings_of_sequence(C, alternative)
            if found is None:
                return None
            out |= found
        return out if len(out) <= _MAX_SET else None
    if op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[0] == av[1] and 0 < av[0] <= KEY_LENGTH * 4:
        one = _strings_of_sequence(C, av[2])
        if one is None:
            return None
        out = {b""}
        for _ in range(av[0]):
            out = {a + b for a in out for b in one}
            if len(out) > _MAX_SET:
                return None
        return out
    if op is C.SUBPATTERN and not av[1] and not av[2]:
        return _strings_of_sequence(C, av[3])
    return None


def _strings_of_sequence(C: Any, items: Any) -> set[bytes] | None:
    out = {b""}
    for op, av in items:
        found = _strings_of(C, op, av)
        if found is None:
            return None
        out = {a + b for a in out for b in found}
        if len(out) > _MAX_SET:
            return None
    return out if all(out) else None


def _one_byte(C: Any, op: Any, av: Any) -> bool:
    """Whether an item always matches exactly one byte."""
    return op in (C.ANY, C.LITERAL, C.NOT_LITERAL, C.IN)


def _leading_keys(source: bytes) -> tuple[set[int], set[bytes]] | None:
    """(offsets, keys): the head has one of ``keys`` at one of ``offsets`` if the ``BOF`` expression matches.

    All keys have one length (at most :data:`KEY_LENGTH`).  None when the
    expression does not start with such bytes (it is then planned by what it waits for).
    """
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    items = list(parsed)
    offsets = {0}
    at = 0
    while at < len(items):  # what comes before the key: \A, and bytes of any or of too many values
        op, av = items[at]
        if op is C.AT and av is C.AT_BEGINNING_STRING:
            pass
        elif _one_byte(C, op, av) and (op is C.ANY or _strings_of(C, op, av) is None):
            offsets = {o + 1 for o in offsets}
        elif (op in (C.MAX_REPEAT, C.MIN_REPEAT) and len(av[2]) == 1 and _one_byte(C, *av[2][0])
              and (av[2][0][0] is C.ANY or _strings_of(C, *av[2][0]) is None) and av[1] - av[0] <= _MAX_SPREAD):
            offsets = {o + k for o in offsets for k in range(av[0], av[1] + 1)}
            if len(offsets) > _MAX_SPREAD + 1:
                return None
        else:
            break
        at += 1
    keys = {b""}
    for op, av in items[at:]:
        if min(map(len, keys)) >= KEY_LENGTH:
            break
        strings = _strings_of(C, op, av)
        if strings is None:
            break
        longer = {a + b for a in keys for b in strings}
        if len(longer) > _MAX_SET * 4:
            break
        keys = longer
    length = min(KEY_LENGTH, min(map(len, keys)))
    if length == 0:
        return None
    return offsets, {k[:length] for k in keys}


def _required_strings(source: bytes) -> set[bytes] | None:
    """Strings (each at least :data:`MIN_WAITED` long) one of which every match of ``source`` contains, or None.

    The run of fixed items (literals, small classes, alternatives of fixed
    strings) at the expression's top level whose shortest string is longest.
    """
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    best: set[bytes] | None = None
    run: set[bytes] = {b""}

    def close(run: set[bytes]) -> None:
        nonlocal best
        if run and min(map(len, run)) >= MIN_WAITED and (best is None or min(map(len, run)) > min(map(len, best))):
            best = run

    for op, av in list(parsed):
        strings = _strings_of(C, op, av)
        if strings is None:
            close(run)
            run = {b""}
            continue
        longer = {a + b for a in run for b in strings}
        if len(longer) > _MAX_WAITED:
            close(run)
            longer = strings
        run = longer
    close(run)
    return best


def _only_empty(source: bytes) -> bool:
    """Whether a ``BOF`` expression can match only an empty head (``\\A\\Z``: nothing, then the end)."""
    found = _parsed(source)
    if found is None:
        return False
    C, parsed = found
    items = list(parsed)
    return bool(items) and items[-1] == (C.AT, C.AT_END_STRING) and parsed.getwidth()[1] == 0


def _needed_bytes(source: bytes) -> bytes | None:
    """The longest run of literal bytes (two or more) every match of ``source`` contains, or None."""
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    best = run = b""
    for op, av in list(parsed) + [(None, None)]:
        if op is C.LITERAL:
            run += bytes((av,))
            continue
        if len(run) > len(best):
            best = run
        run = b""
    return best if len(best) >= 2 else None


def _head_reach(source: bytes) -> int | None:
    """How far into the head a match anchored at the start can reach (its widest width), or None."""
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    high = parsed.getwidth()[1]
    return high if high < C.MAXREPEAT else None


def _tail_reach(source: bytes) -> int | None:
    """How far from the end an expression anchored at the end (``…\\Z``) can start, or None."""
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    items = list(parsed)
    if not items or items[-1] != (C.AT, C.AT_END_STRING):
        return None
    if _looks_around(C, items[:-1]):
        return None
    high = parsed.getwidth()[1]
    return high if high < C.MAXREPEAT else None


def _looks_around(C: Any, items: Any) -> bool:
    """Whether parsed items anchor or look anywhere (then a search must start where FIDO's does)."""
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT, C.GROUPREF, C.GROUPREF_EXISTS):
            return True
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and _looks_around(C, av[2]):
            return True
        if op is C.SUBPATTERN and _looks_around(C, av[3]):
            return True
        if op is C.ATOMIC_GROUP and _looks_around(C, av):
            return True
        if op is C.BRANCH and any(_looks_around(C, alternative) for alternative in av[1]):
            return True
    return False
