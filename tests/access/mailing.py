"""A consortium world whose ``preserve.yaml`` sends notifications to a real SMTP server (aiosmtpd) the test runs."""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from preservation.repository import Repository

from ..monitoring.receivers import Mailbox, smtp_server

PORTAL = "https://access.example.org"
STAFF_DESK = "desk@consortium.example"
LINK = re.compile(r"https://access\.example\.org/login/reset\?token=([A-Za-z0-9_-]+)")


def notifications_yaml(port: int, **extra: object) -> str:
    lines = ["notifications:",
             f"  email: {{host: 127.0.0.1, port: {port}, security: none, sender: preserve@consortium.example, "
             f"recipients: [{STAFF_DESK}]}}",
             f"  portal_url: {PORTAL}"]
    lines += [f"  {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def mailing(world, **extra: object) -> Iterator[Mailbox]:
    """``world`` with notifications on (its repo reopened with them), and the mailbox they arrive in."""
    with smtp_server() as (mailbox, port):
        config = world.home / "preserve.yaml"
        config.write_text(config.read_text(encoding="utf-8") + notifications_yaml(port, **extra), encoding="utf-8")
        world.repo.close()
        world.repo = Repository.open(world.home)
        yield mailbox


def to(mailbox: Mailbox, address: str) -> list:
    return [m for m in mailbox.messages if m["To"] == address]


def reset_token(message) -> str:
    found = LINK.search(message.get_content())
    assert found, message.get_content()
    return found.group(1)
