"""File names inside bags and deliveries: safety, encoding and collisions.

Every path that comes from outside (a manifest line, an archive member, a
fetch.txt entry) goes through :func:`unsafe_reason` before it is joined to a
directory, so nothing a delivery or bag says can make us touch a file outside
it (design invariant 2).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Iterator, NamedTuple

MAX_SEGMENT_BYTES = 255
"""Longest single name most filesystems and every storage adapter accept."""

MAX_PATH_BYTES = 900
"""Longest payload path: storage keys stop at 1024 bytes and need room for the package prefix."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_PERCENT_ESCAPE = re.compile("%(25|0[aAdD])")
_ESCAPED = {"25": "%", "0a": "\n", "0d": "\r"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")


def encode_manifest_path(path: str) -> str:
    """Percent-encode ``%``, CR and LF as RFC 8493 section 2.1.3 requires (and nothing else)."""
    if "%" in path:
        path = path.replace("%", "%25")
    if "\r" in path:
        path = path.replace("\r", "%0D")
    if "\n" in path:
        path = path.replace("\n", "%0A")
    return path


def decode_manifest_path(text: str) -> str:
    """Undo :func:`encode_manifest_path`: only %25, %0A and %0D are decoded (in either case)."""
    if "%" not in text:
        return text
    return _PERCENT_ESCAPE.sub(lambda m: _ESCAPED[m.group(1).lower()], text)


def has_unencoded_percent(text: str) -> bool:
    """True when ``text`` has a ``%`` that does not start one of the three RFC escapes."""
    return "%" in text and text.count("%") != len(_PERCENT_ESCAPE.findall(text))


def control_characters(name: str) -> list[str]:
    """The control characters in ``name``, as ``U+000A`` style strings."""
    return sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(name)})


def is_valid_utf8_text(name: str) -> bool:
    """False when ``name`` carries surrogate escapes (bytes that were not UTF-8)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str) -> str:
    """A printable form of a name that may hold surrogate escapes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` could reach outside the directory it is joined to, or None when it cannot.

    Refused: empty paths, absolute paths (``/``, ``\\``, drive letters), any
    ``..`` segment (also between backslashes, for Windows-made archives) and
    NUL bytes.  A leading ``~`` is an ordinary character here: nothing
    expands it.
    """
    if not path:
        return "empty path"
    if "\x00" in path:
        return "NUL byte in path"
    if path[0] in "/\\" or (len(path) > 1 and path[1] == ":" and _DRIVE.match(path)):
        return "absolute path"
    if ".." in path and ".." in _SEPARATORS.split(path):
        return "`..` segment"
    return None


def canonical_path(path: str) -> str:
    """``path`` without ``.`` and empty segments ('a/./b//c' -> 'a/b/c'); call after :func:`unsafe_reason`."""
    if "//" not in path and "/./" not in path and not path.startswith("./") and not path.endswith(("/", "/.")):
        return path
    return "/".join(s for s in path.split("/") if s not in ("", "."))


def name_problem(name: str) -> str | None:
    """Why one file name cannot be stored under every storage adapter, or None."""
    if "\\" in name:
        return "backslash in name"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_SEGMENT_BYTES:
        return f"a name longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def path_too_long(path: str) -> str | None:
    if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes"
    return None


def nfc(name: str) -> str:
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def fold(name: str) -> str:
    """The key under which a case-insensitive, normalising filesystem stores ``name``."""
    if name.isascii():
        return name.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class Collision(NamedTuple):
    kind: str  # "nfc" or "case"
    first: str
    second: str


def find_collisions(names: Iterable[str]) -> Iterator[Collision]:
    """Pairs of distinct names that one filesystem or another would store as one.

    "nfc": equal after NFC normalisation (macOS, some NAS); "case": equal only
    after case folding as well (Windows, macOS by default).  Identical names
    are not reported here (duplicates are the caller's concern).
    """
    by_nfc: dict[str, str] = {}
    by_fold: dict[str, str] = {}
    for name in names:
        key = nfc(name)
        seen = by_nfc.get(key)
        if seen is not None:
            if seen != name:
                yield Collision("nfc", seen, name)
            continue
        by_nfc[key] = name
        folded = fold(name)
        seen = by_fold.get(folded)
        if seen is not None:
            yield Collision("case", seen, name)
        else:
            by_fold[folded] = name
