"""`preserve serve`: the access service (portal, JSON API, fixity API)."""

from __future__ import annotations

import click

from preservation.access.web.server import serve as run_service

from .common import json_option, repo
from .service import configure_logging


@click.command("serve")
@click.option("--listen", default="127.0.0.1:8200", show_default=True, help="HOST:PORT to listen on.")
@click.option("--cookie-secure/--no-cookie-secure", default=True, show_default=True,
              help="Mark the session cookie Secure (HTTPS only); turn off only for plain HTTP on 127.0.0.1.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None, help="PEM certificate (chain) for HTTPS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="PEM private key of --tls-cert.")
@json_option
def serve(listen, cookie_secure, tls_cert, tls_key, as_json) -> None:
    """Serve the access portal and APIs until interrupted (an access log line per request, dated)."""
    configure_logging(as_json=as_json)
    run_service(repo(), listen, cookie_secure=cookie_secure, tls_cert=tls_cert, tls_key=tls_key)
