"""`preserve node serve`: run the node agent in front of this node's storage."""

from __future__ import annotations

import sys

import click

from preservation.errors import PreservationError
from preservation.node_agent import AgentConfig, load_keys
from preservation.node_agent import serve as serve_agent

from .common import fail, json_option
from .service import configure_logging


@click.command("serve")
@click.option("--storage", "storage_uri", required=True, help="Local storage to serve: file:///srv/preserve or s3://….")
@click.option("--listen", default="127.0.0.1:8101", show_default=True, help="HOST:PORT to listen on.")
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML/JSON file of accepted keys ('keys: {key-id: secret}'); default: the text of $PRESERVE_AGENT_KEYS.",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None, help="PEM certificate (chain) for HTTPS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="PEM private key of --tls-cert.")
@click.option("--allow-delete", is_flag=True, help="Accept confirmed DELETE requests (refused by default).")
@click.option(
    "--digest-workers", type=click.IntRange(1, 64), default=4, show_default=True,
    help="Most threads one digest request may use on this node.",
)
@click.option("--access-log", is_flag=True,
              help="Log every request (off by default: one line per file stored or read would bury the rest).")
@json_option
def serve(
    storage_uri: str,
    listen: str,
    keys_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    allow_delete: bool,
    digest_workers: int,
    access_log: bool,
    as_json: bool,
) -> None:
    """Serve this node's storage to the coordinator: reads, atomic writes, node-side digests, challenges.

    Every request but GET /v1/health must be signed with one of the keys.
    """
    configure_logging(access_log=access_log, as_json=as_json)
    config = AgentConfig(keys=load_keys(keys_file), allow_delete=allow_delete, max_digest_workers=digest_workers)
    serve_agent(storage_uri, listen, config, tls_cert=tls_cert, tls_key=tls_key)


def main() -> None:
    """Run the agent alone: ``python -m preservation.cli.node_serve --storage … --listen … --keys …``.

    For hosts that run nothing but the agent; same options and exit codes as
    ``preserve node serve``.
    """
    try:
        serve.main(prog_name="preserve node serve")
    except PreservationError as e:
        fail(e, as_json="--json" in sys.argv[1:])


if __name__ == "__main__":
    main()
