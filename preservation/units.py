"""Numbers for people and from outside: byte counts shown ('2.7 MB') and read ('500G', '1.5TiB'),
and integers read strictly from requests (:func:`parse_decimal`).

This module imports nothing of the project: every layer may use it.
"""

from __future__ import annotations

import re

MAX_INT64 = 2**63 - 1

_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40, "PI": 2**50}


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


_SIZE_FORM = re.compile(r"([0-9]{1,19})(?:\.([0-9]{1,9}))?")  # [0-9]: ASCII digits only


def parse_size(text: str) -> int:
    """'500G', '2T', '1.5TiB', '1000000' → bytes (decimal units, binary with 'i'); raises ValueError.

    The number is ASCII digits with an optional fraction: no sign, exponent, 'inf', '1_000' or '５'
    (which ``float`` would all take); the result is at most :data:`MAX_INT64`.
    """
    t = text.strip().upper().removesuffix("B")
    factor = 1
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if t.endswith(suffix):
            t, factor = t[: -len(suffix)], _UNITS[suffix]
            break
    form = _SIZE_FORM.fullmatch(t)
    if form is None:
        raise ValueError(f"{text!r} is not a size: ASCII digits, then an optional unit (500G, 2T, 1.5TiB)")
    whole, fraction = form.groups()
    value = int(whole) * factor + (int(fraction) * factor // 10 ** len(fraction) if fraction else 0)
    if value > MAX_INT64:
        raise ValueError(f"{text!r} is more than {MAX_INT64} bytes")
    return value


def parse_decimal(text: str, *, maximum: int = MAX_INT64) -> int:
    """``text`` as a non-negative integer written in ASCII digits only, at most ``maximum``.

    ``str.isdigit`` and ``int`` accept far more than a request should carry:
    '²' passes ``isdigit`` and fails in ``int``; '٣', '+3', ' 3' and '3_000'
    all convert; 5,000 digits raise in ``int`` (and cost time before that).
    The length is checked before any conversion.  Raises ValueError, which
    the caller turns into its own coded error.
    """
    if not 0 < len(text) <= len(str(maximum)) or not text.isascii() or not text.isdigit():
        raise ValueError(f"not a whole number of at most {len(str(maximum))} ASCII digits")
    value = int(text)
    if value > maximum:
        raise ValueError(f"more than {maximum}")
    return value


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port).

    The host is printable ASCII without spaces; the port is ASCII digits in
    1-65535 (:func:`parse_decimal`: no '８０８０', no '+80').  Raises ValueError.
    """
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not host.isascii() or not host.isprintable() or " " in host:
        raise ValueError("not HOST:PORT")
    port = parse_decimal(port_text, maximum=65_535)
    if port == 0:
        raise ValueError("port 0")
    return host, port
