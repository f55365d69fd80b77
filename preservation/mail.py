"""Sending one e-mail over SMTP: the one place that talks to a mail server (alerts and notifications).

The server is an ``EmailChannel`` of ``preserve.yaml`` (host, port, security, credentials, sender).
Outside text never shapes a message: every header value is one line (control characters, CR and LF
included, shown escaped, never acting), cut to a length; recipients are single plain addresses; the
body is plain text with control characters other than line breaks and tabs made visible.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Iterable

from preservation.monitoring_settings import EmailChannel, plain_address
from preservation.text import for_log

SUBJECT_LIMIT = 200
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def header_text(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """Outside text made safe for a mail header: controls escaped (no CR/LF), cut to ``limit``."""
    safe = for_log(text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def body_text(text: str) -> str:
    """A plain-text body: line breaks kept, every other control (and bidi override) shown escaped."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), lines)


def compose(channel: EmailChannel, recipients: Iterable[str], subject: str, body: str) -> EmailMessage:
    """The message as it is sent; raises ValueError for a recipient that is not one plain address."""
    message = EmailMessage()
    message["From"] = channel.sender
    message["To"] = ", ".join(plain_address(r) for r in recipients)
    message["Subject"] = header_text(subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=channel.sender.rpartition("@")[2])
    message.set_content(body_text(body))
    return message


def send(channel: EmailChannel, recipients: Iterable[str], subject: str, body: str) -> None:
    """Send one message; raises ValueError (a bad recipient), smtplib.SMTPException or OSError.

    Their text never holds the SMTP password.
    """
    message = compose(channel, recipients, subject, body)
    context = ssl.create_default_context()
    if channel.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout_seconds,
                                                context=context)
    else:
        client = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds)
    with client:
        if channel.security == "starttls":
            client.starttls(context=context)
        if channel.username:
            client.login(channel.username, channel.password.get_secret_value() if channel.password else "")
        client.send_message(message)
