"""`preserve node serve`: run the node agent in front of this node's storage."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from preservation.errors import AlreadyExists, InvalidRequest, PreservationError

from .common import emit_json, fail, json_option, say
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
@click.option("--witness-key", type=click.Path(dir_okay=False), default=None, envvar="PRESERVE_AGENT_WITNESS_KEY",
              help="This node's Ed25519 key (0600) for co-signing the event log's checkpoints "
                   "(`preserve node witness-key` makes one); without it the agent is no witness.")
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
    witness_key: str | None,
    as_json: bool,
) -> None:
    """Serve this node's storage to the coordinator: reads, atomic writes, node-side digests, challenges.

    Every request but GET /v1/health must be signed with one of the keys.
    """
    configure_logging(access_log=access_log, as_json=as_json)
    from preservation.node_agent import AgentConfig, load_keys, load_witness_key  # the web stack: only to serve
    from preservation.node_agent import serve as serve_agent

    config = AgentConfig(keys=load_keys(keys_file), allow_delete=allow_delete, max_digest_workers=digest_workers,
                         witness_key=load_witness_key(witness_key) if witness_key else None)
    serve_agent(storage_uri, listen, config, tls_cert=tls_cert, tls_key=tls_key)


@click.command("witness-key")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="This witness's name, e.g. witness.cas-wuhan (letters, digits, . _ - : /).")
@json_option
def witness_key(path: str, name: str, as_json: bool) -> None:
    """Make this node's witness key at PATH (mode 0600) and its public key beside it; give the public key
    (printed) to the coordinator's operator, and start the agent with --witness-key PATH."""
    from preservation.signing_keys import KEY_NAME, generate_key, parse_verifier_key  # cryptography: only here
    from preservation.witness.keyring import fingerprint as fingerprint_of

    if not KEY_NAME.match(name):
        raise InvalidRequest("--name: 1-200 letters, digits or . _ - : /")
    target = Path(path)
    if target.exists():
        raise AlreadyExists(f"{target} exists: a witness keeps its key (remove it first to make a new one)")
    vkey = generate_key(target, name)
    key_id = parse_verifier_key(vkey)[1]
    fingerprint = fingerprint_of(vkey)  # what the coordinator's operator confirms (`preserve witness-keys trust`)
    if as_json:
        emit_json({"path": str(target), "name": name, "key_id": key_id, "verifier_key": vkey,
                   "fingerprint": fingerprint})
    else:
        say(f"witness key {key_id} written to {target}; its public key:")
        click.echo(vkey)
        say(f"fingerprint (read it out to the coordinator's operator): {fingerprint}")


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
