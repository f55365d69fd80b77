"""A real SMTP server (aiosmtpd) and a real HTTP receiver, started by the tests, that keep what they receive."""

from __future__ import annotations

import contextlib
import json
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from aiosmtpd.controller import Controller

from ..services import free_port


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


class Hook:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.status = 204

    def subjects(self) -> list[str]:
        return [p.get("subject") for p in self.posts]


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[Hook, int]]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            length = int(self.headers.get("content-length", "0"))
            hook.posts.append(json.loads(self.rfile.read(length)))
            hook.paths.append(self.path)
            hook.headers.append(dict(self.headers))
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
