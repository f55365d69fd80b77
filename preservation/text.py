"""Outside text: the one place that decides what may enter and how it is shown.

Every string that came from outside (delivery names, bag-info values, request
reasons, titles, HTTP parameters) passes here twice:

* **at the boundary** — :func:`check_xml_text` refuses text that XML 1.0
  cannot carry (C0 controls other than TAB, LF and CR; U+FFFE and U+FFFF; lone
  surrogates), because every event, grant and reason ends up in a PREMIS
  export one day, and an export must never fail on what was accepted years
  before;
* **where it is shown** — :func:`for_terminal` (Rich markup escaped, control
  characters made visible), :func:`for_log` (one log line can never become
  two, and no escape sequence reaches an operator's terminal) and
  :func:`xml_safe` (the documented, reversible escape for text already stored
  that XML cannot carry).

This module imports nothing of the project: every layer may use it.
"""

from __future__ import annotations

import logging
import re

from preservation.errors import InvalidRequest, InvalidText

# Characters XML 1.0 (§2.2 Char) cannot carry.  Surrogates (U+D800–U+DFFF)
# can only appear in a Python str as lone surrogates.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What a terminal or a log line must never receive raw: every C0 control, DEL
# and the C1 controls (U+0080–U+009F, among them the 8-bit CSI U+009B), the
# line and paragraph separators that some viewers break lines on, and the
# bidirectional embeddings, overrides and isolates that reorder what is shown.
_INVISIBLE = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNPRINTABLE = re.compile(f"[\x00-\x1f{_INVISIBLE}]")
_UNPRINTABLE_KEEP_NEWLINES = re.compile(f"[\x00-\x09\x0b-\x1f{_INVISIBLE}]")
# For machine output (JSON, CSV) whose own syntax keeps TAB, LF and CR apart.
_UNPRINTABLE_IN_DATA = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_INVISIBLE}]")
_XML_ESCAPED = re.compile(r"\\(\\|u[0-9A-F]{4})")
# What may name a node or a collection: it appears in keys, URLs, commands and file names.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def xml_forbidden(text: str) -> list[str]:
    """The distinct characters of ``text`` that XML 1.0 cannot carry, as ``U+FFFF`` strings, in order."""
    seen: dict[str, None] = {}
    for match in _XML_FORBIDDEN.finditer(text):
        seen.setdefault(_code_point(match.group()), None)
    return list(seen)


def check_name(name: str, what: str) -> str:
    """Return ``name`` when it may name a node or a collection (``what`` says which, for the message).

    Raises :class:`~preservation.errors.InvalidRequest` (E112) unless it is 1-64
    ASCII letters, digits, '.', '_' or '-', starting with a letter or digit.
    """
    if not _NAME.fullmatch(name or ""):
        raise InvalidRequest(f"{what} {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def check_xml_text(text: str, field: str, *, max_length: int | None = None) -> str:
    """Return ``text`` unchanged when XML 1.0 can carry it (and it fits ``max_length``).

    Raises :class:`~preservation.errors.InvalidText` (E113, HTTP 400) naming
    the field and the offending code points otherwise.  The message never
    repeats the text itself, so it is safe to show anywhere.
    """
    bad = xml_forbidden(text)
    if bad:
        shown = ", ".join(bad[:5]) + (" …" if len(bad) > 5 else "")
        raise InvalidText(f"{field} contains character(s) that XML 1.0 cannot carry: {shown}",
                          field=field, characters=bad)
    if max_length is not None and len(text) > max_length:
        raise InvalidText(f"{field} is longer than {max_length} characters", field=field, max_length=max_length)
    return text


def xml_safe(text: str) -> str:
    """Text XML 1.0 can carry, reversibly (see :func:`xml_unescape`).

    Text that XML can already carry is returned unchanged.  Otherwise every
    backslash becomes ``\\\\`` and every character XML cannot carry becomes
    ``\\uXXXX`` (four upper-case hex digits), so the original is recovered
    exactly.  Whether a value was escaped is told apart by the caller (the
    PREMIS export marks it); this function only transforms.
    """
    if not _XML_FORBIDDEN.search(text):
        return text
    return _XML_FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04X}", text.replace("\\", "\\\\"))


def xml_unescape(text: str) -> str:
    """The inverse of :func:`xml_safe` for a value it escaped."""
    return _XML_ESCAPED.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), text)


def needs_xml_escape(text: str) -> bool:
    return _XML_FORBIDDEN.search(text) is not None


def visible_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as ``\\xNN`` / ``\\uNNNN`` instead of acting."""
    pattern = _UNPRINTABLE_KEEP_NEWLINES if keep_newlines else _UNPRINTABLE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def for_data_stream(text: str) -> str:
    """JSON or CSV text ready for a terminal: what could act on one becomes ``\\uXXXX``.

    Inside a JSON string ``\\uXXXX`` is the same character, so a parser reads
    the data unchanged; TAB, LF and CR are left to the format's own syntax.
    """
    return _UNPRINTABLE_IN_DATA.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def for_terminal(text: object, *, keep_newlines: bool = False) -> str:
    """Outside text ready for a Rich console: control characters visible, markup escaped.

    ``[bold red]`` and ``[link=…]`` are shown as typed, never interpreted; an
    ESC (``\\x1b``) or a C1 CSI arrives as the four characters ``\\x1b``.
    """
    from rich.markup import escape

    return escape(visible_controls(str(text), keep_newlines=keep_newlines))


def for_log(text: object) -> str:
    """Outside text ready for one log line: no line break, no escape sequence, nothing raw."""
    return visible_controls(str(text))


class LogFormatter(logging.Formatter):
    """A formatter whose message part can never become two lines or carry an escape sequence.

    Outside text reaches log messages through ``%s`` arguments (paths, names,
    error messages); the whole message is passed through :func:`for_log` after
    the arguments are merged.  A traceback that follows stays as Python wrote it.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = for_log(record.message)
        return super().formatMessage(record)


class VisibleArguments(logging.Filter):
    """Shows the text arguments of a log record (uvicorn's request target, the client) without letting them act.

    uvicorn's access log prints the request target as the client sent it;
    with another HTTP parser than h11, or a decoded path, a line break or an
    escape sequence in it would forge a log line or reach an operator's
    terminal.  Our own log lines go through :class:`LogFormatter`; this filter
    does the same for the records of libraries we do not format.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(for_log(a) if isinstance(a, str) else a for a in record.args)
        return True


def safe_log_handler(stream=None, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> logging.Handler:
    """A stream handler (stderr by default) with :class:`LogFormatter`: what every long-running command logs through."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogFormatter(fmt))
    return handler
