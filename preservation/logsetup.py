"""Where log lines go and how they look: one setup for every command and service.

Every line carries a UTC timestamp (the access logs of the portal and the node
agent too: uvicorn's records reach the same handler instead of its own
formatter).  Libraries that log one line per HTTP request (httpx, httpcore,
urllib3, botocore, s3transfer) are kept to warnings unless the level asked for
is ``debug``; so is a node agent's access log unless it is asked for.  With
``json`` each record is one JSON object per line, its message escaped as every
log line is (:class:`preservation.text.LogFormatter`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable

from preservation.errors import ConfigError
from preservation.text import LogFormatter, VisibleArguments, for_log

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

PER_REQUEST_LOGGERS = ("httpx", "httpcore", "urllib3", "botocore", "boto3", "s3transfer")
"""Libraries that log every request they make: a worker's log would be nothing else."""
CHATTY_LOGGERS = ("apscheduler", "alembic")
ACCESS_LOGGER = "uvicorn.access"

# The fields a record may carry (``log.info(..., extra={"job": 6, "kind": "audit", ...})``) that JSON lines keep.
OURS = "_preserve_handler"
CONTEXT_FIELDS = ("job", "kind", "package", "node", "path", "code")


class UTCFormatter(LogFormatter):
    """:class:`LogFormatter` with ISO 8601 UTC timestamps."""

    converter = time.gmtime

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt, datefmt=DATE_FORMAT)


class JSONLineFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the context fields it carries."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, DATE_FORMAT),
            "level": record.levelname,
            "logger": record.name,
            "message": for_log(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value if isinstance(value, (int, float, bool)) else for_log(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (as logging's last resort does)."""

    def __init__(self) -> None:
        super().__init__(None)

    @property
    def stream(self):  # noqa: D102 - logging's attribute
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class QuietLibraries(logging.Filter):
    """Drops the per-request lines of HTTP libraries (and, unless wanted, uvicorn's access lines) below WARNING.

    A filter on the handler, not only a logger level: uvicorn sets its loggers'
    levels itself when a server starts.
    """

    def __init__(self, *, per_request: bool, access_log: bool) -> None:
        super().__init__()
        self.quiet = tuple(() if per_request else PER_REQUEST_LOGGERS) + (() if access_log else (ACCESS_LOGGER,))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == name or record.name.startswith(name + ".") for name in self.quiet)


def parse_level(text: str) -> int:
    """``debug``, ``info``, ``warning`` or ``error`` (any case) as a logging level; raises ConfigError."""
    name = str(text).strip().lower()
    if name not in LEVELS:
        raise ConfigError(f"log level {for_log(text)!r}: use one of {', '.join(LEVELS)}")
    return getattr(logging, name.upper())


def handler(*, log_file: str | Path | None = None, log_format: str = "text", stream: IO[str] | None = None
            ) -> logging.Handler:
    """A handler writing to ``log_file`` (appended) or ``stream`` (stderr); raises ConfigError."""
    if log_format not in FORMATS:
        raise ConfigError(f"log format {for_log(log_format)!r}: use one of {', '.join(FORMATS)}")
    if log_file is not None:
        try:
            out: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write the log file {for_log(log_file)}: {e.strerror}") from e
    elif stream is not None:
        out = logging.StreamHandler(stream)
    else:
        out = StderrHandler()
    out.setFormatter(JSONLineFormatter() if log_format == "json" else UTCFormatter())
    return out


def configure(level: str = "info", *, log_file: str | Path | None = None, log_format: str = "text",
              access_log: bool = True, stream: IO[str] | None = None) -> Callable[[], None]:
    """Send every log record at ``level`` or above to one handler; raises ConfigError for a bad option.

    ``access_log`` False keeps uvicorn's access lines to warnings (a node agent
    would log one line per file it stores or reads).  Returns a function that
    takes the handler away again and restores the root level (for a command
    run in-process, as tests do).
    """
    numeric = parse_level(level)
    new = handler(log_file=log_file, log_format=log_format, stream=stream)
    root = logging.getLogger()
    previous_level = root.level
    for old in list(root.handlers):
        if getattr(old, OURS, False) or type(old) in (logging.StreamHandler, logging.FileHandler):
            root.removeHandler(old)  # ours from an earlier call, or a basicConfig's: one line per record
            old.close()
    setattr(new, OURS, True)
    new.addFilter(QuietLibraries(per_request=numeric <= logging.DEBUG, access_log=access_log))
    root.addHandler(new)
    root.setLevel(numeric)
    quiet = max(numeric, logging.WARNING)
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else quiet)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(numeric if access_log else quiet)
    if not any(isinstance(f, VisibleArguments) for f in access.filters):
        access.addFilter(VisibleArguments())
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        # uvicorn's own handlers (when its log config was applied) would print lines without a date
        for old in list(logging.getLogger(name).handlers):
            logging.getLogger(name).removeHandler(old)
        logging.getLogger(name).propagate = True

    def restore() -> None:
        if new in root.handlers:
            root.removeHandler(new)
            new.close()
            root.setLevel(previous_level)

    return restore
